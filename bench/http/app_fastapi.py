"""The posts resource hand-written the way FastAPI's documentation teaches.

`response_model=`, a session dependency (`Depends(get_session)` over an `async_sessionmaker`),
ORM `select()`s, and the same DRF envelope `{count, next, previous, results}` as the framework,
with the same two queries for a page (COUNT + the page) and the same `next`/`previous` links.

Deliberate choices, so that it does the same work as the framework and no more:

* `expire_on_commit=False` (what SQLAlchemy's asyncio docs recommend), so POST needs no
  `session.refresh()` after the commit: INSERT ... RETURNING id, then COMMIT, like the framework.
* The same pool as the framework's defaults (20 connections, no overflow), without
  `pool_pre_ping`.

Run (the runner does this):
    DATABASE_URL=sqlite+aiosqlite:///bench.db .venv/bin/python -m uvicorn \
        --app-dir bench/http app_fastapi:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, Integer, String, Text, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ["DATABASE_URL"]
MAX_PAGE_SIZE = 100

# The framework's default pool: 20 connections kept open, no overflow (SQLite file too).
_url = make_url(DATABASE_URL)
_pool = (
    {"pool_size": 20, "max_overflow": 0}
    if _url.database not in (None, "", ":memory:") or _url.get_backend_name() != "sqlite"
    else {}  # in-memory SQLite (bench/http/steps.py): SQLAlchemy's single-connection pool
)
engine = create_async_engine(DATABASE_URL, **_pool)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "bench_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False)
    views: Mapped[int] = mapped_column(Integer, default=0)


class PostIn(BaseModel):
    title: str = Field(max_length=200)
    content: str
    is_published: bool = False
    views: int = 0


class PostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str
    is_published: bool
    views: int


class PostPage(BaseModel):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[PostOut]


app = FastAPI(title="Posts (hand-written FastAPI)")


@app.get("/posts/", response_model=PostPage)
async def list_posts(
    request: Request,
    session: SessionDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1)] = 20,
) -> Any:
    size = min(page_size, MAX_PAGE_SIZE)
    offset = (page - 1) * size
    count = await session.scalar(select(func.count()).select_from(Post)) or 0
    if page > 1 and offset >= count:
        raise HTTPException(status_code=404, detail="Invalid page.")
    posts = (await session.scalars(select(Post).order_by(Post.id).offset(offset).limit(size))).all()
    next_ = str(request.url.include_query_params(page=page + 1)) if offset + size < count else None
    previous = None
    if page == 2:
        previous = str(request.url.remove_query_params("page"))
    elif page > 2:
        previous = str(request.url.include_query_params(page=page - 1))
    return {"count": count, "next": next_, "previous": previous, "results": posts}


@app.get("/posts/{post_id}/", response_model=PostOut)
async def get_post(post_id: int, session: SessionDep) -> Any:
    post = await session.get(Post, post_id)
    if post is None:
        raise HTTPException(status_code=404, detail="Post not found.")
    return post


@app.post("/posts/", response_model=PostOut, status_code=201)
async def create_post(data: PostIn, session: SessionDep) -> Any:
    post = Post(**data.model_dump())
    session.add(post)
    await session.commit()
    return post
