"""The demo API: posts with a custom action, on the embedded default (SQLite file, in-memory
broker/tasks)."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as Pydantic
from sqlalchemy.orm import Mapped
from starlette.requests import Request

from core import APIView, AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.permissions import AllowAny
from core.settings import Settings


class Post(Model):
    __tablename__ = "demo_posts"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    slug: Mapped[str] = Field.string(max_length=200, unique=True)
    content: Mapped[str] = Field.text(default="")
    is_published: Mapped[bool] = Field.boolean(default=False)
    views_count: Mapped[int] = Field.integer(default=0)
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)


class PostInput(BaseModel):
    title: str = Pydantic(max_length=200)
    slug: str = Pydantic(max_length=200, pattern=r"^[a-z0-9-]+$")
    content: str = ""
    is_published: bool = False


class PostOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    slug: str
    content: str
    is_published: bool
    views_count: int
    created_at: datetime.datetime


class PostViewSet(ModelViewSet):
    """GET/POST /posts/, GET/PUT/PATCH/DELETE /posts/{id}/, POST /posts/{id}/publish/."""

    model = Post
    input_schema = PostInput
    output_schema = PostOutput
    tags = ["Posts"]
    permission_classes = [AllowAny]
    unique_fields = ["slug"]
    filterset_fields = ["is_published"]
    search_fields = ["title", "content"]
    ordering_fields = ["created_at", "views_count", "title"]

    @action(methods=["POST"], detail=True)
    async def publish(self, request: Request, db: Any, **kwargs: Any) -> dict[str, bool]:
        """POST /posts/{id}/publish/"""
        post = await self.get_object(db, **kwargs)
        post.is_published = True
        await post.save(db)
        return {"published": True}


class HealthView(APIView):
    permission_classes = [AllowAny]
    tags = ["System"]

    async def get(self, request: Request, **kwargs: Any) -> dict[str, str]:
        return {"status": "healthy"}


@asynccontextmanager
async def create_tables(app: CoreApp) -> AsyncIterator[None]:
    # A demo has no migrations folder; a project runs `core makemigrations` / `core migrate`.
    await app.create_all()
    yield


def create_app(settings: Settings | None = None) -> CoreApp:
    settings = settings or Settings(
        database_url="sqlite+aiosqlite:///./demo.db", app_name="Core Framework demo"
    )
    if not settings.secret_key:
        # There is no public default key. Without SECRET_KEY (environment or .env) the demo signs
        # with a random key of this run: its tokens end with the process.
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(48)})
    posts = AutoRouter(prefix="/posts", tags=["Posts"])
    posts.register("", PostViewSet, basename="post")
    api = AutoRouter(prefix=settings.api_prefix)
    api.include_router(posts)
    api.register("/health", HealthView)
    return CoreApp(settings=settings, routers=[api], lifespan=create_tables)
