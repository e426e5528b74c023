"""RedisRateLimiter on a real Redis: the RateLimiter contract, key expiry, and one throttle count
shared by two apps (two replicas, in production) through one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from core import AutoRouter, CoreApp
from core.adapters.redis.ratelimit import RedisRateLimiter
from core.auth import configure_auth, register_password_hasher
from core.errors import RateLimiterUnavailableError
from core.testing import RateLimiterContract, isolated_declarations, test_settings
from core.throttling import AnonRateThrottle
from core.views import APIView
from tests import services
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, FastHasher, build_auth_app

pytestmark = pytest.mark.redis

LOGIN = "/api/v1/auth/login/"


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    async with services.redis_prefix(redis_url, end=":") as prefix:
        yield prefix


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


@pytest.fixture
def declared() -> Iterator[None]:
    with isolated_declarations():
        register_password_hasher(FastHasher())
        configure_auth(secret_key=SECRET, user_model=User, password_hasher="fast_sha256")
        yield


async def test_guesses_at_one_account_spread_over_two_apps_share_its_rate(
    redis_url: str, prefix: str, declared: None
) -> None:
    settings = test_settings(
        throttle_store="redis",
        throttle_store_url=redis_url,
        throttle_key_prefix=prefix,
        throttle_rates={"auth": "100/min", "auth_account": "4/min"},
    )
    first, second = build_auth_app(settings), build_auth_app(settings)
    async with first.lifespan(), second.lifespan():
        for app in (first, second):  # each app has its own in-memory database
            await app.create_all()
            async with app.session() as db:
                await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        one = httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b")
        wrong = {"email": "ann@example.com", "password": "guess"}
        async with one, two:
            codes = [(await http.post(LOGIN, json=wrong)).status_code for http in [one, two] * 3]
            right = await two.post(LOGIN, json={"email": "ann@example.com", "password": PASSWORD})

    assert codes == [401, 401, 401, 401, 429, 429]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
