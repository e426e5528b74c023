"""InMemoryRateLimiter: throttle counts in this process (THROTTLE_STORE=memory).

For one process (the embedded default) and tests. With several replicas each counts on its own,
so a client gets the rate once per replica: use THROTTLE_STORE=redis there.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from core.ports.ratelimit import RateLimitResult

# Sweep keys whose window has passed when the map has doubled since the last sweep: amortised
# O(1) per hit, and memory stays within twice the live keys.
_FIRST_SWEEP = 1024


class InMemoryRateLimiter:
    """The RateLimiter port on a sliding log: per key, the times of the hits in the window.

    Args:
        clock: seconds on a monotonic clock; tests pass a fake one to move time.

    Example:
        >>> import asyncio
        >>> limiter = InMemoryRateLimiter()
        >>> [asyncio.run(limiter.hit("k", limit=2, window=60)).allowed for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, tuple[float, deque[float]]] = {}  # key -> (window, times)
        # Several event loops (two apps in threads) may share one limiter: hit is one step.
        self._lock = threading.Lock()
        self._sweep_at = _FIRST_SWEEP

    async def hit(self, key: str, *, limit: int, window: float) -> RateLimitResult:
        now = self._clock()
        with self._lock:
            entry = self._hits.get(key)
            if entry is None:
                entry = self._hits[key] = (window, deque())
            elif entry[0] != window:
                entry = self._hits[key] = (window, entry[1])
            times = entry[1]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                # The hit that frees a place is the one `limit` places back from the newest.
                oldest = times[len(times) - limit]
                return RateLimitResult(False, 0, max(oldest + window - now, 1e-3))
            times.append(now)
            self._maybe_sweep(now)
            return RateLimitResult(True, limit - len(times), 0.0)

    async def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def close(self) -> None:
        with self._lock:
            self._hits.clear()

    def __len__(self) -> int:
        """How many keys are held, ones whose window passed but not yet swept included."""
        return len(self._hits)

    def _maybe_sweep(self, now: float) -> None:
        if len(self._hits) < self._sweep_at:
            return
        for key in [k for k, (w, times) in self._hits.items() if not times or times[-1] <= now - w]:
            del self._hits[key]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._hits))
