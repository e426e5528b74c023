"""Rate-limiter port: counts hits per key in a sliding window, for throttling."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The outcome of one `RateLimiter.hit`.

    Attributes:
        allowed: whether the hit fit in the limit (and was counted).
        remaining: hits still allowed in the window after this one (0 when refused).
        retry_after: seconds until a hit on this key would be allowed again; 0.0 when allowed.
    """

    allowed: bool
    remaining: int
    retry_after: float


@runtime_checkable
class RateLimiter(Protocol):
    """Counts hits per key: at most `limit` allowed hits in any `window` seconds (a sliding
    window), for the throttles in `core.throttling`.

    Guarantees every implementation gives:

    - `hit` is atomic: check and count are one step, so of `limit + n` concurrent hits on one
      key exactly `limit` are allowed, even across processes when the limiter is shared
      (Redis): every replica sees one count.
    - A refused hit is not counted, and its `retry_after` is the time until the oldest counted
      hit leaves the window (> 0). An allowed hit has `retry_after == 0.0`.
    - Keys are independent; a key's state disappears once its window has passed, so storage
      never grows past the keys hit within the longest window.
    - Unreachable storage raises `RateLimiterUnavailableError`; a driver's error never leaks.
    """

    @abstractmethod
    async def hit(self, key: str, *, limit: int, window: float) -> RateLimitResult:
        """Count one hit on `key` if fewer than `limit` were counted in the last `window`
        seconds.

        Args:
            key: what is limited, e.g. `"login:ip:203.0.113.7"`.
            limit: allowed hits per window (>= 1).
            window: the window's length in seconds (> 0).
        """

    @abstractmethod
    async def reset(self, key: str) -> None:
        """Forget every hit counted on `key`."""

    async def check(self) -> None:
        """Readiness: return when the limiter's store answers, raise when not.

        GET /health/ready and `core status` run it, each within HEALTH_CHECK_TIMEOUT seconds.
        Cheap and side-effect free. An adapter without `check` is reported as "unchecked",
        not as failing.
        """
        ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections; called once when the app stops."""
