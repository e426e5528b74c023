"""The posts resource served by Core Framework: a Model, a ModelViewSet and an AutoRouter.

Everything the framework does per request is in play: the container's session (unit of work),
authentication, permissions, the QuerySet over the Repository port, one validation + one JSON
pass through the output schema, and the commit.

Run (the runner does this):
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m uvicorn --app-dir bench/http app_core:app
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet
from core.settings import Settings


class Post(Model):
    __tablename__ = "bench_posts"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    content: Mapped[str] = Field.text()
    is_published: Mapped[bool] = Field.boolean(default=False)
    views: Mapped[int] = Field.integer(default=0)


class PostIn(BaseModel):
    title: str = PydanticField(max_length=200)
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


class PostViewSet(ModelViewSet):
    model = Post
    input_schema = PostIn
    output_schema = PostOut
    max_page_size = 100


router = AutoRouter(prefix="/posts")
router.register("", PostViewSet, basename="post")

app = CoreApp(settings=Settings(database_url=os.environ["DATABASE_URL"]), routers=[router])
