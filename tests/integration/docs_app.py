"""The test API as an ASGI module for uvicorn, on the in-memory database: what the docs pages
document (DOCS_ASSETS and the rest come from the environment)."""

from __future__ import annotations

from core.settings import Settings
from tests.apps import build_app

app = build_app(Settings(_env_file=None))  # type: ignore[call-arg]
