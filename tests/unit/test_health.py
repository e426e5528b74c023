"""GET /health: what `core deploy`'s probes (Docker HEALTHCHECK, Kubernetes) call."""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from core import CoreApp
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
