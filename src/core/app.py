"""CoreApp: the composition root's entry point — a container, a FastAPI app, and their lifespan."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from core.api_docs import add_docs_routes, guard_docs, load_permission
from core.containers.core import CoreContainer, build_container
from core.context import is_running, reset_container, running, set_container, use_container
from core.errors import ConfigurationError, NotRunningError
from core.health import add_health_routes
from core.heap import frozen_heap
from core.logs import RequestIdMiddleware, configure_logging
from core.models.session import unit_of_work
from core.routing.openapi import docs_options, install_security_scheme
from core.settings import Settings
from core.views import errors

Lifespan = Callable[["CoreApp"], AbstractAsyncContextManager[None]]

logger = logging.getLogger("core.app")


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
        # The routers included, in order (AutoRouters and FastAPI APIRouters): what `attach`
        # includes into a host.
        self._included: list[Any] = []
        self._hosts: list[FastAPI] = []
        # Core serves the docs pages itself (core.api_docs), so they work with no internet.
        # DOCS_ENABLED, OPENAPI_SERVERS, OPENAPI_LICENSE_*; the caller's options win.
        options = {**docs_options(self.settings), **fastapi_options}
        docs_url = options.pop("docs_url", "/docs")
        redoc_url = options.pop("redoc_url", "/redoc")
        self.fastapi = FastAPI(
            title=title or self.settings.app_name,
            version=version,
            description=description,
            debug=self.settings.debug,
            lifespan=self._lifespan,
            docs_url=None,
            redoc_url=None,
            **options,
        )
        self.fastapi.state.core_app = self
        # TRACING_ENABLED: a server span per request (FastAPI's OpenTelemetry instrumentation).
        tracing = container.tracing()
        if tracing is not None:
            tracing.instrument_app(self.fastapi)
        # Outside FastAPI's own middleware, so even its 500 answers carry the request id.
        self._asgi: Any = RequestIdMiddleware(self.fastapi)
        # METRICS_ENABLED: outermost, so the time and status are what the client gets.
        recorder = container.metrics.recorder()
        if recorder.enabled:
            from core.metrics import HttpMetricsMiddleware

            self._asgi = HttpMetricsMiddleware(self._asgi, recorder)
        install_security_scheme(self.fastapi, self._login_path)
        add_docs_routes(
            self.fastapi,
            docs_url=docs_url,
            redoc_url=redoc_url,
            assets=self.settings.docs_assets,
        )
        errors.install(self.fastapi)
        if self.fastapi.openapi_url:
            self.fastapi.add_api_route(
                "/asyncapi.json", self._asyncapi, methods=["GET"], include_in_schema=False
            )
            if self.settings.docs_permission:
                # DOCS_PERMISSION: the pages and the documents they read, for allowed callers.
                pages = {docs_url, redoc_url, self.fastapi.swagger_ui_oauth2_redirect_url}
                guard_docs(
                    self.fastapi,
                    load_permission(self.settings.docs_permission),
                    {self.fastapi.openapi_url, "/asyncapi.json", *filter(None, pages)},
                )
        for router in routers:
            self.include_router(router)
        # After the project's routers, so one that serves /health itself wins. Probes of load
        # balancers and orchestrators (see `core deploy`) call /health/live and /health/ready.
        add_health_routes(self.fastapi)
        if recorder.enabled:
            from core.metrics import add_metrics_route

            add_metrics_route(self.fastapi, self.settings.metrics_path)

    def include_router(self, router: Any) -> None:
        """Mount an AutoRouter (anything with `api_router()`) or a FastAPI APIRouter."""
        self._included.append(router)
        if callable(getattr(router, "api_router", None)):
            self._routers.append(router)
            # Onto the app's own router, not included: see AutoRouter.add_routes.
            router.add_routes(self.fastapi.router)
        else:
            self.fastapi.include_router(router)

    def _api_routers(self) -> list[APIRouter]:
        """The FastAPI routers of what this app includes, in order."""
        return [
            router.api_router() if callable(getattr(router, "api_router", None)) else router
            for router in self._included
        ]

    def attach(self, host: FastAPI) -> None:
        """Serve this app's Core parts inside an existing FastAPI app, `host`: one call, either
        way the host uses them.

        - **Routes included** (the host does not mount this app): this app's routers are
          included into `host` (don't include them yourself). Their requests run on this
          app's container, Core's error handlers answer for them (404, 422 with
          `invalid_lookup_value`, 409 on unique violations; the host's own routes keep the
          host's handlers), and the host's OpenAPI lists their operations.
        - **Mounted** (`host.mount("/core", core_app)` before this call): requests reach this
          app whole, with its own error handlers and OpenAPI (`/core/openapi.json`).

        Either way this app's lifespan runs around the host's, so its database, task queue,
        event broker, outbox relay and in-process consumers start with the host and stop with
        it: tasks and events behave as in a standalone CoreApp. A mounted CoreApp whose
        lifespan nobody started answers every request with a 500 that says to call this.

        Args:
            host: the FastAPI app that serves (a Starlette app can mount a CoreApp too).

        Raises:
            ConfigurationError: `host` already includes this app's routers itself, or this
                app is already attached to it.

        Example:
            >>> host = FastAPI()  # doctest: +SKIP
            >>> core_app = CoreApp(routers=[api_router])  # doctest: +SKIP
            >>> core_app.attach(host)  # doctest: +SKIP
        """
        if any(attached is host for attached in self._hosts):
            raise ConfigurationError(f"CoreApp {self.name!r} is already attached to this app.")
        if not _mounts(host.router.routes, self):
            api_routers = self._api_routers()
            ours = {id(router) for router in api_routers}
            if any(id(getattr(route, "original_router", None)) in ours for route in host.routes):
                raise ConfigurationError(
                    f"The host app already includes CoreApp {self.name!r}'s routers: remove "
                    "your `host.include_router(...)` of them; `core_app.attach(host)` includes "
                    "them with Core's context and error handlers."
                )
            context = Depends(self._request_context)
            for api_router in api_routers:
                host.include_router(api_router, dependencies=[context])
            core_routes = {id(route) for route in _routes(api_routers)}
            errors.install_on_host(
                host, lambda request: id(request.scope.get("route")) in core_routes
            )
            install_security_scheme(host, self._login_path)
        host_lifespan = host.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            # Core's resources around the host's: the host's own start-up may already use them.
            async with self.lifespan(), host_lifespan(app) as state:
                yield state

        host.router.lifespan_context = lifespan
        self._hosts.append(host)

    async def _request_context(self) -> AsyncIterator[None]:
        # A dependency of the routes `attach` includes into a host: their requests run on this
        # app's container, as requests to the CoreApp itself do.
        token = set_container(self.container)
        try:
            yield
        finally:
            reset_container(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "lifespan"
            and scope.get("app") is not None
            and not is_running(self.container)
        ):
            # Mounted in another app (which set `app`), whose lifespan never started ours.
            await self._not_started(scope, receive, send)
            return
        token = set_container(self.container)
        try:
            await self._asgi(scope, receive, send)
        finally:
            reset_container(token)

    async def _not_started(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._hosts:
            fix = (
                "it is attached, so serve the host app with its lifespan (uvicorn does; a test "
                "runs `async with host.router.lifespan_context(host):`)"
            )
        else:
            fix = "call `core_app.attach(host)` where the host app is built"
        error = NotRunningError(
            f"CoreApp {self.name!r} is mounted in another app and its lifespan is not running: "
            f"{fix}, so its database, tasks and events start and stop with the host."
        )
        logger.error("%s", error)
        if scope["type"] == "http":
            body = {"detail": str(error), "code": error.code}
            await JSONResponse(body, status_code=500)(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011, "reason": error.code})

    @property
    def name(self) -> str:
        """What errors call this app: its OpenAPI title."""
        return self.fastapi.title

    @asynccontextmanager
    async def _lifespan(self, _: Any = None) -> AsyncIterator[None]:
        # Once per process start, never at import; a host's own logging setup is left alone.
        configure_logging(self.settings)
        with use_container(self.container):
            await _maybe_await(self.container.init_resources())
            try:
                # Counted as running for code outside any request (`current_container()`).
                with running(self.container, self.name):
                    # Frozen once everything has started, the user's lifespan included.
                    freeze = self.settings.gc_freeze_after_startup
                    if self._user_lifespan is None:
                        with frozen_heap(freeze):
                            yield
                    else:
                        async with self._user_lifespan(self):
                            with frozen_heap(freeze):
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

    def _login_path(self) -> str | None:
        # The route that issues the bearer tokens (an AuthViewSet's login), for the docs.
        for spec in self.routes:
            if spec.action == "login" and callable(getattr(spec.view, "issue_tokens", None)):
                return str(spec.path).rstrip("/") + "/"
        return None

    @property
    def routes(self) -> list[Any]:
        """The route specs of every AutoRouter mounted (what `core routes` prints)."""
        return [spec for router in self._routers for spec in router.route_specs()]


def _mounts(routes: Sequence[Any], app: CoreApp) -> bool:
    for route in routes:
        if not isinstance(route, Mount):
            continue
        if route.app is app or route.app is app.fastapi or _mounts(route.routes, app):
            return True
    return False


def _routes(routers: Sequence[Any]) -> Iterator[Any]:
    # The route objects of `routers`, through routers they include (FastAPI keeps an included
    # router as one entry whose `original_router` holds the routes a request matches).
    for router in routers:
        for route in router.routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                yield from _routes([included])
            else:
                yield route


async def _maybe_await(result: Any) -> None:
    # init_resources()/shutdown_resources() return an awaitable only when some resource is async.
    if inspect.isawaitable(result):
        await result
