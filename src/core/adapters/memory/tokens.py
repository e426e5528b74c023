"""InMemoryTokenStore: token state in this process (AUTH_TOKEN_STORE=memory).

For one process (the embedded default) and tests. With several workers each has its own store,
so a logout or a replayed token is seen only by the worker that handled it: use
AUTH_TOKEN_STORE=redis or database (ENVIRONMENT=production refuses memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

# Sweep expired entries when the maps have doubled since the last sweep: amortised O(1) per
# write, and memory stays within twice the live entries.
_FIRST_SWEEP = 1024


class InMemoryTokenStore:
    """The TokenStore port on dicts of expiry times.

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
        self._revoked_tokens: dict[str, float] = {}
        self._successors: dict[str, tuple[float, dict[str, str]]] = {}
        self._versions: dict[str, int] = {}
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

    async def spend(
        self, jti: str, ttl: float, successor: Mapping[str, str], grace: float
    ) -> Mapping[str, str] | None:
        now = self._clock()
        expires = self._used.get(jti)
        if expires is not None and expires > now:
            earlier = self._successors.get(jti)
            return earlier[1] if earlier is not None and earlier[0] > now else None
        self._used[jti] = now + ttl
        if grace > 0:
            self._successors[jti] = (now + grace, dict(successor))
        self._maybe_sweep(now)
        return successor

    async def revoke_family(self, family: str, ttl: float) -> None:
        now = self._clock()
        self._revoked[family] = max(self._revoked.get(family, now), now + ttl)
        self._maybe_sweep(now)

    async def is_revoked(self, family: str) -> bool:
        return _alive(self._revoked.get(family), self._clock())

    async def revoke_token(self, jti: str, ttl: float) -> None:
        now = self._clock()
        self._revoked_tokens[jti] = max(self._revoked_tokens.get(jti, now), now + ttl)
        self._maybe_sweep(now)

    async def access_state(self, jti: str, family: str | None, subject: str) -> tuple[bool, int]:
        now = self._clock()
        revoked = _alive(self._revoked_tokens.get(jti), now) or (
            family is not None and _alive(self._revoked.get(family), now)
        )
        return revoked, self._versions.get(subject, 0)

    async def session_version(self, subject: str) -> int:
        return self._versions.get(subject, 0)

    async def bump_session_version(self, subject: str) -> int:
        version = self._versions[subject] = self._versions.get(subject, 0) + 1
        return version

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def close(self) -> None:
        for entries in self._maps():
            entries.clear()
        self._versions.clear()

    def __len__(self) -> int:
        """How many expiring entries are held, expired ones not yet swept included."""
        return sum(len(entries) for entries in self._maps())

    def _maps(
        self,
    ) -> tuple[
        dict[str, float],
        dict[str, float],
        dict[str, float],
        dict[str, tuple[float, dict[str, str]]],
    ]:
        return self._used, self._revoked, self._revoked_tokens, self._successors

    def _maybe_sweep(self, now: float) -> None:
        if len(self) < self._sweep_at:
            return
        for entries in (self._used, self._revoked, self._revoked_tokens):
            for key in [k for k, expires in entries.items() if expires <= now]:
                del entries[key]
        for key in [k for k, (expires, _) in self._successors.items() if expires <= now]:
            del self._successors[key]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self))


def _alive(expires: float | None, now: float) -> bool:
    return expires is not None and expires > now
