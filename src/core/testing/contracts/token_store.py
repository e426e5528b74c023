"""The TokenStore contract: what every token store, built-in or yours, must do.

Subclass `TokenStoreContract` and provide a `store` fixture. The unit tests run it on the
in-memory store and the database store on SQLite, the integration tests on Redis and on the
database store on PostgreSQL.
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

    async def test_check_answers_when_the_store_is_up(self, store: TokenStore) -> None:
        await store.check()  # returns: the backend answered

    async def test_spend_gives_concurrent_callers_the_first_successor(
        self, store: TokenStore
    ) -> None:
        jti = _id()
        pairs = [{"access_token": f"a{n}", "refresh_token": f"r{n}"} for n in range(10)]

        answers = await asyncio.gather(*(store.spend(jti, 60, pair, 30) for pair in pairs))

        assert all(answer is not None for answer in answers)
        assert len({tuple(sorted(dict(a).items())) for a in answers if a is not None}) == 1
        assert dict(answers[0] or {}) in pairs

    async def test_spend_without_grace_or_after_mark_used_is_a_replay(
        self, store: TokenStore
    ) -> None:
        first, used = _id(), _id()
        pair = {"access_token": "a", "refresh_token": "r"}

        assert await store.spend(first, 60, pair, 0) == pair
        assert await store.spend(first, 60, pair, 0) is None
        assert await store.mark_used(used, ttl=60) is True
        assert await store.spend(used, 60, pair, 30) is None

    async def test_revoked_access_tokens_and_families_show_in_access_state(
        self, store: TokenStore
    ) -> None:
        jti, family, subject = _id(), _id(), _id()

        assert await store.access_state(jti, family, subject) == (False, 0)
        await store.revoke_token(jti, ttl=60)
        assert await store.access_state(jti, None, subject) == (True, 0)
        assert await store.access_state(_id(), family, subject) == (False, 0)
        await store.revoke_family(family, ttl=60)
        assert await store.access_state(_id(), family, subject) == (True, 0)

    async def test_session_versions_count_every_bump(self, store: TokenStore) -> None:
        subject, other = _id(), _id()

        assert await store.session_version(subject) == 0
        bumps = await asyncio.gather(*(store.bump_session_version(subject) for _ in range(5)))

        assert sorted(bumps) == [1, 2, 3, 4, 5]
        assert await store.session_version(subject) == 5
        assert await store.access_state(_id(), None, subject) == (False, 5)
        assert await store.session_version(other) == 0
