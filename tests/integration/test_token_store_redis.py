"""RedisTokenStore on a real Redis: the TokenStore contract, TTLs, and refresh-token reuse
detection shared by two apps (two processes, in production) through one Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from core.adapters.redis.tokens import RedisTokenStore
from core.auth import configure_auth, register_password_hasher
from core.errors import TokenStoreUnavailableError
from core.testing import TokenStoreContract, isolated_declarations, test_settings
from tests import services
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, FastHasher, build_auth_app, login

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    async with services.redis_prefix(redis_url, end=":") as prefix:
        yield prefix


class TestRedisTokenStore(TokenStoreContract):
    @pytest.fixture
    async def store(self, redis_url: str, prefix: str) -> AsyncIterator[RedisTokenStore]:
        store = RedisTokenStore(redis_url, prefix=prefix)
        yield store
        await store.close()


async def test_keys_carry_the_prefix_and_expire_with_their_tokens(
    redis_url: str, prefix: str
) -> None:
    store = RedisTokenStore(redis_url, prefix=prefix)
    try:
        await store.mark_used("abc", ttl=120.2)
        await store.revoke_family("fam", ttl=600)
        await store.revoke_family("fam", ttl=30)  # shorter: ignored
        async with Redis.from_url(redis_url) as redis:
            assert 119 <= await redis.ttl(f"{prefix}used:abc") <= 121
            assert 590 <= await redis.ttl(f"{prefix}family:fam") <= 600
            await store.revoke_family("fam", ttl=900)  # longer: extends
            assert 890 <= await redis.ttl(f"{prefix}family:fam") <= 900
    finally:
        await store.close()


async def test_an_unreachable_redis_is_a_token_store_error() -> None:
    store = RedisTokenStore("redis://127.0.0.1:1/0", prefix="x:")
    try:
        with pytest.raises(TokenStoreUnavailableError):
            await store.mark_used("abc", ttl=10)
    finally:
        await store.close()


async def test_a_client_given_to_the_store_stays_open(redis_url: str, prefix: str) -> None:
    async with Redis.from_url(redis_url) as client:
        store = RedisTokenStore(client=client, prefix=prefix)
        assert await store.mark_used("k", ttl=5)
        await store.close()
        assert await client.ping()


@pytest.fixture
def declared() -> Iterator[None]:
    with isolated_declarations():
        register_password_hasher(FastHasher())
        configure_auth(secret_key=SECRET, user_model=User, password_hasher="fast_sha256")
        yield


async def test_two_apps_sharing_redis_catch_a_replay_made_on_the_other(
    redis_url: str, prefix: str, declared: None, tmp_path: Path
) -> None:
    settings = test_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/shared.db",
        auth_token_store="redis",
        auth_token_store_url=redis_url,
        auth_token_store_prefix=prefix,
        auth_refresh_grace_seconds=0,
    )
    first, second = build_auth_app(settings), build_auth_app(settings)
    async with first.lifespan(), second.lifespan():
        await first.create_all()
        async with first.session() as db:
            await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        assert type(first.container.auth.token_store()).__name__ == "RedisTokenStore"
        one = httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b")
        async with one, two:
            tokens = await login(one, "ann@example.com")
            rotated = await one.post(
                "/api/v1/auth/refresh/", json={"refresh_token": tokens["refresh_token"]}
            )
            assert rotated.status_code == 200

            replay = await two.post(
                "/api/v1/auth/refresh/", json={"refresh_token": tokens["refresh_token"]}
            )
            assert replay.status_code == 401 and "already used" in replay.json()["detail"]

            successor = await one.post(
                "/api/v1/auth/refresh/", json={"refresh_token": rotated.json()["refresh_token"]}
            )
            assert successor.status_code == 401 and "revoked" in successor.json()["detail"]
