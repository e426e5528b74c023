"""CoreApp: the composition root's entry point — a container, a FastAPI app, and their lifespan."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from core.containers.core import CoreContainer, build_container
from core.context import _container, use_container
from core.health import add_health_routes
from core.models.session import unit_of_work
from core.settings import Settings
from core.views import errors

Lifespan = Callable[["CoreApp"], AbstractAsyncContextManager[None]]


class CoreApp:
    """An ASGI app built from a container: `uvicorn module:app` serves it.

    Args:
        settings: the settings to build the container from; read from the environment and
            `.env` when neither this nor `container` is given.
        container: a ready root container (from `build_container`), e.g. one a test composed.
        routers: AutoRouters (or FastAPI APIRouters) to mount, in order.
        title: the OpenAPI title; `APP_NAME` by default.
        lifespan: an extra async context manager factory run inside the framework's own,
            after resources start and before they stop; it receives this app.

    Example:
        >>> app = CoreApp(settings=Settings(database_url="memory://"), title="Demo")
        >>> app.container.database.database().url
        'memory://'
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        container: CoreContainer | None = None,
        routers: Sequence[Any] = (),
        title: str | None = None,
        version: str = "0.1.0",
        description: str = "",
        lifespan: Lifespan | None = None,
        **fastapi_options: Any,
    ) -> None:
        if container is None:
            container = build_container(settings)
        elif settings is not None:
            raise TypeError(
                "Pass settings or container, not both: the container already has settings."
            )
        self.container = container
        self.settings: Settings = container.settings()
        self._user_lifespan = lifespan
        self._routers: list[Any] = []
        self.fastapi = FastAPI(
            title=title or self.settings.app_name,
            version=version,
            description=description,
            debug=self.settings.debug,
            lifespan=self._lifespan,
            **fastapi_options,
        )
        self.fastapi.state.core_app = self
        errors.install(self.fastapi)
        if self.fastapi.openapi_url:
            self.fastapi.add_api_route(
                "/asyncapi.json", self._asyncapi, methods=["GET"], include_in_schema=False
            )
        for router in routers:
            self.include_router(router)
        # After the project's routers, so one that serves /health itself wins. Probes of load
        # balancers and orchestrators (see `core deploy`) call /health/live and /health/ready.
        add_health_routes(self.fastapi)

    def include_router(self, router: Any) -> None:
        """Mount an AutoRouter (anything with `api_router()`) or a FastAPI APIRouter."""
        build = getattr(router, "api_router", None)
        if callable(build):
            self._routers.append(router)
        self.fastapi.include_router(build() if callable(build) else router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _container.set(self.container)
        try:
            await self.fastapi(scope, receive, send)
        finally:
            _container.reset(token)

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        with use_container(self.container):
            await _maybe_await(self.container.init_resources())
            try:
                if self._user_lifespan is None:
                    yield
                else:
                    async with self._user_lifespan(self):
                        yield
            finally:
                await _maybe_await(self.container.shutdown_resources())

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Start and stop this app's resources outside a server (tests, scripts, the CLI)."""
        return self._lifespan(self.fastapi)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        """A unit of work on this app's database, outside a request (scripts, tests, shells)."""
        with use_container(self.container):
            async with unit_of_work(self.container) as db:
                yield db

    async def create_all(self, metadata: Any = None) -> None:
        """Create every model's table (for demos and tests; projects use `core migrate`)."""
        from core.models import Model

        await self.container.database.database().create_all(metadata or Model.metadata)

    async def _asyncapi(self) -> JSONResponse:
        """The AsyncAPI document of the events this app publishes and consumes."""
        # Imported on first request, so `import core` stays free of the messaging layer.
        from core.messaging.asyncapi import asyncapi_document

        return JSONResponse(asyncapi_document(self))

    @property
    def routes(self) -> list[Any]:
        """The route specs of every AutoRouter mounted (what `core routes` prints)."""
        return [spec for router in self._routers for spec in router.route_specs()]


async def _maybe_await(result: Any) -> None:
    # init_resources()/shutdown_resources() return an awaitable only when some resource is async.
    if inspect.isawaitable(result):
        await result
