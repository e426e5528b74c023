"""RedisRateLimiter: one throttle count shared by every replica (THROTTLE_STORE=redis)."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.errors import RateLimiterUnavailableError
from core.ports.ratelimit import RateLimitResult

# A sliding log in a sorted set (score = hit time in ms), checked and counted in one script, so
# concurrent hits from every replica are counted exactly once. The time is the server's: the
# replicas' clocks may disagree, Redis's is one. A refused hit adds nothing, so a key holds at
# most `limit` members, and it expires with its window.
_HIT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    return {0, 0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, limit - count - 1, 0}
"""


class RedisRateLimiter:
    """The RateLimiter port on Redis: one sorted set per key, `<prefix><key>`, hit through one
    Lua script (atomic on the server), so every process sharing the server shares the count.

    Args:
        url: the Redis URL (THROTTLE_STORE_URL, else REDIS_URL).
        prefix: put before every key (THROTTLE_KEY_PREFIX), so apps can share a server.
        client: a ready `redis.asyncio.Redis` to use instead of `url` (then `close()` leaves
            it open: its owner closes it).

    Example:
        >>> limiter = RedisRateLimiter("redis://redis:6379/0", prefix="shop:")  # doctest: +SKIP
        >>> (await limiter.hit("login:203.0.113.7", limit=5, window=60)).allowed  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "core:throttle:",
        client: Any = None,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            if url is None:
                raise TypeError("RedisRateLimiter needs a url or a client.")
            client = redis.Redis.from_url(url)
        self._client: Any = client
        self._script: Any = client.register_script(_HIT_SCRIPT)
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    async def hit(self, key: str, *, limit: int, window: float) -> RateLimitResult:
        window_ms = max(1, round(window * 1000))
        try:
            allowed, remaining, wait_ms = await self._script(
                keys=[self.prefix + key], args=[limit, window_ms, uuid.uuid4().hex]
            )
        except RedisError as exc:
            raise RateLimiterUnavailableError(f"Redis rate limiter: {exc}") from exc
        if allowed:
            return RateLimitResult(True, int(remaining), 0.0)
        return RateLimitResult(False, 0, max(int(wait_ms), 1) / 1000)

    async def reset(self, key: str) -> None:
        try:
            await self._client.delete(self.prefix + key)
        except RedisError as exc:
            raise RateLimiterUnavailableError(f"Redis rate limiter: {exc}") from exc

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): Redis answers PING."""
        await self._client.ping()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
