"""RedisTokenStore: refresh-token state shared by every process (AUTH_TOKEN_STORE=redis)."""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.errors import TokenStoreUnavailableError

# Set the key, or lengthen its TTL, never shorten it, in one atomic step. (`EXPIRE ... GT` does
# the same but needs Redis 7.)
_REVOKE_SCRIPT = """
local ttl = tonumber(ARGV[1])
local current = redis.call('TTL', KEYS[1])
if current == -2 or (current >= 0 and current < ttl) then
    redis.call('SET', KEYS[1], '1', 'EX', ttl)
end
return 1
"""


class RedisTokenStore:
    """The TokenStore port on Redis: one key per used token and per revoked family, each with
    a TTL equal to the remaining life of the tokens it concerns, so Redis expires them itself.

    Keys: `<prefix>used:<jti>` and `<prefix>family:<family>`. `mark_used` is one
    `SET NX EX`, atomic across every process sharing the server.

    Args:
        url: the Redis URL (AUTH_TOKEN_STORE_URL, else REDIS_URL).
        prefix: put before every key (AUTH_TOKEN_STORE_PREFIX), so apps can share a server.
        client: a ready `redis.asyncio.Redis` to use instead of `url` (then `close()` leaves
            it open: its owner closes it).

    Example:
        >>> store = RedisTokenStore("redis://redis:6379/0", prefix="shop:")  # doctest: +SKIP
        >>> await store.mark_used("4f1c...", ttl=604800)  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "core:auth:",
        client: Any = None,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            if url is None:
                raise TypeError("RedisTokenStore needs a url or a client.")
            client = redis.Redis.from_url(url)
        self._client: Any = client
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    async def mark_used(self, jti: str, ttl: float) -> bool:
        try:
            created = await self._client.set(
                f"{self.prefix}used:{jti}", b"1", nx=True, ex=_seconds(ttl)
            )
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc
        return bool(created)

    async def revoke_family(self, family: str, ttl: float) -> None:
        try:
            await self._client.eval(
                _REVOKE_SCRIPT, 1, f"{self.prefix}family:{family}", _seconds(ttl)
            )
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc

    async def is_revoked(self, family: str) -> bool:
        try:
            return bool(await self._client.exists(f"{self.prefix}family:{family}"))
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _seconds(ttl: float) -> int:
    # Redis wants whole seconds > 0; rounding up never frees a key before its token expires.
    return max(1, math.ceil(ttl))
