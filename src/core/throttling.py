"""Throttling, DRF-style: rates such as `"100/min"` per client, counted by the app's RateLimiter.

A ViewSet lists `throttle_classes` (else the THROTTLE_DEFAULT_CLASSES setting applies) and,
for `ScopedRateThrottle`, a `throttle_scope`. After authentication and permissions, each
throttle counts the request under its key; if any refuses, the request gets 429 with
`Retry-After`. The counts live in the container's `throttling.rate_limiter` (THROTTLE_STORE):
in process memory by default, in Redis when several replicas must share them.

Example:
    >>> from core.throttling import ScopedRateThrottle, UserRateThrottle
    >>> class UploadViewSet(ModelViewSet):  # doctest: +SKIP
    ...     throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    ...     throttle_scope = "uploads"  # THROTTLE_RATES={"uploads": "20/hour", "user": "1000/day"}
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import ConfigurationError
from core.ports.ratelimit import RateLimitResult

if TYPE_CHECKING:
    from starlette.requests import Request

    from core.views.base import ViewSet

__all__ = (
    "AnonRateThrottle",
    "BaseThrottle",
    "ScopedRateThrottle",
    "SimpleRateThrottle",
    "UserRateThrottle",
    "client_ip",
    "parse_rate",
    "parse_trusted_proxies",
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


def parse_rate(rate: str) -> tuple[int, float]:
    """`"100/min"` → `(100, 60.0)`: requests allowed, and the window in seconds.

    Periods: `s`/`sec`/`second`, `m`/`min`/`minute`, `h`/`hour`, `d`/`day` (a trailing `s`
    is allowed), optionally with a count: `"10/5min"` is ten per five minutes.

    Raises:
        ConfigurationError: the rate does not parse, or allows no request.

    Example:
        >>> parse_rate("100/min"), parse_rate("5/s"), parse_rate("1000/day"), parse_rate("3/10m")
        ((100, 60.0), (5, 1.0), (1000, 86400.0), (3, 600.0))
    """
    if not isinstance(rate, str):
        raise ConfigurationError(f"Invalid throttle rate {rate!r}: a text such as '100/min'.")
    return _parse_rate(rate)


# Throttles parse their rate per request, and a project has a handful of rates.
@functools.lru_cache(maxsize=256)
def _parse_rate(rate: str) -> tuple[int, float]:
    match = _RATE.match(rate.lower())
    period = _PERIODS.get(match.group(3)) if match else None
    if match is None or period is None:
        raise ConfigurationError(
            f"Invalid throttle rate {rate!r}: use '<requests>/<period>' with a period of "
            "s, sec, m, min, h, hour, d or day (e.g. '100/min')."
        )
    count, multiple = int(match.group(1)), int(match.group(2) or 1)
    if count < 1 or multiple < 1:
        raise ConfigurationError(f"Invalid throttle rate {rate!r}: it must allow a request.")
    return count, period * multiple


def parse_trusted_proxies(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The networks of TRUSTED_PROXIES (addresses or CIDRs).

    Raises:
        ConfigurationError: an entry is not an IP address or network.
    """
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigurationError(
                f"TRUSTED_PROXIES: {value!r} is not an IP address or a CIDR network."
            ) from exc
    return tuple(networks)


def client_ip(request: Request, trusted_proxies: Sequence[IPNetwork] = ()) -> str | None:
    """The address of the client that sent `request`.

    The socket peer, unless the peer is a trusted proxy: then `X-Forwarded-For` is read from
    the right (the hop nearest to us), skipping trusted proxies, and the first untrusted
    address is the client. A client can put anything at the left of that header, so nothing
    left of the first untrusted hop is believed; with no trusted proxies the header is ignored.

    Args:
        request: the incoming request.
        trusted_proxies: the networks of the proxies in front of the app (TRUSTED_PROXIES).

    Returns:
        The address as text, or None when the server gave no peer address.
    """
    peer = request.client.host if request.client is not None else None
    if peer is None or not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    client = peer
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: stop at the last hop a trusted proxy vouched for
        client = str(address)
        if not any(address in network for network in trusted_proxies):
            break
    return client


def _trusted(host: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


class BaseThrottle:
    """Base of every throttle: `allow_request` decides, `wait` says for how long it refuses.

    A throttle instance serves one request (the view creates them per request, as DRF does).
    """

    async def allow_request(self, request: Request, view: ViewSet) -> bool:
        """Whether `request` may proceed; counts it when it does."""
        raise NotImplementedError

    def wait(self) -> float | None:
        """Seconds until a refused request would be allowed, or None when unknown."""
        return None

    def get_ident(self, request: Request, view: ViewSet) -> str:
        """The client's address (see `client_ip`), the key of anonymous throttles."""
        trusted = view.container.throttling.trusted_proxies()
        return client_ip(request, trusted) or "unknown"


class SimpleRateThrottle(BaseThrottle):
    """A throttle with one rate and one key per request: subclasses give `get_cache_key`.

    The rate is `rate` when a subclass sets it, else THROTTLE_RATES[`scope`]; a scope whose
    rate is None (or missing) throttles nothing.
    """

    scope: ClassVar[str | None] = None
    rate: ClassVar[str | None] = None

    def __init__(self) -> None:
        self._wait: float | None = None

    def get_cache_key(self, request: Request, view: ViewSet) -> str | None:
        """The key to count this request under, or None not to throttle it."""
        raise NotImplementedError

    def get_rate(self, view: ViewSet) -> str | None:
        if self.rate is not None:
            return self.rate
        if self.scope is None:
            return None
        rates: dict[str, str | None] = view.container.throttling.rates()
        return rates.get(self.scope)

    async def allow_request(self, request: Request, view: ViewSet) -> bool:
        rate = self.get_rate(view)
        if rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        limit, window = parse_rate(rate)
        limiter = view.container.throttling.rate_limiter()
        result: RateLimitResult = await limiter.hit(key, limit=limit, window=window)
        self._wait = result.retry_after
        return result.allowed

    def wait(self) -> float | None:
        return self._wait


def _authenticated(request: Request) -> Any:
    user = getattr(request.state, "user", None)
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return user


class AnonRateThrottle(SimpleRateThrottle):
    """Limits anonymous requests per client address: THROTTLE_RATES["anon"]."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: ViewSet) -> str | None:
        if _authenticated(request) is not None:
            return None
        return f"{self.scope}:{self.get_ident(request, view)}"


class UserRateThrottle(SimpleRateThrottle):
    """Limits requests per user (per client address when anonymous): THROTTLE_RATES["user"]."""

    scope = "user"

    def get_cache_key(self, request: Request, view: ViewSet) -> str | None:
        user = _authenticated(request)
        ident = f"user:{user.id}" if user is not None else self.get_ident(request, view)
        return f"{self.scope}:{ident}"


class ScopedRateThrottle(SimpleRateThrottle):
    """Limits the views that set `throttle_scope`, per user (or client address):
    THROTTLE_RATES[view.throttle_scope]. Views sharing a scope share the count."""

    def get_rate(self, view: ViewSet) -> str | None:
        scope = getattr(view, "throttle_scope", None)
        if scope is None:
            return None
        rates: dict[str, str | None] = view.container.throttling.rates()
        return rates.get(scope)

    def get_cache_key(self, request: Request, view: ViewSet) -> str | None:
        user = _authenticated(request)
        ident = f"user:{user.id}" if user is not None else self.get_ident(request, view)
        return f"{view.throttle_scope}:{ident}"


#: The names THROTTLE_DEFAULT_CLASSES accepts besides dotted paths.
BUILTIN_THROTTLES: dict[str, type[BaseThrottle]] = {
    "anon": AnonRateThrottle,
    "user": UserRateThrottle,
    "scoped": ScopedRateThrottle,
}


def resolve_throttle_classes(names: Iterable[str]) -> tuple[type[BaseThrottle], ...]:
    """THROTTLE_DEFAULT_CLASSES as classes: `anon`, `user`, `scoped` or `module:Class` paths.

    Raises:
        ConfigurationError: a name is neither, or does not name a throttle class.
    """
    import importlib

    classes: list[type[BaseThrottle]] = []
    for name in names:
        found: Any = BUILTIN_THROTTLES.get(name)
        if found is None:
            module, _, attribute = name.replace(":", ".").rpartition(".")
            try:
                found = getattr(importlib.import_module(module), attribute) if module else None
            except (ImportError, AttributeError):
                found = None
        if not (isinstance(found, type) and issubclass(found, BaseThrottle)):
            raise ConfigurationError(
                f"THROTTLE_DEFAULT_CLASSES: {name!r} is not 'anon', 'user', 'scoped' or the "
                "dotted path of a BaseThrottle subclass."
            )
        classes.append(found)
    return tuple(classes)
