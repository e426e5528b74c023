"""Health endpoints for load balancers and orchestrators (`core deploy` points probes at them).

- `GET /health/live`: the process is up and serving requests; touches nothing else, so a
  database outage never makes Kubernetes restart every API pod.
- `GET /health/ready`: the process can do its work: the database, the event broker, the task
  queue and the token store each answer within a timeout. 503 when one does not, so the pod
  leaves the Service until it recovers.
- `GET /health`: kept as it was, the same answer as `/health/live`.

None of them is in the OpenAPI schema, and a project route at the same path wins (CoreApp adds
them after the project's routers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.ports.tasks import UnknownTaskError

__all__ = ("CHECK_TIMEOUT", "add_health_routes", "readiness")

# Seconds each dependency has to answer; a probe's own timeout must be longer than this.
CHECK_TIMEOUT = 2.0
_PROBE_ID = "core-health-probe"

logger = logging.getLogger("core.health")


def add_health_routes(fastapi: FastAPI) -> None:
    """Serve `/health`, `/health/live` and `/health/ready` on `fastapi` (a CoreApp's)."""
    for path in ("/health", "/health/live"):
        fastapi.add_api_route(path, _live, methods=["GET"], include_in_schema=False)
    fastapi.add_api_route("/health/ready", _ready, methods=["GET"], include_in_schema=False)


async def _live() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


async def _ready(request: Request) -> JSONResponse:
    """Every dependency answered: 200; one did not: 503, naming it."""
    checks = await readiness(request.app.state.core_app.container)
    healthy = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


async def readiness(container: Any, *, limit: float = CHECK_TIMEOUT) -> dict[str, str]:
    """`{"database": "ok", "broker": "timed out", ...}`: the checks run at once, each given
    `limit` seconds.

    The answers name no address or error text (the endpoint is public); the log has them.
    """
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: container.database.database().ping(),
        "broker": lambda: _ping_broker(container.messaging.broker()),
        "tasks": lambda: _ping_tasks(container.tasks.queue()),
        "token_store": lambda: _ping_token_store(container.auth.token_store()),
    }
    names = list(checks)
    states = await asyncio.gather(*(_check(name, checks[name], limit) for name in names))
    return dict(zip(names, states, strict=True))


async def _check(name: str, check: Callable[[], Awaitable[None]], limit: float) -> str:
    try:
        async with asyncio.timeout(limit):
            await check()
    except TimeoutError:
        logger.warning("Readiness: %s did not answer within %ss", name, limit)
        return "timed out"
    except Exception:
        logger.warning("Readiness: %s is unavailable", name, exc_info=True)
        return "unavailable"
    return "ok"


async def _ping_broker(broker: Any) -> None:
    # The in-memory broker has nothing to reach, and no ping.
    ping = getattr(broker, "ping", None)
    if ping is not None:
        await ping()


async def _ping_tasks(queue: Any) -> None:
    # Reading an unknown task's result is a round trip to the queue's store, and changes nothing.
    with contextlib.suppress(UnknownTaskError):
        await queue.result(_PROBE_ID)


async def _ping_token_store(store: Any) -> None:
    await store.is_revoked(_PROBE_ID)
