"""The RateLimiter contract: what every rate limiter, built-in or yours, must do.

Subclass `RateLimiterContract` and provide a `limiter` fixture; for a limiter whose clock a test
controls, override `advance` to move it (the default sleeps, for a real clock). The unit tests
run it on the in-memory limiter, the integration tests on Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

import pytest

from core.ports.ratelimit import RateLimiter, RateLimitResult


def _key() -> str:
    return f"contract:{uuid.uuid4().hex}"


class RateLimiterContract:
    """Behaviour every RateLimiter shares; see the port's docstring."""

    #: The window the time-dependent tests use, in seconds: long enough that a slow machine
    #: does not see it pass between two calls of one step.
    window: ClassVar[float] = 2.0

    @pytest.fixture
    def limiter(self) -> RateLimiter:
        raise NotImplementedError("a limiter's test class provides the `limiter` fixture")

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the limiter's clock."""
        await asyncio.sleep(seconds)

    def test_satisfies_the_port(self, limiter: RateLimiter) -> None:
        assert isinstance(limiter, RateLimiter)

    async def test_check_answers_when_the_store_is_up(self, limiter: RateLimiter) -> None:
        await limiter.check()  # returns: the backend answered

    async def test_allows_the_limit_then_refuses(self, limiter: RateLimiter) -> None:
        key = _key()

        results = [await limiter.hit(key, limit=3, window=60) for _ in range(4)]

        assert [r.allowed for r in results] == [True, True, True, False]
        assert [r.remaining for r in results] == [2, 1, 0, 0]
        assert [r.retry_after for r in results[:3]] == [0.0, 0.0, 0.0]
        assert isinstance(results[3], RateLimitResult)
        assert 0 < results[3].retry_after <= 60

    async def test_keys_are_counted_apart(self, limiter: RateLimiter) -> None:
        first, second = _key(), _key()

        assert (await limiter.hit(first, limit=1, window=60)).allowed
        assert not (await limiter.hit(first, limit=1, window=60)).allowed
        assert (await limiter.hit(second, limit=1, window=60)).allowed

    async def test_concurrent_hits_are_counted_exactly(self, limiter: RateLimiter) -> None:
        key = _key()

        results = await asyncio.gather(*(limiter.hit(key, limit=5, window=60) for _ in range(30)))

        assert sum(r.allowed for r in results) == 5

    async def test_reset_forgets_a_key(self, limiter: RateLimiter) -> None:
        key = _key()
        await limiter.hit(key, limit=1, window=60)

        await limiter.reset(key)

        assert (await limiter.hit(key, limit=1, window=60)).allowed

    async def test_a_hit_is_allowed_again_once_the_window_passed(
        self, limiter: RateLimiter
    ) -> None:
        key, window = _key(), self.window
        assert (await limiter.hit(key, limit=1, window=window)).allowed
        refused = await limiter.hit(key, limit=1, window=window)
        assert not refused.allowed and 0 < refused.retry_after <= window

        await self.advance(refused.retry_after + 0.1)

        assert (await limiter.hit(key, limit=1, window=window)).allowed

    async def test_the_window_slides_and_refused_hits_are_not_counted(
        self, limiter: RateLimiter
    ) -> None:
        key, window = _key(), self.window
        assert (await limiter.hit(key, limit=2, window=window)).allowed  # at 0
        await self.advance(window / 2)
        assert (await limiter.hit(key, limit=2, window=window)).allowed  # at w/2
        for _ in range(5):  # refused, so not counted
            assert not (await limiter.hit(key, limit=2, window=window)).allowed

        refused = await limiter.hit(key, limit=2, window=window)
        # The first hit leaves the window first: about w/2 from now, not a whole window.
        assert refused.retry_after <= window / 2 + 0.1
        await self.advance(refused.retry_after + 0.1)

        assert (await limiter.hit(key, limit=2, window=window)).allowed  # the first one's place
        assert not (await limiter.hit(key, limit=2, window=window)).allowed  # w/2's still holds
