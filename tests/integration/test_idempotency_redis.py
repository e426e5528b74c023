"""The Redis idempotency store: its contract against a real server, its keys' prefix and
expiry, an unreachable server, and a retried POST through an app using it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from core.adapters.redis.idempotency import RedisIdempotencyStore
from core.errors import IdempotencyStoreUnavailableError
from core.testing import IdempotencyStoreContract, test_settings
from tests import services

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    async with services.redis_prefix(redis_url, end=":") as prefix:
        yield prefix


class TestRedisIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    async def store(self, redis_url: str, prefix: str) -> AsyncIterator[RedisIdempotencyStore]:
        store = RedisIdempotencyStore(redis_url, prefix=prefix)
        yield store
        await store.close()


async def test_keys_carry_the_prefix_and_expire(redis_url: str, prefix: str) -> None:
    store = RedisIdempotencyStore(redis_url, prefix=prefix, pending_ttl=30)
    try:
        assert await store.claim(None, "k", "fp", ttl=600, wait=0) is None
        async with Redis.from_url(redis_url) as redis:
            assert 28 <= await redis.ttl(f"{prefix}k") <= 30, "a pending claim lapses soon"
            await store.save(None, "k", _response(), ttl=600)
            assert 590 <= await redis.ttl(f"{prefix}k") <= 600, "a response lives its TTL"
    finally:
        await store.close()


async def test_an_unreachable_redis_is_a_store_error() -> None:
    store = RedisIdempotencyStore("redis://127.0.0.1:1/0", prefix="x:")
    try:
        with pytest.raises(IdempotencyStoreUnavailableError):
            await store.claim(None, "k", "fp", ttl=60, wait=0)
    finally:
        await store.close()


async def test_an_app_on_the_redis_store_replays_a_retried_post(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    from tests.apps import build_app

    app = build_app(
        test_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/redis-idem.db",
            idempotency_store="redis",
            redis_url=redis_url,
            idempotency_key_prefix=prefix,
        )
    )
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    async with app.lifespan():
        await app.create_all()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body: dict[str, Any] = {"name": "Ann", "email": f"{uuid.uuid4().hex}@x.io"}
            first = await client.post("/api/v1/authors/", json=body, headers=headers)
            again = await client.post("/api/v1/authors/", json=body, headers=headers)
            listed = (await client.get("/api/v1/authors/")).json()

    assert first.status_code == 201, first.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert listed["count"] == 1


def _response() -> Any:
    from core.ports.idempotency import StoredResponse

    return StoredResponse(201, (("content-type", "application/json"),), b"{}")
