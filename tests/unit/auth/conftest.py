"""Fixtures of the auth tests: isolated declarations, a fast hasher, an app with auth routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.auth import configure_auth, register_password_hasher
from core.testing import isolated_declarations, test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, FastHasher, build_auth_app


@pytest.fixture
def hasher() -> Iterator[FastHasher]:
    """The fast hasher, registered and declared, with `User` as the user model."""
    with isolated_declarations():
        fast = FastHasher()
        register_password_hasher(fast)
        configure_auth(secret_key=SECRET, user_model=User, password_hasher=fast.name)
        yield fast


@pytest.fixture
async def auth_app(hasher: FastHasher) -> AsyncIterator[CoreApp]:
    # No grace window: a replay right after a refresh counts as one (see test_sessions.py).
    application = build_auth_app(test_settings(auth_refresh_grace_seconds=0))
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.fixture
async def http(auth_app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def ann(auth_app: CoreApp) -> Any:
    """An active user with PASSWORD."""
    async with auth_app.session() as db:
        return await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
