"""The floor: the posts resource on bare Starlette + the database driver + orjson.

No ORM, no validation library, no dependency injection: what Python can do with no framework.
It still does the same work per request as the framework: the list reads the page and the count
in one statement (the count a scalar subquery, as the framework's default pagination does) and
builds the same `{count, next, previous, results}` envelope with the same links; POST checks the
body's types by hand and inserts with `RETURNING id`.

PostgreSQL goes through an asyncpg pool (no reset query on release: nothing changes session
state); SQLite through a small queue of aiosqlite connections in autocommit mode.

Run (the runner does this):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m uvicorn \
        --app-dir bench/http app_floor:app
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DATABASE_URL = os.environ["DATABASE_URL"]
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
POOL_SIZE = 10
COLUMNS = "id, title, content, is_published, views"
# The page and the count of all rows in one statement (a scalar subquery), as the framework's
# default pagination reads them; an empty page (past the end) needs the COUNT on its own.
PAGE = (
    f"SELECT {COLUMNS}, (SELECT count(*) FROM bench_posts) FROM bench_posts"
    " ORDER BY id LIMIT ? OFFSET ?"
)
PG_PAGE = PAGE.replace("LIMIT ? OFFSET ?", "LIMIT $1 OFFSET $2")


class Backend(Protocol):
    async def count(self) -> int: ...
    async def page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int | None]: ...
    async def get(self, post_id: int) -> dict[str, Any] | None: ...
    async def insert(self, values: Sequence[Any]) -> int: ...
    async def close(self) -> None: ...


def _row(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[0],
        "title": row[1],
        "content": row[2],
        "is_published": bool(row[3]),
        "views": row[4],
    }


class PostgresBackend:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresBackend:
        import asyncpg  # type: ignore[import-untyped]

        async def no_reset(_: Any) -> None:
            return None

        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=30, reset=no_reset)
        return cls(pool)

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM bench_posts"))

    async def page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        rows = await self.pool.fetch(PG_PAGE, limit, offset)
        return [_row(row) for row in rows], rows[0][5] if rows else None

    async def get(self, post_id: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(f"SELECT {COLUMNS} FROM bench_posts WHERE id = $1", post_id)
        return None if row is None else dict(row)

    async def insert(self, values: Sequence[Any]) -> int:
        return int(
            await self.pool.fetchval(
                "INSERT INTO bench_posts (title, content, is_published, views) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                *values,
            )
        )

    async def close(self) -> None:
        await self.pool.close()


class SqliteBackend:
    def __init__(self, connections: list[Any]) -> None:
        self.connections = connections
        self.idle: asyncio.Queue[Any] = asyncio.Queue()
        for connection in connections:
            self.idle.put_nowait(connection)

    @classmethod
    async def open(cls, url: str) -> SqliteBackend:
        import aiosqlite

        path = url.split(":///", 1)[1]
        connections = []
        for _ in range(POOL_SIZE):
            connection = await aiosqlite.connect(path, isolation_level=None)
            await connection.execute("PRAGMA busy_timeout=5000")
            connections.append(connection)
        return cls(connections)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        connection = await self.idle.get()
        try:
            yield connection
        finally:
            self.idle.put_nowait(connection)

    async def count(self) -> int:
        async with self._connection() as db, db.execute("SELECT count(*) FROM bench_posts") as c:
            row = await c.fetchone()
        return int(row[0])

    async def page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        async with self._connection() as db, db.execute(PAGE, (limit, offset)) as cursor:
            rows = await cursor.fetchall()
        return [_row(row) for row in rows], rows[0][5] if rows else None

    async def get(self, post_id: int) -> dict[str, Any] | None:
        sql = f"SELECT {COLUMNS} FROM bench_posts WHERE id = ?"
        async with self._connection() as db, db.execute(sql, (post_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _row(row)

    async def insert(self, values: Sequence[Any]) -> int:
        sql = (
            "INSERT INTO bench_posts (title, content, is_published, views) "
            "VALUES (?, ?, ?, ?) RETURNING id"
        )
        async with self._connection() as db, db.execute(sql, tuple(values)) as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


backend: Backend


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def _int(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None


async def list_posts(request: Request) -> Response:
    page = _int(request, "page", 1)
    page_size = _int(request, "page_size", DEFAULT_PAGE_SIZE)
    if page is None or page_size is None:
        return _json({"detail": "page and page_size must be integers >= 1."}, 422)
    size = min(page_size, MAX_PAGE_SIZE)
    offset = (page - 1) * size
    results, count = await backend.page(size, offset)
    if count is None:
        count = await backend.count() if offset else 0
    if page > 1 and offset >= count:
        return _json({"detail": "Invalid page."}, 404)
    next_ = str(request.url.include_query_params(page=page + 1)) if offset + size < count else None
    previous = None
    if page == 2:
        previous = str(request.url.remove_query_params("page"))
    elif page > 2:
        previous = str(request.url.include_query_params(page=page - 1))
    return _json({"count": count, "next": next_, "previous": previous, "results": results})


async def get_post(request: Request) -> Response:
    post = await backend.get(request.path_params["post_id"])
    if post is None:
        return _json({"detail": "Post not found."}, 404)
    return _json(post)


_TYPES: dict[str, tuple[type, bool]] = {  # name -> (type, required)
    "title": (str, True),
    "content": (str, True),
    "is_published": (bool, False),
    "views": (int, False),
}


async def create_post(request: Request) -> Response:
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _json({"detail": "Body must be JSON."}, 400)
    if not isinstance(data, dict) or set(data) - set(_TYPES):
        return _json({"detail": f"Fields: {', '.join(_TYPES)}."}, 422)
    for name, (kind, required) in _TYPES.items():
        value = data.get(name)
        if value is None and not required:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return _json({"detail": f"{name}: expected {kind.__name__}."}, 422)
    if len(data["title"]) > 200:
        return _json({"detail": "title: at most 200 characters."}, 422)
    post = {
        "title": data["title"],
        "content": data["content"],
        "is_published": data.get("is_published") or False,
        "views": data.get("views") or 0,
    }
    post_id = await backend.insert(list(post.values()))
    return _json({"id": post_id, **post}, 201)


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    global backend
    if DATABASE_URL.startswith("sqlite"):
        backend = await SqliteBackend.open(DATABASE_URL)
    else:
        backend = await PostgresBackend.open(DATABASE_URL)
    try:
        yield
    finally:
        await backend.close()


app = Starlette(
    routes=[
        Route("/posts/", list_posts, methods=["GET"]),
        Route("/posts/", create_post, methods=["POST"]),
        Route("/posts/{post_id:int}/", get_post, methods=["GET"]),
    ],
    lifespan=lifespan,
)
