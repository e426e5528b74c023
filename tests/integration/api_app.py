"""The test API as an ASGI module for uvicorn, on the database named by DATABASE_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core import CoreApp
from core.settings import Settings
from tests.apps import build_app


@asynccontextmanager
async def _tables(app: CoreApp) -> AsyncIterator[None]:
    await app.create_all()
    yield


app = build_app(Settings(_env_file=None), lifespan=_tables)  # type: ignore[call-arg]
