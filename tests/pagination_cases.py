"""Cursor pagination and count strategies, checked the same way on every backend.

The unit tests run these on the in-memory adapter and SQLite, the integration test on
PostgreSQL. Each ViewSet is served twice where it matters: with a plain-columns output schema
(rows straight to JSON, on the driver) and with one that validates instances.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ConfigDict
from sqlalchemy import event
from sqlalchemy.util.concurrency import await_

from core import AutoRouter, CoreApp, ModelViewSet
from core.settings import Settings
from core.views import CursorPagination, LimitOffsetPagination, PageNumberPagination, schemas
from tests.models import Article, Author


class ArticleCursor(ModelViewSet):
    """Keyset on `-views, id`: ties on `views` are broken by the primary key."""

    model = Article
    pagination_class = CursorPagination
    page_size = 3
    ordering = ["-views", "id"]
    ordering_fields = ["views", "id", "title", "slug", "rating", "created_at"]
    filterset_fields = ["is_published"]


class InstancesOutput(schemas.output_schema_for(Article)):  # type: ignore[misc]
    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")


class ArticleCursorInstances(ArticleCursor):
    output_schema = InstancesOutput


class Uncounted(PageNumberPagination):
    count = "none"


class UncountedOffsets(LimitOffsetPagination):
    count = "none"


class Estimated(PageNumberPagination):
    count = "estimated"
    estimate_threshold = 1  # any analysed table is "big": the planner's estimate answers


class ArticleExact(ModelViewSet):
    model = Article
    page_size = 3
    ordering = ["id"]
    filterset_fields = ["is_published", "slug", "author__email"]


class ArticleUncounted(ArticleExact):
    pagination_class = Uncounted


class ArticleUncountedOffsets(ArticleExact):
    pagination_class = UncountedOffsets


class ArticleEstimated(ArticleExact):
    pagination_class = Estimated


class ArticleExactInstances(ArticleExact):
    output_schema = InstancesOutput


def build(settings: Settings) -> CoreApp:
    router = AutoRouter()
    for path, view in [
        ("cursor", ArticleCursor),
        ("cursor-instances", ArticleCursorInstances),
        ("exact", ArticleExact),
        ("exact-instances", ArticleExactInstances),
        ("uncounted", ArticleUncounted),
        ("uncounted-offsets", ArticleUncountedOffsets),
        ("estimated", ArticleEstimated),
    ]:
        router.register(path, view, basename=path)
    return CoreApp(settings=settings, routers=[router])


def client(app: CoreApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def seed(app: CoreApp, n: int = 10) -> int:
    """`n` articles whose `views` tie in threes (`views = 10 * (i % 4)`); the author's id."""
    async with app.session() as db:
        author = await Author.objects.create(email="pages@x.io", name="Pages", db=db)
        for i in range(n):
            await Article.objects.create(
                title=f"t{i % 2}",
                slug=f"s{i}",
                views=10 * (i % 4),
                is_published=i % 5 != 0,
                author_id=author.id,
                db=db,
            )
    return int(author.id)


async def add_article(app: CoreApp, author_id: int, slug: str, views: int) -> None:
    async with app.session() as db:
        await Article.objects.create(
            title="new", slug=slug, views=views, is_published=True, author_id=author_id, db=db
        )


async def expected_order(app: CoreApp, **filters: Any) -> list[str]:
    async with app.session() as db:
        rows = (
            await Article.objects.using(db)
            .filter(**filters)
            .order_by("-views", "id")
            .values_list("slug")
        )
    return [slug for (slug,) in rows]


def slugs(body: dict[str, Any]) -> list[str]:
    return [item["slug"] for item in body["results"]]


async def walk(http: httpx.AsyncClient, url: str, link: str) -> tuple[list[str], list[Any]]:
    """Follow `link` (`next` or `previous`) from `url` to the end: the slugs page by page in the
    order met, and each page's body."""
    seen: list[str] = []
    bodies = []
    next_url: str | None = url
    while next_url is not None:
        response = await http.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        page = slugs(body)
        seen.extend(page if link == "next" else reversed(page))
        next_url = body[link]
        assert len(bodies) < 50, "the links loop"
    return seen, bodies


async def cursor_forward_and_back(app: CoreApp, base: str) -> None:
    """Every row once, in order, forwards and backwards; no count; page sizes honoured."""
    order = await expected_order(app)
    async with client(app) as http:
        forward, bodies = await walk(http, f"/{base}/", "next")
        assert forward == order
        assert [len(b["results"]) for b in bodies] == [3, 3, 3, 1]
        assert all("count" not in b for b in bodies)
        assert bodies[0]["previous"] is None and bodies[-1]["next"] is None
        # Back from the last page to the first.
        backward, back_bodies = await walk(http, bodies[-1]["previous"], "previous")
        assert backward == list(reversed(order[:-1]))
        assert [slugs(b) for b in back_bodies] == [order[6:9], order[3:6], order[0:3]]
        assert back_bodies[-1]["previous"] is None and back_bodies[-1]["next"] is not None
        # page_size like the other classes, capped at max_page_size; filters apply.
        assert slugs((await http.get(f"/{base}/?page_size=4")).json()) == order[:4]
        published = await expected_order(app, is_published=True)
        seen, _ = await walk(http, f"/{base}/?is_published=true&page_size=2", "next")
        assert seen == published
        # A client's ordering that ends in a unique column pages by it.
        by_slug, _ = await walk(http, f"/{base}/?ordering=-slug", "next")
        assert by_slug == sorted(order, reverse=True)
        # Timestamps travel in the cursor too (ties broken by the primary key).
        async with app.session() as db:
            rows = (
                await Article.objects.using(db).order_by("-created_at", "-id").values_list("slug")
            )
        by_time, bodies = await walk(http, f"/{base}/?ordering=-created_at,-id", "next")
        assert by_time == [slug for (slug,) in rows]
        back, _ = await walk(http, bodies[-1]["previous"], "previous")
        assert back == list(reversed(by_time[: len(by_time) - len(bodies[-1]["results"])]))


async def cursor_stable_under_inserts(app: CoreApp, base: str, author_id: int) -> None:
    """Rows inserted between requests never shift the pages: nothing repeats, nothing already
    past the cursor is skipped, and a new row after the cursor shows up once."""
    order = await expected_order(app)
    async with client(app) as http:
        first = (await http.get(f"/{base}/")).json()
        assert slugs(first) == order[:3]
        # One row sorting before the cursor (more views), one after it (fewest views).
        await add_article(app, author_id, f"{base}-top", 1000)
        await add_article(app, author_id, f"{base}-bottom", -1)
        rest, _ = await walk(http, first["next"], "next")
        assert rest == [*order[3:], f"{base}-bottom"]
        # Back from the second page: the first page, then the new top row before it.
        second = (await http.get(first["next"])).json()
        back = (await http.get(second["previous"])).json()
        assert slugs(back) == order[:3]
        top = (await http.get(back["previous"])).json()
        assert slugs(top) == [f"{base}-top"] and top["previous"] is None
        assert slugs((await http.get(top["next"])).json()) == order[:3]


async def cursor_refuses_what_it_cannot_page(app: CoreApp, base: str) -> None:
    async with client(app) as http:
        response = await http.get(f"/{base}/?ordering=views")
        assert response.status_code == 400
        assert "ends in a unique field" in response.json()["detail"]
        response = await http.get(f"/{base}/?ordering=rating,id")  # rating may be NULL
        assert response.status_code == 400 and "may be NULL" in response.json()["detail"]
        assert (await http.get(f"/{base}/?ordering=views,id")).status_code == 200
        for token in ("garbage!", "e30", "eyJwIjpbMV0sInIiOjAsImkiOjB9"):  # {} ; a short position
            response = await http.get(f"/{base}/", params={"cursor": token})
            assert response.status_code == 400, token
            assert response.json()["detail"] == "Invalid cursor."
        # A position whose values do not fit the columns.
        first = (await http.get(f"/{base}/")).json()
        token = first["next"].split("cursor=")[1]
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        data["p"] = ["many", "x"]
        forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        response = await http.get(f"/{base}/", params={"cursor": forged})
        assert response.status_code == 400, response.text


async def count_strategies(app: CoreApp, total: int, estimated: int | None = None) -> None:
    """exact counts; none answers a null count and still knows the next page; estimated gives
    the planner's estimate (`estimated`) where the database keeps one, else the exact count."""
    async with client(app) as http:
        for base in ("exact", "exact-instances"):
            body = (await http.get(f"/{base}/")).json()
            assert body["count"] == total and body["next"].endswith("page=2")
            last = (total + 2) // 3
            body = (await http.get(f"/{base}/?page={last}")).json()
            assert body["count"] == total and body["next"] is None
            assert (await http.get(f"/{base}/?page={last + 1}")).status_code == 404
            filtered = (await http.get(f"/{base}/?is_published=false")).json()
            assert filtered["count"] == len(filtered["results"]) == 2
            # The count sees the page's conditions (an IN list, a condition across a relation),
            # whatever page is read.
            query = "slug__in=s1,s2,s3,s4,s5&author__email=pages@x.io&is_published=true"
            filtered = (await http.get(f"/{base}/?{query}&page=2")).json()
            assert filtered["count"] == 4 and len(filtered["results"]) == 1
            assert filtered["results"][0]["slug"] == "s4" and filtered["next"] is None
            nobody = (await http.get(f"/{base}/?author__email=nobody@x.io")).json()
            assert nobody["count"] == 0 and nobody["results"] == []
        pages, bodies = await walk(http, "/uncounted/", "next")
        assert len(pages) == total and all(b["count"] is None for b in bodies)
        assert bodies[-1]["next"] is None and len(bodies[-1]["results"]) == (total % 3 or 3)
        assert (await http.get("/uncounted/?page=99")).status_code == 404
        # A page that ends exactly at the last row has no next.
        body = (await http.get(f"/uncounted-offsets/?limit=3&offset={total - 3}")).json()
        assert body["count"] is None and len(body["results"]) == 3 and body["next"] is None
        body = (await http.get("/uncounted-offsets/?limit=3&offset=99")).json()
        assert body == {"count": None, "next": None, "previous": body["previous"], "results": []}
        body = (await http.get("/estimated/")).json()
        assert body["count"] == (total if estimated is None else estimated)
        assert len(body["results"]) == 3 and body["next"] is not None
        filtered = (await http.get("/estimated/?is_published=false")).json()
        assert filtered["count"] == 2  # with conditions there is no estimate: counted exactly


def cursor_openapi(app: CoreApp) -> None:
    document = app.fastapi.openapi()
    parameters = {p["name"]: p for p in document["paths"]["/cursor/"]["get"]["parameters"]}
    assert parameters["cursor"]["schema"]["anyOf"][0] == {"type": "string"}
    assert "page" not in parameters and "page_size" in parameters
    envelopes = document["components"]["schemas"]
    cursor_page = next(v for k, v in envelopes.items() if k.endswith("CursorPage"))
    assert set(cursor_page["properties"]) == {"next", "previous", "results"}
    uncounted = next(v for k, v in envelopes.items() if k.endswith("UncountedPage"))
    assert {"type": "null"} in uncounted["properties"]["count"]["anyOf"]


@dataclass
class Selects:
    """SELECTs seen: `sent` as the database received them (whichever way), `executed` through
    SQLAlchemy's execution (its `before_cursor_execute` event)."""

    sent: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)


@contextmanager
def counting_selects(app: CoreApp) -> Iterator[Selects]:
    """Count the SELECTs the database runs while inside. SQLAlchemy's `before_cursor_execute`
    sees what SQLAlchemy executes; the driver path runs SQL on the driver without SQLAlchemy's
    execution events, so the driver's own hook on each pooled connection (aiosqlite's trace
    callback, asyncpg's query logger) sees every statement sent."""
    engine = app.container.database.database().engine.sync_engine
    seen = Selects()
    counting = [True]

    def selects(sql: str) -> bool:
        return counting[0] and sql.lstrip().upper().startswith("SELECT")

    def on_sent(sql: str) -> None:
        if selects(sql):
            seen.sent.append(sql)

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if selects(statement):
            seen.executed.append(statement)

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pagination-counted"):
            return
        record.info["pagination-counted"] = True
        driver = dbapi_connection.driver_connection
        if engine.dialect.name == "postgresql":
            driver.add_query_logger(lambda query: on_sent(query.query))
        else:
            await_(driver.set_trace_callback(on_sent))

    engine.pool.dispose()  # connections opened before would not have the hook
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield seen
    finally:
        counting[0] = False
        event.remove(engine.pool, "checkout", on_checkout)
        event.remove(engine, "before_cursor_execute", on_execute)
        engine.pool.dispose()


async def one_statement_per_page(app: CoreApp) -> None:
    """A counted page (rows and count in one statement, the count a scalar subquery), an
    uncounted page and a cursor page each cost one SELECT, sent on the driver."""
    postgres = app.container.database.database().engine.dialect.name == "postgresql"
    async with client(app) as http:
        for path in ("/exact/?page=2", "/uncounted/?page=2", "/cursor/", "/estimated/"):
            await http.get(path)  # plans compiled
            with counting_selects(app) as seen:
                response = await http.get(path)
                assert response.status_code == 200
                for _ in range(3):  # asyncpg hands logged queries to the loop's next turns
                    await asyncio.sleep(0)
            # The planner's estimate, then the page, on PostgreSQL; elsewhere the exact page.
            expected = 2 if postgres and path == "/estimated/" else 1
            assert len(seen.sent) == expected, seen.sent
            assert seen.executed == [], seen.executed  # none went through SQLAlchemy's execution
            if path.startswith("/exact"):
                assert "(SELECT count(*) AS count_1 \nFROM" in seen.sent[0], seen.sent
