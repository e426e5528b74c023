"""pytest plugin (auto-loaded): `core_settings`, `app`, `client` and `isolated_declarations`
fixtures.

`app` is a fresh CoreApp per test with every backend in memory, so provider overrides and data
never leak between tests. Point it at your project's app factory with the ini option
`core_app_factory = "src.main:create_app"` (a callable taking `settings`), or override the
`app` fixture.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from core import context
from core.app import CoreApp
from core.declarations import Declarations, declarations
from core.settings import Settings


def test_settings(**overrides: Any) -> Settings:
    """Settings for a test: every backend in memory, nothing read from `.env`."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": "memory://",
        "message_broker": "memory",
        "task_broker": "memory",
        "idempotency_store": "memory",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


@contextmanager
def isolated_declarations(
    declared: Declarations | None = None, *, empty: bool = False
) -> Iterator[Declarations]:
    """Forget, on exit, whatever was declared inside the block: tasks, events, consumers,
    registered hashers, token and auth backends, and `configure_auth` values.

    Args:
        declared: the `Declarations` to restore; the process's (where the decorators and
            `register_*` record) by default.
        empty: start the block with nothing declared, so what it declares is all there is.

    Yields:
        That `Declarations`; declare into it freely.

    Example:
        >>> from core.auth import configure_auth
        >>> with isolated_declarations() as declared:
        ...     _ = configure_auth(password_hasher="argon2")
        ...     declared.auth.password_hasher
        'argon2'
        >>> declarations().auth.password_hasher is None  # as before the block
        True
    """
    target = declared if declared is not None else declarations()
    saved = target.snapshot()
    if empty:
        target.restore(Declarations().snapshot())
    try:
        yield target
    finally:
        target.restore(saved)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "core_app_factory", "module:callable building the project's CoreApp from settings"
    )


@pytest.fixture(autouse=True)
def _core_process_default() -> Iterator[None]:
    """No test sees the process default container an earlier one built: it is shut down
    after each test that built one (a script's `core.setup()`, a helper used outside an app)."""
    yield
    if context.has_default():
        asyncio.run(context.shutdown())


@pytest.fixture(name="isolated_declarations")
def isolated_declarations_fixture() -> Iterator[Declarations]:
    """The process's `Declarations`, restored after the test: what a test declares (`@task`,
    `@consumer`, `register_*`, `configure_auth`...) does not leak into the next."""
    with isolated_declarations() as declared:
        yield declared


@pytest.fixture
def core_settings() -> Settings:
    """The settings the `app` fixture builds from; override to change one."""
    return test_settings()


@pytest.fixture
async def app(request: pytest.FixtureRequest, core_settings: Settings) -> AsyncIterator[CoreApp]:
    """A fresh CoreApp, its resources started and its tables created, stopped after the test."""
    factory_path = request.config.getini("core_app_factory")
    if factory_path:
        module, _, name = str(factory_path).partition(":")
        application: CoreApp = getattr(importlib.import_module(module), name or "create_app")(
            settings=core_settings
        )
    else:
        application = CoreApp(settings=core_settings)
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.fixture
async def client(app: CoreApp) -> AsyncIterator[Any]:
    """An httpx.AsyncClient talking to `app` in-process."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
