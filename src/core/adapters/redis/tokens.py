"""RedisTokenStore: token state shared by every process (AUTH_TOKEN_STORE=redis)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
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


# Spend a refresh token: the first caller marks it used and leaves its successor for the grace
# window; later callers get that successor while it lasts, else nothing (a replay).
_SPEND_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    if tonumber(ARGV[3]) > 0 then
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
    end
    return ARGV[2]
end
return redis.call('GET', KEYS[2])
"""


class RedisTokenStore:
    """The TokenStore port on Redis: one key per used token and per revoked family, each with
    a TTL equal to the remaining life of the tokens it concerns, so Redis expires them itself.

    Keys: `<prefix>used:<jti>`, `<prefix>next:<jti>` (a refresh's successor, for the grace
    window), `<prefix>family:<family>`, `<prefix>revoked:<jti>` (access tokens) and
    `<prefix>version:<sub>` (session versions, kept without a TTL). `mark_used` is one
    `SET NX EX` and `spend` one script, atomic across every process sharing the server.

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

    async def spend(
        self, jti: str, ttl: float, successor: Mapping[str, str], grace: float
    ) -> Mapping[str, str] | None:
        try:
            answer = await self._client.eval(
                _SPEND_SCRIPT,
                2,
                f"{self.prefix}used:{jti}",
                f"{self.prefix}next:{jti}",
                _seconds(ttl),
                json.dumps(dict(successor)),
                max(0, math.ceil(grace * 1000)),
            )
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc
        if answer is None:
            return None
        earlier: dict[str, str] = json.loads(answer)
        return earlier

    async def revoke_token(self, jti: str, ttl: float) -> None:
        try:
            await self._client.eval(_REVOKE_SCRIPT, 1, f"{self.prefix}revoked:{jti}", _seconds(ttl))
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc

    async def access_state(self, jti: str, family: str | None, subject: str) -> tuple[bool, int]:
        keys = [f"{self.prefix}version:{subject}", f"{self.prefix}revoked:{jti}"]
        if family is not None:
            keys.append(f"{self.prefix}family:{family}")
        try:
            version, *revoked = await self._client.mget(keys)
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc
        return any(value is not None for value in revoked), int(version or 0)

    async def session_version(self, subject: str) -> int:
        try:
            return int(await self._client.get(f"{self.prefix}version:{subject}") or 0)
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc

    async def bump_session_version(self, subject: str) -> int:
        try:
            return int(await self._client.incr(f"{self.prefix}version:{subject}"))
        except RedisError as exc:
            raise TokenStoreUnavailableError(f"Redis token store: {exc}") from exc

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): Redis answers PING."""
        await self._client.ping()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _seconds(ttl: float) -> int:
    # Redis wants whole seconds > 0; rounding up never frees a key before its token expires.
    return max(1, math.ceil(ttl))
