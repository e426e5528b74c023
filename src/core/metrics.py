"""Prometheus metrics from the composition root: the HTTP middleware, `/metrics`, the values
read at scrape time, and the metrics port of `core worker` and `core consumer`.

With METRICS_ENABLED=true (and the `metrics` extra installed) the container's
`metrics.recorder` is prometheus-client's; requests, consumed events and task runs report to
it as they happen. A scrape adds what lives outside the process, read from the adapters the
container selected, each within METRICS_SCRAPE_TIMEOUT: the outbox's pending and failed rows
and the age of the oldest pending one (when the app has an outbox), the task queue's streams
(when the selected queue can tell, as the Redis one can), and this process's password-hashing
queue. docs/operations.md#metrics lists every metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import ConfigurationError
from core.ports.metrics import Gauge, Metrics

__all__ = (
    "UNMATCHED_ROUTE",
    "HttpMetricsMiddleware",
    "add_metrics_route",
    "metrics_server",
    "render",
    "scrape_gauges",
)

#: The `route` label of a request no route matched (a 404, a redirect to the slashed path):
#: raw paths would give every scanner's probe a series of its own.
UNMATCHED_ROUTE = "<unmatched>"
#: Methods recorded as they are; any other is recorded as `OTHER`, for the same reason.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

SCRAPE_TIMEOUT = 2.0

logger = logging.getLogger("core.metrics")


class HttpMetricsMiddleware:
    """Record each HTTP request's method, route template, status and duration (pure ASGI).

    The route is the template the router matched (`/api/v1/posts/{id}/`), read from the
    scope after the app answered; a request no route matched is `<unmatched>`. A request
    whose handler raised before answering is recorded as a 500, as the server answers it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            method = scope["method"]
            self.metrics.http_request(
                method if method in _METHODS else "OTHER",
                template or UNMATCHED_ROUTE,
                status,
                time.perf_counter() - started,
            )


def add_metrics_route(fastapi: FastAPI, path: str) -> None:
    """Serve the metrics of the app (`request.app.state.core_app`) at `path`, outside OpenAPI."""
    fastapi.add_api_route(path, _metrics, methods=["GET"], include_in_schema=False)


async def _metrics(request: Request) -> Response:
    body, content_type = await render(request.app.state.core_app.container)
    return Response(body, headers={"Content-Type": content_type})


async def render(container: Any) -> tuple[bytes, str]:
    """The exposition of `container`'s recorder and of what a scrape reads: body and content
    type."""
    recorder: Metrics = container.metrics.recorder()
    return recorder.expose(await scrape_gauges(container))


def _setting(container: Any, name: str, default: Any) -> Any:
    try:
        value = getattr(container.config, name)()
    except Exception:  # a container built without the setting (e.g. by hand in a test)
        value = None
    return default if value is None else value


Source = Callable[[Any], Awaitable[list[Gauge] | None]]


async def scrape_gauges(container: Any, *, limit: float | None = None) -> list[Gauge]:
    """The gauges read at scrape time from the adapters `container` selected, each source
    within `limit` seconds (default METRICS_SCRAPE_TIMEOUT).

    A source that fails or misses the deadline is left out of this scrape and
    `core_metrics_source_up{source=...}` says 0; the scrape itself still answers.
    """
    seconds = (
        limit
        if limit is not None
        else float(_setting(container, "metrics_scrape_timeout", SCRAPE_TIMEOUT))
    )
    sources: dict[str, Source] = {"outbox": _outbox, "task_queue": _task_queue}
    results = await asyncio.gather(
        *(_bounded(name, source, container, seconds) for name, source in sources.items())
    )
    gauges: list[Gauge] = []
    up = Gauge(
        "metrics_source_up",
        "1 when this scrape read the source (outbox, task_queue), 0 when it failed or timed out.",
        ("source",),
    )
    for name, result in zip(sources, results, strict=True):
        if result is _NOT_APPLICABLE:
            continue
        up.values[(name,)] = 0.0 if result is None else 1.0
        if result:
            gauges.extend(result)
    if up.values:
        gauges.append(up)
    return gauges


_NOT_APPLICABLE: Any = object()


async def _bounded(name: str, source: Source, container: Any, seconds: float) -> list[Gauge] | None:
    try:
        async with asyncio.timeout(seconds):
            result = await source(container)
    except TimeoutError:
        logger.warning("Metrics: reading the %s took longer than %ss; left out", name, seconds)
        return None
    except Exception as exc:
        logger.warning("Metrics: could not read the %s: %s", name, exc)
        return None
    return _NOT_APPLICABLE if result is None else result


async def _outbox(container: Any) -> list[Gauge] | None:
    from core.models import Model

    # Only an app that has the outbox table (it imported core.messaging); importing the
    # messaging layer here would put the table on an app that has none.
    if "core_outbox" not in Model.metadata.tables:
        return None
    from core.messaging.outbox import outbox_stats
    from core.models.session import unit_of_work

    async with unit_of_work(container) as db:
        pending, failed, age = await outbox_stats(db)
    return [
        Gauge("outbox_pending", "Outbox rows waiting to be relayed.", values={(): pending}),
        Gauge(
            "outbox_failed",
            "Outbox rows parked as failed after OUTBOX_MAX_ATTEMPTS (`core outbox failed`).",
            values={(): failed},
        ),
        Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row; 0 when none is pending.",
            values={(): age},
        ),
    ]


async def _task_queue(container: Any) -> list[Gauge] | None:
    queue = container.tasks.queue()
    stats = getattr(queue, "stats", None)
    if stats is None:  # the in-process queue: its tasks are in this process's memory
        return None
    labels = ("queue",)
    depth = Gauge(
        "task_queue_depth",
        "Task messages in the queue's stream: waiting, or fetched and not yet acknowledged.",
        labels,
    )
    pending = Gauge(
        "task_queue_pending",
        "Task messages a worker fetched and has not acknowledged (running or abandoned).",
        labels,
    )
    delayed = Gauge(
        "task_queue_delayed", "Task runs waiting for their eta (countdown, retry).", labels
    )
    for entry in await stats():
        depth.values[(entry.queue,)] = entry.depth
        pending.values[(entry.queue,)] = entry.pending
        delayed.values[(entry.queue,)] = entry.delayed
    return [depth, pending, delayed]


class _MetricsApp:
    """The ASGI app of a worker's or consumer's metrics port: GET the metrics path (or `/`)."""

    def __init__(self, container: Any, path: str) -> None:
        self.container = container
        self.paths = {path, "/"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] not in self.paths:
            response = Response(b"Not found: GET the metrics path.\n", status_code=404)
        elif scope["method"] not in ("GET", "HEAD"):
            response = Response(b"", status_code=405, headers={"Allow": "GET, HEAD"})
        else:
            body, content_type = await render(self.container)
            response = Response(body, headers={"Content-Type": content_type})
        await response(scope, receive, send)


@contextlib.asynccontextmanager
async def metrics_server(container: Any) -> AsyncIterator[int | None]:
    """Serve `container`'s metrics on METRICS_HOST:METRICS_PORT while the block runs (for
    `core worker` and `core consumer`, which serve no HTTP otherwise).

    Yields:
        The port bound, or None when METRICS_ENABLED is off or METRICS_PORT is 0.

    Raises:
        ConfigurationError: the port cannot be bound.
    """
    recorder: Metrics = container.metrics.recorder()
    port = int(_setting(container, "metrics_port", 0))
    if not recorder.enabled or not port:
        yield None
        return
    host = str(_setting(container, "metrics_host", "0.0.0.0"))
    path = str(_setting(container, "metrics_path", "/metrics"))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening at once: a scrape that comes before uvicorn accepts waits in the backlog.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"METRICS_PORT={port}: cannot listen on {host}:{port}: {exc.strerror or exc}."
        ) from exc
    config = uvicorn.Config(
        _MetricsApp(container, path),
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    server = _EmbeddedServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="core-metrics-port")
    try:
        logger.info("Metrics on http://%s:%d%s", host, port, path)
        yield port
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        sock.close()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals (the worker's, the consumer's):
    it must not take SIGTERM and SIGINT from them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
