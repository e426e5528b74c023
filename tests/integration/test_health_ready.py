"""GET /health/ready against real Redis: broker, task queue and token store answer, or 503."""

from __future__ import annotations

import httpx
import pytest

from core import CoreApp
from core.testing import test_settings
from tests import services

pytestmark = pytest.mark.redis


def _redis_app(url: str) -> CoreApp:
    return CoreApp(
        settings=test_settings(
            message_broker="redis",
            task_broker="redis",
            auth_token_store="redis",
            redis_url=url,
            task_key_prefix="core-health-test",
        )
    )


async def _ready(app: CoreApp) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/health/ready")


async def test_ready_when_redis_answers(redis_url: str) -> None:
    app = _redis_app(redis_url)

    response = await _ready(app)

    assert response.status_code == 200, response.text
    assert set(response.json()["checks"].values()) == {"ok"}


async def test_not_ready_when_redis_is_down() -> None:
    app = _redis_app(f"redis://127.0.0.1:{services.free_port()}/0")

    response = await _ready(app)

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"] != "ok" and checks["tasks"] != "ok" and checks["token_store"] != "ok"
