"""GET /health/ready and `core status` against real services: each adapter's `check()` answers,
or the endpoint is 503 (and the command exits 1) naming the one that does not."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from core import CoreApp
from core.testing import test_settings
from tests import services
from tests.unit.cli.test_cli_edges import run_core

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

PORTS = {"database", "broker", "tasks", "token_store", "rate_limiter", "idempotency_store"}


def _settings(database_url: str, redis_url: str) -> dict[str, str]:
    """Every port on a real service: PostgreSQL for the database, Redis for the rest."""
    return {
        "database_url": database_url,
        "message_broker": "redis",
        "task_broker": "redis",
        "auth_token_store": "redis",
        "throttle_store": "redis",
        "idempotency_store": "redis",
        "redis_url": redis_url,
        "task_key_prefix": f"core-health-{uuid.uuid4().hex[:8]}",
    }


def _refusing_postgres(postgres_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(postgres_url).set(port=services.free_port()).render_as_string(False)


def _stopped_redis() -> str:
    return f"redis://127.0.0.1:{services.free_port()}/0"


async def _ready(**settings: str) -> httpx.Response:
    app = CoreApp(settings=test_settings(**settings))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/health/ready")
    finally:
        await app.container.database.database().dispose()


def _failing(response: httpx.Response) -> set[str]:
    return {name for name, c in response.json()["checks"].items() if c["status"] != "ok"}


async def test_ready_when_every_service_answers(postgres_url: str, redis_url: str) -> None:
    response = await _ready(**_settings(postgres_url, redis_url))

    assert response.status_code == 200, response.text
    assert set(response.json()["checks"]) == PORTS
    assert _failing(response) == set()


async def test_not_ready_when_redis_is_stopped(postgres_url: str) -> None:
    stopped = _stopped_redis()

    response = await _ready(**_settings(postgres_url, stopped))

    assert response.status_code == 503
    assert _failing(response) == {
        "broker",
        "tasks",
        "token_store",
        "rate_limiter",
        "idempotency_store",
    }
    assert stopped.split("//")[1].split("/")[0] not in response.text


async def test_not_ready_when_the_database_refuses(postgres_url: str, redis_url: str) -> None:
    refusing = _refusing_postgres(postgres_url)

    response = await _ready(**_settings(refusing, redis_url))

    assert response.status_code == 503
    assert _failing(response) == {"database"}
    assert response.json()["checks"]["database"]["status"] == "unavailable"
    assert "127.0.0.1" not in response.text and "localhost" not in response.text


async def test_the_database_token_store_is_checked_on_its_database(
    postgres_url: str, redis_url: str
) -> None:
    settings = {**_settings(_refusing_postgres(postgres_url), redis_url)}
    settings["auth_token_store"] = "database"

    response = await _ready(**settings)

    assert response.status_code == 503
    assert _failing(response) == {"database", "token_store"}


def _env(settings: dict[str, str]) -> dict[str, str]:
    return {key.upper(): value for key, value in settings.items()}


def test_core_status_prints_each_port_and_exits_0_when_ready(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    result = run_core(tmp_path, "status", **_env(_settings(postgres_url, redis_url)))

    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert set(rows) == PORTS
    assert rows["database"][1] == "core.adapters.sqlalchemy.database.SqlAlchemyDatabase"
    assert rows["broker"][1] == "core.adapters.faststream.redis.RedisEventBroker"
    assert rows["tasks"][1] == "core.adapters.taskiq.queue.TaskiqTaskQueue"
    assert rows["token_store"][1] == "core.adapters.redis.tokens.RedisTokenStore"
    assert rows["rate_limiter"][1] == "core.adapters.redis.ratelimit.RedisRateLimiter"
    assert all(row[2] == "ok" for row in rows.values())


def test_core_status_exits_1_naming_a_stopped_redis(tmp_path: Path, postgres_url: str) -> None:
    result = run_core(tmp_path, "status", **_env(_settings(postgres_url, _stopped_redis())))

    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["database"][2] == "ok"
    assert rows["broker"][2] != "ok" and rows["token_store"][2] == "unavailable"
    assert "not ready: broker, tasks, token_store, rate_limiter" in result.stderr
