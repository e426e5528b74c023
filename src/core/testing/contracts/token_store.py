"""The TokenStore contract: what every token store, built-in or yours, must do.

Subclass `TokenStoreContract` and provide a `store` fixture. The unit tests run it on the
in-memory store, the integration tests on Redis.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.ports.tokens import TokenStore


def _id() -> str:
    return uuid.uuid4().hex


class TokenStoreContract:
    """Behaviour every TokenStore shares; see the port's docstring."""

    @pytest.fixture
    def store(self) -> TokenStore:
        raise NotImplementedError("a store's test class provides the `store` fixture")

    async def test_a_token_is_used_once(self, store: TokenStore) -> None:
        jti = _id()

        assert await store.mark_used(jti, ttl=60) is True
        assert await store.mark_used(jti, ttl=60) is False
        assert await store.mark_used(_id(), ttl=60) is True

    async def test_concurrent_uses_of_one_token_have_one_winner(self, store: TokenStore) -> None:
        jti = _id()

        results = await asyncio.gather(*(store.mark_used(jti, ttl=60) for _ in range(20)))

        assert results.count(True) == 1

    async def test_revoking_a_family_touches_no_other(self, store: TokenStore) -> None:
        family, other = _id(), _id()

        assert await store.is_revoked(family) is False
        await store.revoke_family(family, ttl=60)
        await store.revoke_family(family, ttl=1)  # never shortens the first revocation

        assert await store.is_revoked(family) is True
        assert await store.is_revoked(other) is False

    async def test_the_store_satisfies_the_port(self, store: TokenStore) -> None:
        assert isinstance(store, TokenStore)
