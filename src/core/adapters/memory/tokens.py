"""InMemoryTokenStore: refresh-token state in this process (AUTH_TOKEN_STORE=memory).

For one process (the embedded default) and tests. With several workers each has its own store,
so a replayed token is caught only by the worker that saw it first: use AUTH_TOKEN_STORE=redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Sweep expired entries when a map has doubled since the last sweep: amortised O(1) per write,
# and memory stays within twice the live entries.
_FIRST_SWEEP = 1024


class InMemoryTokenStore:
    """The TokenStore port on two dicts of expiry times.

    Args:
        clock: seconds on a monotonic clock; tests pass a fake one to expire entries.

    Example:
        >>> import asyncio
        >>> store = InMemoryTokenStore()
        >>> asyncio.run(store.mark_used("jti-1", ttl=60)), asyncio.run(store.mark_used("jti-1", 60))
        (True, False)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._used: dict[str, float] = {}
        self._revoked: dict[str, float] = {}
        self._sweep_at = _FIRST_SWEEP

    async def mark_used(self, jti: str, ttl: float) -> bool:
        now = self._clock()
        expires = self._used.get(jti)
        if expires is not None and expires > now:
            return False
        # No await between the check and the write: atomic for every task on this loop.
        self._used[jti] = now + ttl
        self._maybe_sweep(now)
        return True

    async def revoke_family(self, family: str, ttl: float) -> None:
        now = self._clock()
        self._revoked[family] = max(self._revoked.get(family, now), now + ttl)
        self._maybe_sweep(now)

    async def is_revoked(self, family: str) -> bool:
        expires = self._revoked.get(family)
        return expires is not None and expires > self._clock()

    async def close(self) -> None:
        self._used.clear()
        self._revoked.clear()

    def __len__(self) -> int:
        """How many entries are held, expired ones not yet swept included."""
        return len(self._used) + len(self._revoked)

    def _maybe_sweep(self, now: float) -> None:
        if len(self) < self._sweep_at:
            return
        for entries in (self._used, self._revoked):
            for key in [k for k, expires in entries.items() if expires <= now]:
                del entries[key]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self))
