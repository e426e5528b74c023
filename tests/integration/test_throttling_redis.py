"""RedisRateLimiter on a real Redis: the RateLimiter contract, key expiry, and one throttle count
shared by two apps (two replicas, in production) through one Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from core import AutoRouter, CoreApp
from core.adapters.redis.ratelimit import RedisRateLimiter
from core.errors import RateLimiterUnavailableError
from core.testing import RateLimiterContract, test_settings
from core.throttling import AnonRateThrottle
from core.views import APIView

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    prefix = f"core-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def limiter(self, redis_url: str, prefix: str) -> AsyncIterator[RedisRateLimiter]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        yield limiter
        await limiter.close()


async def test_a_key_carries_the_prefix_and_expires_with_its_window(
    redis_url: str, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=prefix)
    try:
        for _ in range(3):
            await limiter.hit("login:ip:1", limit=2, window=30)
        async with Redis.from_url(redis_url) as redis:
            assert await redis.zcard(f"{prefix}login:ip:1") == 2, "refused hits are not stored"
            assert 28_000 <= await redis.pttl(f"{prefix}login:ip:1") <= 30_000
    finally:
        await limiter.close()


async def test_an_unreachable_redis_is_a_rate_limiter_error() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", prefix="x:")
    try:
        with pytest.raises(RateLimiterUnavailableError):
            await limiter.hit("k", limit=1, window=1)
    finally:
        await limiter.close()


class Ping(APIView):
    throttle_classes = [AnonRateThrottle]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"pong": True}


async def test_two_apps_sharing_redis_share_one_count(redis_url: str, prefix: str) -> None:
    router = AutoRouter()
    router.register("/ping", Ping)
    settings = test_settings(
        throttle_store="redis",
        throttle_store_url=redis_url,
        throttle_key_prefix=prefix,
        throttle_rates={"anon": "5/min"},
    )
    first, second = (
        CoreApp(settings=settings, routers=[router]),
        CoreApp(settings=settings, routers=[router]),
    )
    async with first.lifespan(), second.lifespan():
        assert isinstance(first.container.throttling.rate_limiter(), RedisRateLimiter)
        client = ("198.51.100.7", 1000)
        one = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=first, client=client), base_url="http://a"
        )
        two = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second, client=client), base_url="http://b"
        )
        async with one, two:
            # Eight concurrent requests, split over the two replicas: five get through.
            responses = await asyncio.gather(*(http.get("/ping/") for http in [one, two] * 4))
            codes = sorted(r.status_code for r in responses)

            assert codes == [200] * 5 + [429] * 3
            refused = next(r for r in responses if r.status_code == 429)
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert refused.json()["code"] == "throttled"
            # Another client's count is its own, on either replica.
            other = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=second, client=("198.51.100.8", 1)),
                base_url="http://b",
            )
            async with other:
                assert (await other.get("/ping/")).status_code == 200
