"""ThrottlingContainer: the rate limiter behind `core.throttling`, and what throttles read.

THROTTLE_STORE picks the limiter: `memory` (this process only; the default) or `redis` (one
count shared by every replica, what production with several replicas needs).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from core.adapters.memory.ratelimit import InMemoryRateLimiter
from core.errors import MissingDependencyError
from core.ports.ratelimit import RateLimiter
from core.throttling import (
    BaseThrottle,
    IPNetwork,
    parse_trusted_proxies,
    resolve_throttle_classes,
)


def _redis_rate_limiter(url: str | None, fallback_url: str, prefix: str) -> RateLimiter:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.redis.ratelimit import RedisRateLimiter
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "redis":
            raise MissingDependencyError("redis", "redis") from exc
        raise
    return RedisRateLimiter(url or fallback_url, prefix=prefix)


async def _rate_limiter_lifecycle(limiter: RateLimiter) -> AsyncIterator[RateLimiter]:
    yield limiter
    await limiter.close()


def _rates(rates: dict[str, str | None]) -> dict[str, str | None]:
    return dict(rates)


_log = logging.getLogger("core.throttling")


async def _checked(
    default_throttle_classes: tuple[type[BaseThrottle], ...],
    trusted_proxies: tuple[IPNetwork, ...],
    environment: str,
    store: str,
) -> AsyncIterator[None]:
    # Resolving both when the app starts makes a bad THROTTLE_DEFAULT_CLASSES or TRUSTED_PROXIES
    # fail start-up, not the first request.
    if environment == "production" and store == "memory":
        # One replica in production is legitimate, so this warns rather than refuses.
        _log.warning(
            "THROTTLE_STORE=memory in production: each replica counts requests on its own, so a "
            "client gets every rate once per replica; set THROTTLE_STORE=redis when running more "
            "than one."
        )
    yield None


class ThrottlingContainer(containers.DeclarativeContainer):
    """The throttling collaborators of one app; two apps never share a memory count.

    Override the limiter before first use:
    `app.container.throttling.rate_limiter.override(InMemoryRateLimiter(clock=...))`.
    """

    config = providers.Configuration(strict=True)

    rate_limiter = providers.Selector(
        config.throttle_store,
        memory=providers.Singleton(InMemoryRateLimiter),
        redis=providers.Singleton(
            _redis_rate_limiter,
            url=config.throttle_store_url,
            fallback_url=config.redis_url,
            prefix=config.throttle_key_prefix,
        ),
    )

    rate_limiter_lifecycle = providers.Resource(_rate_limiter_lifecycle, rate_limiter)

    rates = providers.Callable(_rates, config.throttle_rates)
    trusted_proxies = providers.Singleton(parse_trusted_proxies, config.trusted_proxies)
    default_throttle_classes = providers.Singleton(
        resolve_throttle_classes, config.throttle_default_classes
    )

    startup_check = providers.Resource(
        _checked,
        default_throttle_classes=default_throttle_classes,
        trusted_proxies=trusted_proxies,
        environment=config.environment,
        store=config.throttle_store,
    )
