"""Health endpoints for load balancers and orchestrators (`core deploy` points probes at them).

- `GET /health/live`: the process is up and serving requests; touches nothing else, so a
  database outage never makes Kubernetes restart every API pod.
- `GET /health/ready`: the process can do its work. The adapters the container selected for
  the database, the event broker, the task queue, the token store, the rate limiter and the
  idempotency store each run their `check()` (part of each port's contract), at once, each
  within HEALTH_CHECK_TIMEOUT seconds. 200 when every one answers, 503 when one does not; the body
  names each check with its status and latency in milliseconds, never an address or an error
  text (the log has those). An adapter without `check()` (a user's, written before the method
  joined the contract) is reported as "unchecked" and does not fail readiness.
- `GET /health`: kept as it was, the same answer as `/health/live`.

None of them is in the OpenAPI schema, and a project route at the same path wins (CoreApp adds
them after the project's routers). `core status` prints the same checks from a shell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ("CHECK_TIMEOUT", "PORTS", "CheckResult", "add_health_routes", "readiness")

# Seconds each dependency has to answer when the container sets no HEALTH_CHECK_TIMEOUT.
CHECK_TIMEOUT = 2.0

# Check name -> the container's provider of that port (as `core container graph` names it).
PORTS: dict[str, str] = {
    "database": "database.database",
    "broker": "messaging.broker",
    "tasks": "tasks.queue",
    "token_store": "auth.token_store",
    "rate_limiter": "throttling.rate_limiter",
    "idempotency_store": "idempotency.store",
}

Status = Literal["ok", "unchecked", "timed out", "unavailable"]

logger = logging.getLogger("core.health")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One readiness check: the port's name, the adapter's class, the outcome, how long it
    took."""

    name: str
    adapter: str
    status: Status
    latency_ms: float

    @property
    def failed(self) -> bool:
        return self.status in ("timed out", "unavailable")

    def public(self) -> dict[str, Any]:
        """What the endpoint shows: no adapter class, address or error text."""
        return {"status": self.status, "latency_ms": self.latency_ms}


def add_health_routes(fastapi: FastAPI) -> None:
    """Serve `/health`, `/health/live` and `/health/ready` on `fastapi` (a CoreApp's)."""
    for path in ("/health", "/health/live"):
        fastapi.add_api_route(path, _live, methods=["GET"], include_in_schema=False)
    fastapi.add_api_route("/health/ready", _ready, methods=["GET"], include_in_schema=False)


async def _live() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


async def _ready(request: Request) -> JSONResponse:
    """Every check answered: 200; one did not: 503, naming it."""
    results = await readiness(request.app.state.core_app.container)
    healthy = not any(result.failed for result in results.values())
    return JSONResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "checks": {name: result.public() for name, result in results.items()},
        },
        status_code=200 if healthy else 503,
    )


def _timeout(container: Any) -> float:
    try:
        value = container.config.health_check_timeout()
    except Exception:  # a container built without the setting (e.g. by hand in a test)
        value = None
    return float(value) if value else CHECK_TIMEOUT


async def readiness(container: Any, *, limit: float | None = None) -> dict[str, CheckResult]:
    """`{"database": CheckResult(...), ...}`: the `check()` of each adapter the container
    selected, run at once, each given `limit` seconds (default: HEALTH_CHECK_TIMEOUT)."""
    seconds = _timeout(container) if limit is None else limit
    names = list(PORTS)
    results = await asyncio.gather(
        *(_check(name, PORTS[name], container, seconds) for name in names)
    )
    return dict(zip(names, results, strict=True))


async def _check(name: str, provider: str, container: Any, limit: float) -> CheckResult:
    started = time.perf_counter()

    def result(status: Status, adapter: str = "?") -> CheckResult:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return CheckResult(name, adapter, status, elapsed)

    try:
        adapter = _provided(container, provider)
    except Exception:
        logger.warning("Readiness: the %s adapter could not be built", name, exc_info=True)
        return result("unavailable")
    adapter_name = f"{type(adapter).__module__}.{type(adapter).__qualname__}"
    check = getattr(adapter, "check", None)
    if check is None:
        return result("unchecked", adapter_name)
    try:
        async with asyncio.timeout(limit):
            await check()
    except TimeoutError:
        logger.warning("Readiness: %s did not answer within %ss", name, limit)
        return result("timed out", adapter_name)
    except Exception:
        logger.warning("Readiness: %s is unavailable", name, exc_info=True)
        return result("unavailable", adapter_name)
    return result("ok", adapter_name)


def _provided(container: Any, provider: str) -> Any:
    target = container
    for part in provider.split("."):
        target = getattr(target, part)
    return target()
