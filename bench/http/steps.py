"""What each step of Core's request path costs on its own (µs of CPU), beside the hand-written way.

No database round trip and no HTTP: each step of `core.routing._endpoint` and the list, retrieve
and create handlers is timed in isolation on an idle in-memory SQLite engine (the SQL steps stop
before execution: statement building and SQLAlchemy's cache key). Every figure is the best of
`--repeat` timings of `--number` calls, so a noisy neighbour inflates it less than a mean would.
Set beside the equivalent step of bench/http/app_fastapi.py where there is one.

Run:
    .venv/bin/python bench/http/steps.py [--number 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DATABASE_URL", "sqlite+aiosqlite:///:memory:")

import app_core  # noqa: E402
import app_fastapi  # noqa: E402
import orjson  # noqa: E402
from fastapi.routing import serialize_response  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from pydantic_core import to_json  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from starlette.requests import Request  # noqa: E402

from core.adapters.sqlalchemy.repository import _filtered, _windowed  # noqa: E402
from core.context import _container, _session, current_container  # noqa: E402
from core.models import lookups  # noqa: E402
from core.views.base import list_adapter  # noqa: E402

Step = Callable[[], Any]


def best_us(step: Step, number: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            step()
        best = min(best, time.perf_counter() - start)
    return best / number * 1e6


async def best_us_async(step: Callable[[], Awaitable[Any]], number: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            await step()
        best = min(best, time.perf_counter() - start)
    return best / number * 1e6


def request(path: str, query: bytes = b"", method: str = "GET") -> Request:
    return Request(
        {
            "type": "http",
            "method": method,
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "path": path,
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"127.0.0.1:8000")],
            "app": app_core.app.fastapi,
        }
    )


def response_field(path: str, method: str) -> Any:
    """The response field FastAPI itself validates and serializes with, for one route."""
    for route in app_fastapi.app.routes:
        if getattr(route, "path", None) == path and method in getattr(route, "methods", ()):
            return route.response_field  # type: ignore[attr-defined]
    raise LookupError(path)


def post(i: int, model: Any) -> Any:
    return model(
        id=i,
        title=f"Post number {i}",
        content="Core Framework turns a model into an API. " * 5,
        is_published=i % 2 == 0,
        views=i,
    )


async def main(number: int, repeat: int) -> list[tuple[str, str, float, float | None]]:
    rows: list[tuple[str, str, float, float | None]] = []

    def add(group: str, name: str, core_us: float, hand_us: float | None = None) -> None:
        rows.append((group, name, core_us, hand_us))
        hand = f"{hand_us:8.1f}" if hand_us is not None else "       –"
        print(f"  {group:8} {name:58} {core_us:8.1f} {hand}", flush=True)

    app = app_core.app
    token = _container.set(app.container)
    Post, PostOut, View = app_core.Post, app_core.PostOut, app_core.PostViewSet
    container = current_container()
    database = container.database.database()
    db = database.session()

    # -- the endpoint's own work (core/routing.py _endpoint), per request --------------------
    def endpoint_setup() -> None:
        c = current_container()
        view = View()
        view.request = req
        view.action = "retrieve"
        view.container = c
        view.kwargs = {"id": 5}
        view._action_permissions = None
        session = c.database.database().session()
        t = _session.set(session)
        _session.reset(t)

    req = request("/posts/5/")
    add(
        "endpoint",
        "view + container + session + ContextVar (all of _endpoint's setup)",
        best_us(endpoint_setup, number, repeat),
    )
    add(
        "endpoint",
        "  container.database.database() (provider call)",
        best_us(lambda: container.database.database(), number, repeat),
    )
    add(
        "endpoint",
        "  database.session() / SessionLocal() (AsyncSession)",
        best_us(database.session, number, repeat),
        best_us(app_fastapi.SessionLocal, number, repeat),
    )

    view = View()
    view.request, view.action, view.container, view.kwargs = req, "retrieve", container, {"id": 5}
    add(
        "auth",
        "authenticate (no Authorization header)",
        await best_us_async(lambda: view.authenticate(db), number, repeat),
    )
    add(
        "auth",
        "  container.auth.authenticator() (provider call)",
        best_us(lambda: container.auth.authenticator(), number, repeat),
    )
    add(
        "auth",
        "check_permissions (AllowAny)",
        await best_us_async(view.check_permissions, number, repeat),
    )
    obj = post(5, Post)
    add(
        "auth",
        "check_object_permissions (AllowAny)",
        await best_us_async(lambda: view.check_object_permissions(obj), number, repeat),
    )

    # -- retrieve ------------------------------------------------------------------------------
    def detail_queryset() -> Any:
        return view.get_queryset(db).filter(id=5)._ordered().limit(1)

    qs = detail_queryset()
    add(
        "retrieve",
        "QuerySet: get_queryset().filter(id=).order_by(pk).limit(1)",
        best_us(detail_queryset, number, repeat),
    )
    add(
        "retrieve",
        "  lookups.resolve('id', 5) (one keyword condition)",
        best_us(lambda: lookups.resolve(Post, "id", 5), number, repeat),
    )
    add(
        "retrieve",
        "QuerySet._repository() (container lookup + Repository)",
        best_us(qs._repository, number, repeat),
    )
    query = qs.query
    stmt = _windowed(_filtered(select(Post), query), query)
    hand_stmt = select(app_fastapi.Post).where(app_fastapi.Post.id == 5)
    add(
        "retrieve",
        "Repository: select + compile_where + order_by + limit",
        best_us(lambda: _windowed(_filtered(select(Post), query), query), number, repeat),
        best_us(lambda: select(app_fastapi.Post).where(app_fastapi.Post.id == 5), number, repeat),
    )
    add(
        "retrieve",
        "SQLAlchemy cache key of that statement (every execution)",
        best_us(stmt._generate_cache_key, number, repeat),
        best_us(hand_stmt._generate_cache_key, number, repeat),
    )
    field = response_field("/posts/{post_id}/", "GET")
    hand_obj = post(5, app_fastapi.Post)

    async def fastapi_detail() -> Any:
        return await serialize_response(field=field, response_content=hand_obj, dump_json=True)

    add(
        "retrieve",
        "serialize: view.render(obj) / FastAPI serialize_response",
        best_us(lambda: view.render(obj, 200), number, repeat),
        await best_us_async(fastapi_detail, number, repeat),
    )

    # -- list --------------------------------------------------------------------------------
    list_req = request("/posts/", b"page_size=100")
    list_view = View()
    list_view.request, list_view.action, list_view.container = list_req, "list", container
    list_view.kwargs = {}
    add(
        "list",
        "filter_queryset(get_queryset()) (query params, default ordering)",
        best_us(lambda: list_view.filter_queryset(list_view.get_queryset(db)), number, repeat),
    )
    paginator = View.pagination_class(View.page_size, View.max_page_size)  # type: ignore[misc]
    window = paginator.window(list_req.query_params)
    add(
        "list",
        "paginator.window + links (next URL)",
        best_us(
            lambda: paginator.links(list_req.url, paginator.window(list_req.query_params), True),
            number,
            repeat,
        ),
    )
    list_qs = list_view.filter_queryset(list_view.get_queryset(db))
    q = list_qs.query
    add(
        "list",
        "Repository: COUNT statement",
        best_us(lambda: _filtered(select(func.count()).select_from(Post), q), number, repeat),
        best_us(lambda: select(func.count()).select_from(app_fastapi.Post), number, repeat),
    )
    page_q = list_qs[window.offset : window.offset + window.limit].query
    add(
        "list",
        "QuerySet slice + Repository page statement",
        best_us(
            lambda: _windowed(_filtered(select(Post), list_qs[0:100].query), list_qs[0:100].query),
            number,
            repeat,
        ),
        best_us(
            lambda: select(app_fastapi.Post).order_by(app_fastapi.Post.id).offset(0).limit(100),
            number,
            repeat,
        ),
    )
    page_stmt = _windowed(_filtered(select(Post), page_q), page_q)
    add(
        "list",
        "SQLAlchemy cache keys (COUNT + page)",
        best_us(
            lambda: (
                select(func.count()).select_from(Post)._generate_cache_key(),
                page_stmt._generate_cache_key(),
            ),
            number,
            repeat,
        ),
    )
    objs = [post(i, Post) for i in range(1, 101)]
    hand_objs = [post(i, app_fastapi.Post) for i in range(1, 101)]
    adapter = list_adapter(PostOut)
    small = max(number // 20, 50)
    add(
        "list",
        "serialize 100 ORM objects: validate(from_attributes) + dump_json",
        best_us(
            lambda: adapter.dump_json(adapter.validate_python(objs, from_attributes=True)),
            small,
            repeat,
        ),
    )
    page_field = response_field("/posts/", "GET")
    content = {
        "count": 1000,
        "next": "http://x/posts/?page=2",
        "previous": None,
        "results": hand_objs,
    }

    async def fastapi_list() -> Any:
        return await serialize_response(field=page_field, response_content=content, dump_json=True)

    add(
        "list",
        "  FastAPI serialize_response(PostPage) on the same page",
        await best_us_async(fastapi_list, small, repeat),
    )
    dicts = [o.to_dict() for o in objs]
    add(
        "list",
        "serialize 100 dicts (values()): validate + dump_json",
        best_us(lambda: adapter.dump_json(adapter.validate_python(dicts)), small, repeat),
    )
    add(
        "list",
        "  orjson.dumps of the 100 dicts (the floor)",
        best_us(lambda: orjson.dumps(dicts), small, repeat),
    )
    add(
        "list",
        "  pydantic_core.to_json of the 100 dicts (no schema)",
        best_us(lambda: to_json(dicts), small, repeat),
    )
    out_list = TypeAdapter(list[app_core.PostOut])
    add(
        "list",
        "  100 dicts: dump_json only (no validation, trusted rows)",
        best_us(lambda: out_list.dump_json(dicts, warnings=False), small, repeat),
    )

    # -- create ------------------------------------------------------------------------------
    data = app_core.PostIn(title="t", content="c", is_published=True, views=7)
    values = data.model_dump(exclude_unset=True)
    add(
        "create",
        "QuerySet._build(values) (convert_value per field) / Post(**data)",
        best_us(lambda: Post.objects._build(values), number, repeat),
        best_us(lambda: app_fastapi.Post(**data.model_dump()), number, repeat),
    )
    create_view = View()
    create_view.request, create_view.action, create_view.container = req, "create", container
    add(
        "create",
        "check_unique (no unique_fields)",
        await best_us_async(lambda: create_view.check_unique(db, values), number, repeat),
    )

    await db.close()
    _container.reset(token)
    return rows


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"  {'':8} {'step':58} {'core µs':>8} {'hand µs':>8}")
    asyncio.run(main(args.number, args.repeat))


if __name__ == "__main__":
    run()
