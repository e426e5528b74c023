"""The database part of a request, Core's way and the hand-written way: CPU and wall per request.

What each app does with the database for one request — open a session, run the queries, end
the unit of work — timed on its own, sequentially (one request at a time, no HTTP), on the
same scratch database bench/http/run.py uses. Variants change one thing at a time (pool
pre-ping, commit vs close, QuerySet vs `session.get`, ORM instances vs column rows), so the
differences say what each costs. Figures are the best of `--repeat` runs of `--number`
requests: CPU is the process's (`time.process_time`), wall includes the database's round trips.

Run:
    .venv/bin/python bench/http/uow.py [--backend postgres|sqlite] [--number 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/http/run.py, a sibling script)

Request = Callable[[int], Awaitable[Any]]


async def best(request: Request, number: int, repeat: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per request: the best of `repeat` runs of `number` requests."""
    cpu_best = wall_best = float("inf")
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(number):
            await request(i)
        cpu_best = min(cpu_best, time.process_time() - cpu)
        wall_best = min(wall_best, time.perf_counter() - wall)
    return cpu_best / number * 1e6, wall_best / number * 1e6


async def measure(args: argparse.Namespace, database: bench.Database) -> None:
    from pydantic_core import to_json
    from sqlalchemy import func, select

    os.environ["DATABASE_URL"] = database.url_for("core")
    core = importlib.import_module("app_core")
    hand = importlib.import_module("app_fastapi")
    app = core.app
    Post, HPost, rows = core.Post, hand.Post, args.rows
    async with app.lifespan():
        db = app.container.database.database()
        pool = db.engine.pool
        configured_ping = bool(getattr(pool, "_pre_ping", False))

        def pid(i: int) -> int:
            return int(i * 7919 % rows + 1)

        # -- retrieve -------------------------------------------------------------------------
        async def hand_detail(i: int) -> Any:
            async with hand.SessionLocal() as s:
                return await s.get(HPost, pid(i))

        async def core_detail(i: int) -> Any:  # what _endpoint + retrieve do
            s = db.session()
            try:
                obj = await Post.objects.using(s).filter(id=pid(i)).first()
                await s.commit()
                return obj
            finally:
                await s.close()

        async def core_detail_nocommit(i: int) -> Any:
            s = db.session()
            try:
                return await Post.objects.using(s).filter(id=pid(i)).first()
            finally:
                await s.close()

        async def core_detail_get(i: int) -> Any:
            s = db.session()
            try:
                obj = await s.get(Post, pid(i))
                await s.commit()
                return obj
            finally:
                await s.close()

        async def core_detail_get_nocommit(i: int) -> Any:
            s = db.session()
            try:
                return await s.get(Post, pid(i))
            finally:
                await s.close()

        # -- list ---------------------------------------------------------------------------
        async def hand_list(i: int) -> Any:
            async with hand.SessionLocal() as s:
                count = await s.scalar(select(func.count()).select_from(HPost))
                page = select(HPost).order_by(HPost.id).offset(0).limit(100)
                return count, (await s.scalars(page)).all()

        async def core_list(i: int) -> Any:  # what paginated_response does (ORM instances)
            s = db.session()
            try:
                qs = Post.objects.using(s).order_by("id")
                count = await qs.count()
                objects = await qs[0:100].all()
                await s.commit()
                return count, objects
            finally:
                await s.close()

        async def core_list_values(i: int) -> Any:
            s = db.session()
            try:
                qs = Post.objects.using(s).order_by("id")
                count = await qs.count()
                objects = await qs[0:100].values("id", "title", "content", "is_published", "views")
                await s.commit()
                return count, objects
            finally:
                await s.close()

        async def core_list_values_nocommit(i: int) -> Any:
            s = db.session()
            try:
                qs = Post.objects.using(s).order_by("id")
                count = await qs.count()
                return count, await qs[0:100].values(
                    "id", "title", "content", "is_published", "views"
                )
            finally:
                await s.close()

        # -- the fast path a framework can take: Core selects of the output's columns on an
        # AsyncConnection (no ORM session, no instances), rows straight to JSON ----------------
        columns = (Post.id, Post.title, Post.content, Post.is_published, Post.views)

        async def connection_detail(i: int) -> Any:
            async with db.engine.connect() as conn:
                result = await conn.execute(select(*columns).where(Post.id == pid(i)))
                return to_json(dict(result.mappings().one()))

        async def connection_list(i: int) -> Any:
            async with db.engine.connect() as conn:
                count = await conn.scalar(select(func.count()).select_from(Post))
                page = select(*columns).order_by(Post.id).offset(0).limit(100)
                rows = (await conn.execute(page)).mappings().all()
                return to_json({"count": count, "results": [dict(r) for r in rows]})

        # SQLAlchemy as compiler and pool only: the statement compiled once, run on the pooled
        # connection's own driver (asyncpg / aiosqlite), rows to JSON.
        dialect = db.engine.dialect
        postgres = dialect.name == "postgresql"

        def compiled(statement: Any) -> tuple[str, list[str]]:
            sql = statement.compile(dialect=dialect)
            return str(sql), list(sql.positiontup or ())

        detail_sql, _ = compiled(select(*columns).where(Post.id == 1))
        count_sql, _ = compiled(select(func.count()).select_from(Post))
        page_sql, _ = compiled(select(*columns).order_by(Post.id).offset(0).limit(100))
        names = [c.key for c in columns]

        async def fetch(raw: Any, sql: str, params: list[Any]) -> list[Any]:
            if postgres:
                return list(await raw.fetch(sql, *params))
            cursor = await raw.execute(sql, params)
            return list(await cursor.fetchall())

        async def driver_detail(i: int) -> Any:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                row = (await fetch(raw, detail_sql, [pid(i)]))[0]
                return to_json(dict(zip(names, row, strict=True)))

        async def driver_list(i: int) -> Any:
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                count = (await fetch(raw, count_sql, []))[0][0]
                rows = await fetch(raw, page_sql, [100, 0])
                results = [dict(zip(names, row, strict=True)) for row in rows]
                return to_json({"count": count, "results": results})

        # -- create ---------------------------------------------------------------------------
        values = {"title": "t", "content": "c" * 120, "is_published": True, "views": 7}

        async def hand_create(i: int) -> Any:
            async with hand.SessionLocal() as s:
                post = HPost(**values)
                s.add(post)
                await s.commit()
                return post

        async def core_create(i: int) -> Any:  # perform_create + _endpoint's commit
            s = db.session()
            try:
                post = await Post.objects.using(s).create(**values)
                await s.commit()
                return post
            finally:
                await s.close()

        cases: list[tuple[str, str, Request, bool | None]] = [
            ("retrieve", "hand: SessionLocal() + session.get + close", hand_detail, None),
            ("retrieve", "core: QuerySet.filter(id=).first() + commit + close", core_detail, True),
            ("retrieve", "core: the same, pool pre-ping off", core_detail, False),
            (
                "retrieve",
                "core: QuerySet ... + close (no commit), pre-ping off",
                core_detail_nocommit,
                False,
            ),
            (
                "retrieve",
                "core engine: session.get + commit + close, pre-ping off",
                core_detail_get,
                False,
            ),
            (
                "retrieve",
                "core engine: session.get + close, pre-ping off",
                core_detail_get_nocommit,
                False,
            ),
            (
                "retrieve",
                "fast path: Core select on AsyncConnection + to_json, pre-ping off",
                connection_detail,
                False,
            ),
            (
                "retrieve",
                "SQLAlchemy as compiler + pool, driver executes, to_json",
                driver_detail,
                False,
            ),
            ("list", "hand: COUNT + page of 100 ORM objects + close", hand_list, None),
            ("list", "core: qs.count() + qs[0:100].all() + commit + close", core_list, True),
            ("list", "core: the same, pool pre-ping off", core_list, False),
            (
                "list",
                "core: count + .values() rows + commit, pre-ping off",
                core_list_values,
                False,
            ),
            (
                "list",
                "core: count + .values() rows, no commit, pre-ping off",
                core_list_values_nocommit,
                False,
            ),
            (
                "list",
                "fast path: COUNT + Core page on AsyncConnection + to_json, pre-ping off",
                connection_list,
                False,
            ),
            ("list", "SQLAlchemy as compiler + pool, driver executes, to_json", driver_list, False),
            ("create", "hand: Post(**data) + add + commit", hand_create, None),
            ("create", "core: QuerySet.create (flush) + commit + close", core_create, True),
            ("create", "core: the same, pool pre-ping off", core_create, False),
        ]
        print(
            f"{database.backend}: best of {args.repeat} interleaved runs of {args.number}"
            f" sequential requests; core's pool pre_ping as configured: {configured_ping}\n"
        )
        found: dict[int, list[tuple[float, float]]] = {index: [] for index in range(len(cases))}
        for repeat in range(args.repeat + 1):  # the first round warms the caches up
            for index, (endpoint, _, request, ping) in enumerate(cases):
                if ping is not None:
                    pool._pre_ping = configured_ping and ping
                measured = await best(request, args.number, 1)
                if endpoint == "create":
                    await asyncio.to_thread(database.reset)
                if repeat:
                    found[index].append(measured)
        print("| endpoint | what | CPU µs / request | wall µs / request |")
        print("|---|---|---:|---:|")
        for index, (endpoint, label, _, ping) in enumerate(cases):
            if ping is True and not configured_ping:
                label += " (no pre-ping configured)"
            cpu = min(m[0] for m in found[index])
            wall = min(m[1] for m in found[index])
            print(f"| {endpoint} | {label} | {cpu:.0f} | {wall:.0f} |")
        pool._pre_ping = configured_ping
        await hand.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=bench.BACKENDS, default="postgres")
    parser.add_argument("--number", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with tempfile.TemporaryDirectory(prefix="bench_http_uow_") as tmp:
        database: bench.Database = (
            bench.SqliteDatabase(args.rows, Path(tmp))
            if args.backend == "sqlite"
            else bench.PostgresDatabase(args.rows, args.postgres_url)
        )
        try:
            runner(measure(args, database))
        finally:
            database.close()


if __name__ == "__main__":
    main()
