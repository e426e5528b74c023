"""InMemoryIdempotencyStore: idempotency keys in this process (IDEMPOTENCY_STORE=memory, and the
`database` store of a `memory://` database)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import IdempotencyKeyInUseError, IdempotencyKeyMismatchError
from core.ports.idempotency import StoredResponse

# Expired entries are dropped at most this often (seconds), by the next claim.
_PURGE_EVERY = 60.0


@dataclass
class _Entry:
    fingerprint: str
    expires_at: float
    response: StoredResponse | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class InMemoryIdempotencyStore:
    """The IdempotencyStore port in a dict: for tests, the embedded default and one process.

    Not transactional: the response is saved once the request's unit of work has committed.
    A concurrent duplicate waits on an `asyncio.Event` for the first request to finish.

    Args:
        clock: epoch seconds; tests pass a fake one.
    """

    transactional = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[str, _Entry] = {}
        self._clock = clock
        self._purged = clock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entries={len(self._entries)})"

    async def claim(
        self, session: Any, key: str, fingerprint: str, *, ttl: float, wait: float
    ) -> StoredResponse | None:
        if self._clock() - self._purged >= _PURGE_EVERY:
            await self.purge()
        deadline = time.monotonic() + wait
        while True:
            entry = self._live(key)
            if entry is None:
                self._entries[key] = _Entry(fingerprint, self._clock() + ttl)
                return None
            if entry.fingerprint != fingerprint:
                raise IdempotencyKeyMismatchError()
            if entry.response is not None:
                return entry.response
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IdempotencyKeyInUseError(retry_after=max(wait, 1.0))
            try:
                await asyncio.wait_for(entry.done.wait(), remaining)
            except TimeoutError:
                raise IdempotencyKeyInUseError(retry_after=max(wait, 1.0)) from None

    async def save(self, session: Any, key: str, response: StoredResponse, *, ttl: float) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry("", self._clock() + ttl)
        entry.response = response
        entry.expires_at = max(entry.expires_at, self._clock() + ttl)
        entry.done.set()

    async def release(self, session: Any, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.done.set()

    async def purge(self) -> int:
        now = self._purged = self._clock()
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            self._entries.pop(key).done.set()
        return len(expired)

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def close(self) -> None:
        return None

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del self._entries[key]
            entry.done.set()
            return None
        return entry
