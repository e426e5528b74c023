"""Token stores: the memory adapter (contract, expiry, bounded size), the container's choice by
AUTH_TOKEN_STORE, and the RefreshTokens service on top."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from core.adapters.memory.tokens import InMemoryTokenStore
from core.auth import InvalidTokenError, TokenBackend
from core.auth.refresh import RefreshTokens
from core.containers import build_container
from core.testing import TokenStoreContract, test_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryTokenStore(TokenStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[InMemoryTokenStore]:
        store = InMemoryTokenStore()
        yield store
        await store.close()


async def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    store = InMemoryTokenStore(clock)
    await store.mark_used("a", ttl=10)
    await store.revoke_family("f", ttl=10)
    await store.revoke_family("f", ttl=5)

    clock.now += 9.9
    assert not await store.mark_used("a", ttl=10)
    assert await store.is_revoked("f")

    clock.now += 10.2
    assert await store.mark_used("a", ttl=10)  # forgotten: its token has expired anyway
    assert not await store.is_revoked("f")


async def test_expired_entries_are_swept_so_the_store_stays_bounded() -> None:
    clock = Clock()
    store = InMemoryTokenStore(clock)
    for n in range(5000):
        await store.mark_used(f"jti-{n}", ttl=1)
        clock.now += 0.01

    # Only about a second's worth (100) is live; sweeps keep the rest in check.
    assert len(store) < 2 * 1024


def test_memory_is_the_default_store_and_each_container_has_its_own() -> None:
    first = build_container(test_settings()).auth.token_store()
    second = build_container(test_settings()).auth.token_store()

    assert isinstance(first, InMemoryTokenStore) and first is not second


def test_auth_token_store_redis_selects_the_redis_adapter_without_connecting() -> None:
    container = build_container(
        test_settings(
            auth_token_store="redis",
            redis_url="redis://127.0.0.1:1/0",  # nothing listens there: nothing may connect
            auth_token_store_prefix="shop:auth:",
        )
    )
    store = container.auth.token_store()

    assert type(store).__name__ == "RedisTokenStore"
    assert store.prefix == "shop:auth:"
    explicit = build_container(
        test_settings(auth_token_store="redis", auth_token_store_url="redis://10.0.0.1:6380/2")
    ).auth.token_store()
    assert explicit._client.connection_pool.connection_kwargs["port"] == 6380


async def test_the_app_closes_its_token_store_on_shutdown() -> None:
    from core import CoreApp

    app = CoreApp(settings=test_settings())
    async with app.lifespan():
        store = app.container.auth.token_store()
        await store.mark_used("x", ttl=60)
        assert len(store) == 1
    assert len(store) == 0


class PlainTokens(TokenBackend):
    """A custom token backend whose tokens have no `jti` and no `exp`."""

    name = "plain"

    def create_token(
        self,
        payload: dict[str, Any],
        token_type: str = "access",
        expires_delta: timedelta | None = None,
    ) -> str:
        return f"{token_type}:{payload['sub']}:{payload.get('fam', '')}"

    def decode_token(self, token: str) -> dict[str, Any] | None:
        token_type, _, rest = token.partition(":")
        sub, _, fam = rest.partition(":")
        return {"type": token_type, "sub": sub, "fam": fam} if sub else None

    def verify_token(self, token: str, token_type: str = "access") -> dict[str, Any] | None:
        payload = self.decode_token(token)
        return payload if payload is not None and payload["type"] == token_type else None


async def test_rotation_works_with_a_backend_without_jti_or_exp() -> None:
    store = InMemoryTokenStore()
    tokens = RefreshTokens(PlainTokens(), store, timedelta(days=1))
    pair = tokens.issue("u1", family="fam1")

    payload = await tokens.consume(pair["refresh_token"])
    assert tokens.family_of(payload) == "fam1"
    with pytest.raises(InvalidTokenError, match="already used"):
        await tokens.consume(pair["refresh_token"])
    assert await store.is_revoked("fam1")
    with pytest.raises(InvalidTokenError):
        await tokens.consume("access:u1:fam2")
    with pytest.raises(InvalidTokenError):
        await tokens.revoke(None)  # type: ignore[arg-type]
