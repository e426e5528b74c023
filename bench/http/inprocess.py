"""Per-request CPU of each app driven in-process, and of Core with one step changed (ablations).

No HTTP server and no wrk: one process loads the three apps, starts their lifespans, and calls
them as ASGI apps from 16 concurrent tasks on uvloop. Variants run in small batches, interleaved
round after round (A, B, C, ... A, B, C, ...), so a noisy neighbour hits every variant alike;
each batch's process CPU time (`time.process_time`) per request is recorded and the medians are
reported, with each variant's difference to the unmodified framework.

The ablations switch one step of Core's request path *in this process only* (never the source),
to measure what that step costs per request:

* ``core-noping``     the pool's ``pre_ping`` off (on PostgreSQL SQLAlchemy's asyncpg ping is
                      BEGIN; ``;``; ROLLBACK on every checkout)
* ``core-sessionget`` ``get_object`` through ``session.get()`` instead of QuerySet + Repository
* ``core-noauth``     no ``authenticate`` and no permission checks
* ``core-nocommit``   a read's unit of work is closed (the pool rolls it back) instead of
                      committed and then closed (no effect on POST)
* ``core-values``     the list page as column rows (``QuerySet.only(...).values()``) validated
                      from dicts, instead of ORM instances read with ``from_attributes``
* ``core-lean``       all five together
* ``core-placebo``    no change at all: its distance from ``core`` is the noise of the run

Run:
    .venv/bin/python bench/http/inprocess.py --backend postgres --endpoint detail
        [--batch 200] [--rounds 20] [--variants core,core-noping,fastapi,floor]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (bench/http/run.py, a sibling script)

VARIANTS = (
    "core",
    "core-placebo",
    "core-noping",
    "core-sessionget",
    "core-noauth",
    "core-nocommit",
    "core-values",
    "core-lean",
    "fastapi",
    "fastapi_count",
    "floor",
)
TOGGLES = {
    "core": set(),
    "core-placebo": set(),
    "core-noping": {"noping"},
    "core-sessionget": {"sessionget"},
    "core-noauth": {"noauth"},
    "core-nocommit": {"nocommit"},
    "core-values": {"values"},
    "core-lean": {"noping", "sessionget", "noauth", "nocommit", "values"},
}
ASGIApp = Callable[..., Coroutine[Any, Any, None]]
POST_BODY = json.dumps(
    {
        "title": "Benchmarking Core",
        "content": "A post written in-process to measure validating, inserting, returning.",
        "is_published": True,
        "views": 7,
    }
).encode()

active: set[str] = set()  # the toggles of the batch running now


# -- ablations: patches that do the changed thing only while their toggle is active -----------
def install_ablations() -> None:
    from pydantic_core import to_json
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.errors import NotFoundError
    from core.views.base import JSONBytesResponse, ViewSet, list_adapter
    from core.views.viewsets import GenericViewSet

    get_object = GenericViewSet.get_object
    paginated_response = GenericViewSet.paginated_response
    authenticate = ViewSet.authenticate
    check_permissions = ViewSet.check_permissions
    check_object_permissions = ViewSet.check_object_permissions
    commit = AsyncSession.commit

    async def commit_(self: AsyncSession) -> None:
        if "nocommit" in active and not (self.new or self.dirty or self.deleted):
            return  # nothing written: close() hands the connection back, which rolls back
        await commit(self)

    async def get_object_(self: Any, db: Any, **kwargs: Any) -> Any:
        if "sessionget" not in active:
            return await get_object(self, db, **kwargs)
        obj = await db.get(self.model, kwargs[self.lookup_field])
        if obj is None:
            raise NotFoundError(f"{self.model.__name__} not found.")
        await self.check_object_permissions(obj)
        return obj

    async def authenticate_(self: Any, db: Any) -> Any:
        return None if "noauth" in active else await authenticate(self, db)

    async def check_permissions_(self: Any) -> None:
        if "noauth" not in active:
            await check_permissions(self)

    async def check_object_permissions_(self: Any, obj: Any) -> None:
        if "noauth" not in active:
            await check_object_permissions(self, obj)

    async def paginated_response_(self: Any, queryset: Any) -> Any:
        if "values" not in active:
            return await paginated_response(self, queryset)
        schema = self.get_output_schema()
        adapter = list_adapter(schema)
        paginator = self.pagination_class(self.page_size, self.max_page_size)
        window = paginator.window(self.request.query_params)
        count = await queryset.count()
        paginator.check(window, count)
        page = queryset[window.offset : window.offset + window.limit]
        rows = await page.values(*schema.model_fields) if count else []
        has_next = window.offset + window.limit < count
        next_, previous = paginator.links(self.request.url, window, has_next)
        results = adapter.dump_json(adapter.validate_python(rows))
        head = b'{"count":%d,"next":%s,"previous":%s,"results":' % (
            count,
            to_json(next_),
            to_json(previous),
        )
        return JSONBytesResponse(head + results + b"}")

    AsyncSession.commit = commit_  # type: ignore[method-assign]
    GenericViewSet.get_object = get_object_  # type: ignore[method-assign]
    GenericViewSet.paginated_response = paginated_response_  # type: ignore[method-assign]
    ViewSet.authenticate = authenticate_  # type: ignore[method-assign]
    ViewSet.check_permissions = check_permissions_  # type: ignore[method-assign]
    ViewSet.check_object_permissions = check_object_permissions_  # type: ignore[method-assign]


# -- an ASGI driver -----------------------------------------------------------------------------
class Lifespan:
    """Runs an ASGI app's lifespan protocol (startup on `start`, shutdown on `stop`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"startup failed: {message}")

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        if self.task is not None:
            await self.task


async def call(
    app: ASGIApp, state: dict[str, Any], method: str, path: str, query: bytes, body: bytes
) -> int:
    headers = [(b"host", b"127.0.0.1:8000")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def batch(
    app: ASGIApp, state: dict[str, Any], endpoint: str, requests: int, rows: int, start: int
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, non-2xx count) for `requests` requests, 16 at a time."""
    counter = iter(range(start, start + requests))
    bad = 0

    async def client() -> None:
        nonlocal bad
        for index in counter:
            if endpoint in ("list20", "list100"):
                query = b"page_size=100" if endpoint == "list100" else b""
                status = await call(app, state, "GET", "/posts/", query, b"")
            elif endpoint == "detail":
                post_id = index * 7919 % rows + 1
                status = await call(app, state, "GET", f"/posts/{post_id}/", b"", b"")
            else:
                status = await call(app, state, "POST", "/posts/", b"", POST_BODY)
            if not 200 <= status < 300:
                bad += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(16)))
    return time.process_time() - cpu, time.perf_counter() - wall, bad


def _set_pre_ping(app: Any, on: bool) -> None:
    app.container.database.database().engine.pool._pre_ping = on


async def measure(args: argparse.Namespace, database: bench.Database) -> dict[str, Any]:
    global active
    install_ablations()
    apps: dict[str, Any] = {}
    lifespans: dict[str, Lifespan] = {}
    for name in sorted({v.split("-")[0] for v in args.variants}):
        os.environ["DATABASE_URL"] = database.url_for(name)
        apps[name] = importlib.import_module(bench.MODULES[name]).app
        lifespans[name] = Lifespan(apps[name])
        await lifespans[name].start()
    pre_ping = (
        apps["core"].container.database.database().engine.pool._pre_ping
        if "core" in apps
        else False
    )
    results: dict[str, list[tuple[float, float, int]]] = {v: [] for v in args.variants}
    done = 0
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms up
            shift = round_ % len(args.variants)
            for variant in args.variants[shift:] + args.variants[:shift]:
                name = variant.split("-")[0]
                active = TOGGLES.get(variant, set())
                if args.endpoint == "create":
                    active = active - {"nocommit"}  # a write must commit
                if name == "core":
                    _set_pre_ping(apps[name], pre_ping and "noping" not in active)
                gc.collect()
                cpu, wall, bad = await batch(
                    apps[name], lifespans[name].state, args.endpoint, args.batch, args.rows, done
                )
                done += args.batch
                if args.endpoint == "create":
                    await asyncio.to_thread(database.reset)
                if round_:
                    results[variant].append((cpu / args.batch * 1e6, args.batch / wall, bad))
    finally:
        active = set()
        for lifespan in lifespans.values():
            await lifespan.stop()
    return {"pre_ping": pre_ping, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=bench.BACKENDS, default="postgres")
    parser.add_argument("--endpoint", choices=bench.ENDPOINTS, default="detail")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run

    with tempfile.TemporaryDirectory(prefix="bench_http_inprocess_") as tmp:
        database: bench.Database = (
            bench.SqliteDatabase(args.rows, Path(tmp))
            if args.backend == "sqlite"
            else bench.PostgresDatabase(args.rows, args.postgres_url)
        )
        try:
            measured = runner(measure(args, database))
        finally:
            database.close()

    results = measured["results"]
    medians = {v: statistics.median(r[0] for r in runs) for v, runs in results.items()}
    base = medians.get("core")
    print(
        f"{args.backend} {args.endpoint}: {args.rounds} interleaved rounds of {args.batch}"
        f" requests per variant, 16 concurrent, in-process (no HTTP server);"
        f" core's pool pre_ping: {measured['pre_ping']}\n"
    )
    print("| variant | µs CPU / request (median) | vs core | IQR µs | req/s (median) | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant, runs in results.items():
        cpus = sorted(r[0] for r in runs)
        quartiles = statistics.quantiles(cpus, n=4) if len(cpus) > 1 else [cpus[0]] * 3
        delta = f"{medians[variant] - base:+.0f}" if base is not None and variant != "core" else ""
        rps = statistics.median(r[1] for r in runs)
        bad = sum(r[2] for r in runs)
        print(
            f"| {variant} | {medians[variant]:.0f} | {delta} |"
            f" {quartiles[2] - quartiles[0]:.0f} | {rps:.0f} | {bad} |"
        )


if __name__ == "__main__":
    main()
