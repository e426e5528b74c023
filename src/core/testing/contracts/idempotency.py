"""The IdempotencyStore contract: what every idempotency store, built-in or yours, must do.

Subclass `IdempotencyStoreContract` and provide a `store` fixture. A transactional store (one
that writes in the caller's unit of work, like the database store) also provides `units`: a
callable giving an async context manager that opens a unit of work, commits it on success and
rolls it back on error, and yields the session `claim` and `save` receive. For a store whose
clock a test controls, override `advance` to move it (the default sleeps, for a real clock).
The unit tests run the suite on the in-memory store and the database store on SQLite, the
integration tests on PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar

import pytest

from core.errors import IdempotencyKeyInUseError, IdempotencyKeyMismatchError
from core.ports.idempotency import IdempotencyStore, StoredResponse

Units = Callable[[], AbstractAsyncContextManager[Any]]

RESPONSE = StoredResponse(
    201,
    (("content-type", "application/json"), ("location", "/api/notes/1/")),
    b'{"id":1,"title":"Hi"}',
)


def _key() -> str:
    return uuid.uuid4().hex


@asynccontextmanager
async def _no_unit() -> AsyncIterator[Any]:
    yield None


class _Refused(Exception):
    """What a test raises to roll a unit of work back."""


class IdempotencyStoreContract:
    """Behaviour every IdempotencyStore shares; see the port's docstring."""

    #: Seconds a key lives in the expiry test: long enough that a slow machine does not see it
    #: pass between the claim and the save.
    ttl: ClassVar[float] = 1.0

    @pytest.fixture
    def store(self) -> IdempotencyStore:
        raise NotImplementedError("a store's test class provides the `store` fixture")

    @pytest.fixture
    def units(self) -> Units:
        """Units of work for `claim` and `save`; none (a None session) by default."""
        return _no_unit

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the store's clock."""
        await asyncio.sleep(seconds)

    # -- what the framework does around a request ----------------------------------------------
    async def run(
        self,
        store: IdempotencyStore,
        units: Units,
        key: str,
        fingerprint: str = "fp",
        *,
        response: StoredResponse = RESPONSE,
        ttl: float = 60.0,
        wait: float = 5.0,
        between: Callable[[], Any] | None = None,
    ) -> StoredResponse | None:
        """One request: claim, then (when owned) save before or after the commit as the store
        wants; returns what the claim returned."""
        async with units() as session:
            found = await store.claim(session, key, fingerprint, ttl=ttl, wait=wait)
            if found is not None:
                return found
            if between is not None:
                await between()
            if store.transactional:
                await store.save(session, key, response, ttl=ttl)
        if not store.transactional:
            await store.save(None, key, response, ttl=ttl)
        return None

    async def fail(self, store: IdempotencyStore, units: Units, key: str) -> None:
        """One request that claims `key` and fails: rolled back, then released."""
        with pytest.raises(_Refused):
            async with units() as session:
                assert await store.claim(session, key, "fp", ttl=60, wait=1) is None
                raise _Refused
        await store.release(None, key)

    # -- the contract ---------------------------------------------------------------------------
    def test_satisfies_the_port(self, store: IdempotencyStore) -> None:
        assert isinstance(store, IdempotencyStore)
        assert isinstance(store.transactional, bool)

    async def test_check_answers_when_the_store_is_up(self, store: IdempotencyStore) -> None:
        await store.check()  # returns: the storage answered

    async def test_the_first_claim_owns_the_key_and_a_retry_gets_the_response(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()

        assert await self.run(store, units, key) is None
        again = await self.run(store, units, key)

        assert again == RESPONSE

    async def test_a_response_comes_back_byte_for_byte(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        binary = StoredResponse(200, (("x-custom", "ü"), ("x-custom", "2")), bytes(range(256)))

        await self.run(store, units, key, response=binary)

        assert await self.run(store, units, key) == binary

    async def test_another_fingerprint_is_a_mismatch(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        await self.run(store, units, key, "first")

        with pytest.raises(IdempotencyKeyMismatchError):
            await self.run(store, units, key, "second")

    async def test_keys_are_kept_apart(self, store: IdempotencyStore, units: Units) -> None:
        first, second = _key(), _key()
        await self.run(store, units, first, "a")

        assert await self.run(store, units, second, "b") is None

    async def test_a_failed_request_frees_its_key(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        await self.fail(store, units, key)

        assert await self.run(store, units, key, "another request now") is None
        assert await self.run(store, units, key, "another request now") == RESPONSE

    async def test_a_duplicate_waits_for_the_first_and_gets_its_response(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        claimed = asyncio.Event()
        results: list[StoredResponse | None] = []

        async def first() -> None:
            async def hold() -> None:
                claimed.set()
                await asyncio.sleep(0.1)  # the duplicate claims meanwhile

            results.append(await self.run(store, units, key, between=hold))

        async def duplicate() -> None:
            await claimed.wait()
            results.append(await self.run(store, units, key, wait=10))

        await asyncio.gather(first(), duplicate())

        assert sorted(results, key=lambda r: r is not None) == [None, RESPONSE]

    async def test_a_duplicate_past_the_wait_is_in_use(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        claimed, refused = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async def hold() -> None:
                claimed.set()
                await refused.wait()

            await self.run(store, units, key, between=hold)

        async def duplicate() -> None:
            await claimed.wait()
            try:
                with pytest.raises(IdempotencyKeyInUseError) as caught:
                    await self.run(store, units, key, wait=0.05)
                assert caught.value.status_code == 409
                assert int((caught.value.headers or {})["Retry-After"]) >= 1
            finally:
                refused.set()

        await asyncio.gather(first(), duplicate())
        assert await self.run(store, units, key) == RESPONSE, "the first one finished"

    async def test_a_duplicate_owns_the_key_when_the_first_fails(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        claimed = asyncio.Event()
        results: list[StoredResponse | None] = []

        async def first() -> None:
            with pytest.raises(_Refused):
                async with units() as session:
                    assert await store.claim(session, key, "fp", ttl=60, wait=1) is None
                    claimed.set()
                    await asyncio.sleep(0.1)  # the duplicate claims meanwhile
                    raise _Refused
            await store.release(None, key)

        async def duplicate() -> None:
            await claimed.wait()
            results.append(await self.run(store, units, key, wait=10))

        await asyncio.gather(first(), duplicate())

        assert results == [None], "the duplicate ran the request itself"
        assert await self.run(store, units, key) == RESPONSE

    async def test_concurrent_claims_have_one_owner(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()

        results = await asyncio.gather(*(self.run(store, units, key, wait=10) for _ in range(5)))

        assert results.count(None) == 1
        assert results.count(RESPONSE) == 4

    async def test_an_expired_key_is_free_again_and_purged(
        self, store: IdempotencyStore, units: Units
    ) -> None:
        key = _key()
        await self.run(store, units, key, "old", ttl=self.ttl)

        await self.advance(self.ttl + 0.1)

        assert await self.run(store, units, key, "new", ttl=self.ttl) is None
        await self.advance(self.ttl + 0.1)
        assert await store.purge() >= 0
        assert await self.run(store, units, key, "newer") is None
