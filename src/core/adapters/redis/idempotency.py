"""RedisIdempotencyStore: idempotency keys shared by every process (IDEMPOTENCY_STORE=redis)."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.errors import (
    IdempotencyKeyInUseError,
    IdempotencyKeyMismatchError,
    IdempotencyStoreUnavailableError,
)
from core.ports.idempotency import StoredResponse

# Take the key if nobody holds it; else say what it holds.
_CLAIM_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return false
end
return redis.call('GET', KEYS[1])
"""

# Replace our own pending entry (or a lapsed one) with the response; never another's claim.
_SAVE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""

# Delete our own pending entry, and only ours.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Seconds between two looks at a key another request holds.
_POLL = 0.05


class RedisIdempotencyStore:
    """The IdempotencyStore port on Redis: one key per idempotency key, which Redis expires
    itself (`purge` has nothing to do).

    Not transactional: Redis cannot join the database transaction, so the response is saved
    just after the request's unit of work commits. If the process dies between the commit
    and that save, the key stays pending until `pending_ttl` runs out and a retry then runs
    the request again (one duplicate is possible, where the database store allows none). A
    request that runs longer than `pending_ttl` is also no longer protected from a duplicate.

    Keys: `<prefix><digest>`, holding `{"fp", "owner"}` while the first request runs (for at
    most `pending_ttl` seconds) and `{"fp", "response"}` after (for IDEMPOTENCY_KEY_TTL_SECONDS).

    Args:
        url: the Redis URL (IDEMPOTENCY_STORE_URL, else REDIS_URL).
        prefix: put before every key (IDEMPOTENCY_KEY_PREFIX), so apps can share a server.
        pending_ttl: seconds a claim holds its key without a response.
        client: a ready `redis.asyncio.Redis` to use instead of `url` (then `close()` leaves
            it open: its owner closes it).
    """

    transactional = False

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "core:idempotency:",
        pending_ttl: float = 60.0,
        client: Any = None,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            if url is None:
                raise TypeError("RedisIdempotencyStore needs a url or a client.")
            client = redis.Redis.from_url(url)
        self._client: Any = client
        self.prefix = prefix
        self.pending_ttl = pending_ttl
        # The pending value each of this process's claims wrote, by key: what save and release
        # compare with, so they never touch a claim another process took over.
        self._pending: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    async def claim(
        self, session: Any, key: str, fingerprint: str, *, ttl: float, wait: float
    ) -> StoredResponse | None:
        pending = json.dumps({"fp": fingerprint, "owner": secrets.token_hex(8)})
        deadline = time.monotonic() + wait
        while True:
            try:
                found = await self._client.eval(
                    _CLAIM_SCRIPT, 1, self.prefix + key, pending, _ms(min(ttl, self.pending_ttl))
                )
            except RedisError as exc:
                raise IdempotencyStoreUnavailableError(f"Redis idempotency store: {exc}") from exc
            if found is None:
                self._pending[key] = pending
                return None
            entry = json.loads(found)
            if entry["fp"] != fingerprint:
                raise IdempotencyKeyMismatchError()
            if "response" in entry:
                return StoredResponse.from_json(entry["response"])
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInUseError(retry_after=max(wait, 1.0))
            await asyncio.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))

    async def save(self, session: Any, key: str, response: StoredResponse, *, ttl: float) -> None:
        pending = self._pending.pop(key, "")
        entry = json.loads(pending) if pending else {"fp": ""}
        done = json.dumps({"fp": entry["fp"], "response": response.to_json()})
        try:
            await self._client.eval(_SAVE_SCRIPT, 1, self.prefix + key, pending, done, _ms(ttl))
        except RedisError as exc:
            raise IdempotencyStoreUnavailableError(f"Redis idempotency store: {exc}") from exc

    async def release(self, session: Any, key: str) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        try:
            await self._client.eval(_RELEASE_SCRIPT, 1, self.prefix + key, pending)
        except RedisError as exc:
            raise IdempotencyStoreUnavailableError(f"Redis idempotency store: {exc}") from exc

    async def purge(self) -> int:
        # Redis expires the keys itself.
        return 0

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): Redis answers PING."""
        await self._client.ping()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
