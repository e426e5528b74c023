"""The posts resource as a FastAPI user writes it: the baseline the headline ratios are against.

What FastAPI's SQL tutorial teaches: `response_model=list[PostOut]` over `select(Post).limit(n)`
(a plain JSON list: no count, no links, no envelope), `session.get` for one row, `session.add` +
`commit` for a new one, a session per request through `Depends(get_session)` over an
`async_sessionmaker`. The list takes the same query parameters as the framework's default page
(`?page=`, `?page_size=` up to 100, 20 by default) and orders by the primary key, as a page
must to be stable; that is all it adds to the tutorial.

Same deliberate choices as `app_fastapi.py`: `expire_on_commit=False` (POST needs no refresh
after the commit) and the framework's default pool (20 connections, no overflow), no
`pool_pre_ping`.

Run (the runner does this):
    DATABASE_URL=sqlite+aiosqlite:///bench.db .venv/bin/python -m uvicorn \
        --app-dir bench/http app_fastapi_plain:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, Integer, String, Text, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ["DATABASE_URL"]

# The framework's default pool: 20 connections kept open, no overflow (SQLite file too).
_url = make_url(DATABASE_URL)
_pool = (
    {"pool_size": 20, "max_overflow": 0}
    if _url.database not in (None, "", ":memory:") or _url.get_backend_name() != "sqlite"
    else {}
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


app = FastAPI(title="Posts (FastAPI, plain list)")


@app.get("/posts/", response_model=list[PostOut])
async def list_posts(
    session: SessionDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    statement = select(Post).order_by(Post.id).offset((page - 1) * page_size).limit(page_size)
    return (await session.scalars(statement)).all()


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
