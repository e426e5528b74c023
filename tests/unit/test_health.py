"""GET /health, /health/live and /health/ready: what `core deploy`'s probes call."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter

from core import CoreApp
from core.adapters.memory.broker import InMemoryEventBroker
from core.adapters.memory.database import InMemoryDatabase
from core.adapters.memory.ratelimit import InMemoryRateLimiter
from core.adapters.memory.tasks import InMemoryTaskQueue
from core.adapters.memory.tokens import InMemoryTokenStore
from core.health import readiness
from core.testing import test_settings


async def _get(app: CoreApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_health_answers_ok_without_touching_the_database() -> None:
    # An unreachable database: the endpoint must not need it.
    app = CoreApp(settings=test_settings(database_url="sqlite+aiosqlite:////nonexistent/x.db"))

    response = await _get(app, "/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_is_not_in_the_openapi_schema() -> None:
    app = CoreApp(settings=test_settings())

    schema = (await _get(app, "/openapi.json")).json()

    assert "/health" not in schema["paths"]


async def test_a_project_route_at_health_wins() -> None:
    router = APIRouter()

    @router.get("/health")
    async def mine() -> dict[str, str]:
        return {"status": "mine"}

    app = CoreApp(settings=test_settings(), routers=[router])

    response = await _get(app, "/health")

    assert response.json() == {"status": "mine"}


PORTS = {"database", "broker", "tasks", "token_store", "rate_limiter", "idempotency_store"}


async def test_live_and_ready_answer_ok_when_everything_answers() -> None:
    app = CoreApp(settings=test_settings())

    live = await _get(app, "/health/live")
    ready = await _get(app, "/health/ready")

    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == PORTS
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert isinstance(check["latency_ms"], float) and check["latency_ms"] >= 0


async def test_ready_is_503_when_the_database_is_down_and_live_stays_200() -> None:
    app = CoreApp(settings=test_settings(database_url="sqlite+aiosqlite:////nonexistent/x.db"))

    ready = await _get(app, "/health/ready")
    live = await _get(app, "/health/live")

    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "ok"
    # The public answer names no address, driver error or adapter class.
    assert "nonexistent" not in ready.text
    assert "sqlite" not in ready.text.lower() and "InMemory" not in ready.text
    assert live.status_code == 200


class _HangingDatabase:
    async def check(self) -> None:
        await asyncio.Event().wait()


async def test_a_check_that_does_not_answer_times_out() -> None:
    app = CoreApp(settings=test_settings())

    with app.container.database.database.override(_HangingDatabase()):
        checks = await readiness(app.container, limit=0.05)

    assert checks["database"].status == "timed out"
    assert checks["tasks"].status == "ok"


async def test_the_timeout_comes_from_the_health_check_timeout_setting() -> None:
    app = CoreApp(settings=test_settings(health_check_timeout=0.05))

    with app.container.database.database.override(_HangingDatabase()):
        response = await _get(app, "/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "timed out"


class _CustomBroker(InMemoryEventBroker):
    """A user's broker whose own check decides readiness."""

    def __init__(self, *, up: bool) -> None:
        super().__init__()
        self.up = up
        self.checked = 0

    async def check(self) -> None:
        self.checked += 1
        if not self.up:
            raise ConnectionError("broker.internal:9999 refused")


async def test_a_custom_adapters_check_decides_and_a_failing_one_is_named() -> None:
    app = CoreApp(settings=test_settings())
    broker = _CustomBroker(up=False)

    with app.container.messaging.broker.override(broker):
        down = await _get(app, "/health/ready")
        broker.up = True
        up = await _get(app, "/health/ready")

    assert broker.checked == 2
    assert down.status_code == 503
    assert down.json()["checks"]["broker"]["status"] == "unavailable"
    assert [name for name, c in down.json()["checks"].items() if c["status"] != "ok"] == ["broker"]
    assert "broker.internal" not in down.text
    assert up.status_code == 200


class _OldLimiter:
    """A user's rate limiter written before `check()` joined the contract."""

    async def hit(self, key: str, *, limit: int, window: float) -> None:
        raise NotImplementedError


async def test_an_adapter_without_check_is_unchecked_not_failing() -> None:
    app = CoreApp(settings=test_settings())

    with app.container.throttling.rate_limiter.override(_OldLimiter()):
        response = await _get(app, "/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["rate_limiter"]["status"] == "unchecked"


async def test_every_memory_adapter_checks_ok() -> None:
    adapters = [
        InMemoryDatabase(),
        InMemoryEventBroker(),
        InMemoryTaskQueue(),
        InMemoryTokenStore(),
        InMemoryRateLimiter(),
    ]

    for adapter in adapters:
        await adapter.check()  # returns: nothing to reach


async def test_health_ready_and_live_are_not_in_the_openapi_schema() -> None:
    app = CoreApp(settings=test_settings())

    paths = (await _get(app, "/openapi.json")).json()["paths"]

    assert not {"/health/live", "/health/ready"} & set(paths)
