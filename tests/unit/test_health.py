"""GET /health, /health/live and /health/ready: what `core deploy`'s probes call."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter

from core import CoreApp
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


async def test_live_and_ready_answer_ok_when_everything_answers() -> None:
    app = CoreApp(settings=test_settings())

    live = await _get(app, "/health/live")
    ready = await _get(app, "/health/ready")

    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "tasks": "ok", "token_store": "ok"},
    }


async def test_ready_is_503_when_the_database_is_down_and_live_stays_200() -> None:
    app = CoreApp(settings=test_settings(database_url="sqlite+aiosqlite:////nonexistent/x.db"))

    ready = await _get(app, "/health/ready")
    live = await _get(app, "/health/live")

    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable"
    assert body["checks"]["broker"] == "ok"
    # The public answer names no address or driver error.
    assert "nonexistent" not in ready.text
    assert live.status_code == 200


class _HangingDatabase:
    async def ping(self) -> None:
        await asyncio.Event().wait()


async def test_a_check_that_does_not_answer_times_out() -> None:
    app = CoreApp(settings=test_settings())

    with app.container.database.database.override(_HangingDatabase()):
        checks = await readiness(app.container, limit=0.05)

    assert checks["database"] == "timed out"
    assert checks["tasks"] == "ok"


async def test_health_ready_and_live_are_not_in_the_openapi_schema() -> None:
    app = CoreApp(settings=test_settings())

    paths = (await _get(app, "/openapi.json")).json()["paths"]

    assert not {"/health/live", "/health/ready"} & set(paths)
