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
import secrets

from posts import Post, PostIn, PostOut, PostViewSet  # bench/http/posts.py, a sibling module

from core import AutoRouter, CoreApp
from core.settings import Settings

__all__ = ("Post", "PostIn", "PostOut", "PostViewSet", "app")


router = AutoRouter(prefix="/posts")
router.register("", PostViewSet, basename="post")

# No token is signed here, but the framework refuses to start without a secret key.
settings = Settings(
    database_url=os.environ["DATABASE_URL"],
    secret_key=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
)
app = CoreApp(settings=settings, routers=[router])
