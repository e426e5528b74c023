"""Throttling: rates, the client address behind trusted proxies, DRF's three throttles on
views, the settings-level default, and the 429 answer (memory limiter, a clock the test moves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from core import AutoRouter, CoreApp
from core.adapters.memory.ratelimit import InMemoryRateLimiter
from core.errors import ConfigurationError
from core.permissions import AllowAny
from core.testing import test_settings
from core.throttling import (
    AnonRateThrottle,
    ScopedRateThrottle,
    UserRateThrottle,
    client_ip,
    parse_rate,
    parse_trusted_proxies,
)
from core.views import APIView


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Caller:
    id: int
    is_active: bool = True


class HeaderAuthenticator:
    """Users by `X-User` header id."""

    async def authenticate(self, request: Request, db: Any) -> Caller | None:
        user = request.headers.get("x-user")
        return Caller(int(user)) if user else None


class AnonView(APIView):
    throttle_classes = [AnonRateThrottle]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}


class UserView(APIView):
    throttle_classes = [UserRateThrottle]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}


class UploadsView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "uploads"

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}

    async def post(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}


class MoreUploadsView(UploadsView):
    pass


class UnscopedView(APIView):
    throttle_classes = [ScopedRateThrottle]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}


class DefaultView(APIView):
    permission_classes = [AllowAny]

    async def get(self, request: Request, **kwargs: Any) -> Any:
        return {"ok": True}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@asynccontextmanager
async def serve(
    clock: Clock, client: tuple[str, int] = ("198.51.100.7", 5000), **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app whose limiter runs on `clock`."""
    router = AutoRouter()
    for prefix, view in [
        ("/anon", AnonView),
        ("/user", UserView),
        ("/uploads", UploadsView),
        ("/more-uploads", MoreUploadsView),
        ("/unscoped", UnscopedView),
        ("/default", DefaultView),
    ]:
        router.register(prefix, view)
    app = CoreApp(settings=test_settings(**settings), routers=[router])
    app.container.throttling.rate_limiter.override(InMemoryRateLimiter(clock=clock))
    app.container.auth.authenticator.override(HeaderAuthenticator())
    transport = httpx.ASGITransport(app=app, client=client)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http


# -- rates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("100/min", (100, 60.0)),
        ("100/m", (100, 60.0)),
        ("100/minute", (100, 60.0)),
        ("5/s", (5, 1.0)),
        ("5/sec", (5, 1.0)),
        ("5/second", (5, 1.0)),
        ("10/h", (10, 3600.0)),
        ("10/hour", (10, 3600.0)),
        ("1000/d", (1000, 86400.0)),
        ("1000/day", (1000, 86400.0)),
        ("1000/days", (1000, 86400.0)),
        ("3/10min", (3, 600.0)),
        (" 7 / Hour ", (7, 3600.0)),
    ],
)
def test_rates_parse(rate: str, expected: tuple[int, float]) -> None:
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["", "100", "min", "100/fortnight", "0/min", "-1/min", "1/0s"])
def test_a_bad_rate_is_a_configuration_error(rate: str) -> None:
    with pytest.raises(ConfigurationError, match="throttle rate"):
        parse_rate(rate)


def test_a_bad_rate_or_proxy_refuses_the_settings() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        test_settings(throttle_rates={"uploads": "5/fortnight"})
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        test_settings(trusted_proxies=["10.0.0.0/33"])


def test_settings_merge_rates_over_the_auth_defaults_and_split_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("THROTTLE_RATES", '{"anon": "100/min", "auth_account": null}')
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    monkeypatch.setenv("THROTTLE_DEFAULT_CLASSES", "anon,user")

    settings = test_settings()

    assert settings.throttle_rates == {"auth": "30/min", "auth_account": None, "anon": "100/min"}
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.1"]
    assert settings.throttle_default_classes == ["anon", "user"]


# -- client address --------------------------------------------------------------------------


def request_from(peer: str | None, forwarded: list[str] | None = None) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded or []]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": headers,
        "client": (peer, 1234) if peer is not None else None,
    }
    return Request(scope)


PROXIES = parse_trusted_proxies(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the header is ignored, whoever sends it.
        ("203.0.113.9", ["1.2.3.4"], (), "203.0.113.9"),
        # A peer outside the trusted networks cannot speak for anyone else.
        ("203.0.113.9", ["1.2.3.4"], PROXIES, "203.0.113.9"),
        # Behind a trusted proxy: the address it saw.
        ("10.0.0.2", ["198.51.100.7"], PROXIES, "198.51.100.7"),
        # A client's forged entries on the left are skipped: the nearest untrusted hop wins.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], PROXIES, "198.51.100.7"),
        # Several trusted proxies in a chain, over two headers.
        ("10.0.0.2", ["198.51.100.7, 10.1.1.1", "10.2.2.2"], PROXIES, "198.51.100.7"),
        # Only trusted hops: the leftmost one.
        ("10.0.0.2", ["10.9.9.9, 10.1.1.1"], PROXIES, "10.9.9.9"),
        # Garbage stops the walk at the last address a trusted proxy vouched for.
        ("10.0.0.2", ["198.51.100.7, not-an-ip"], PROXIES, "10.0.0.2"),
        ("10.0.0.2", ["evil, 10.1.1.1"], PROXIES, "10.1.1.1"),
        # No header at all: the proxy itself.
        ("10.0.0.2", [], PROXIES, "10.0.0.2"),
        # IPv6.
        ("2001:db8::1", ["2001:db8::2, 2a00:1450::5"], PROXIES, "2a00:1450::5"),
        # No peer (a server that gives none).
        (None, ["1.2.3.4"], PROXIES, None),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], trusted: Any, expected: str | None
) -> None:
    assert client_ip(request_from(peer, forwarded), trusted) == expected


async def test_the_anon_throttle_counts_per_forwarded_address_behind_a_trusted_proxy(
    clock: Clock,
) -> None:
    async with serve(
        clock,
        client=("10.0.0.2", 4000),
        trusted_proxies=["10.0.0.0/8"],
        throttle_rates={"anon": "1/min"},
    ) as http:
        first = await http.get("/anon/", headers={"X-Forwarded-For": "198.51.100.1"})
        second = await http.get("/anon/", headers={"X-Forwarded-For": "198.51.100.2"})
        again = await http.get("/anon/", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})

        assert (first.status_code, second.status_code, again.status_code) == (200, 200, 429)


async def test_forwarded_headers_from_an_untrusted_peer_do_not_dodge_the_throttle(
    clock: Clock,
) -> None:
    async with serve(
        clock, trusted_proxies=["10.0.0.0/8"], throttle_rates={"anon": "1/min"}
    ) as http:
        assert (await http.get("/anon/", headers={"X-Forwarded-For": "1.1.1.1"})).status_code == 200
        assert (await http.get("/anon/", headers={"X-Forwarded-For": "2.2.2.2"})).status_code == 429


# -- the throttles on views ------------------------------------------------------------------


async def test_a_refusal_is_429_with_retry_after_in_the_error_shape(clock: Clock) -> None:
    async with serve(clock, throttle_rates={"anon": "2/min"}) as http:
        assert [(await http.get("/anon/")).status_code for _ in range(2)] == [200, 200]
        clock.now += 20
        refused = await http.get("/anon/")

        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "40"
        assert refused.json()["code"] == "throttled"
        assert "40" in refused.json()["detail"]

        clock.now += 40
        assert (await http.get("/anon/")).status_code == 200


async def test_the_anon_throttle_leaves_users_alone(clock: Clock) -> None:
    async with serve(clock, throttle_rates={"anon": "1/min"}) as http:
        await http.get("/anon/")

        assert (await http.get("/anon/")).status_code == 429
        assert (await http.get("/anon/", headers={"X-User": "1"})).status_code == 200
        assert (await http.get("/anon/", headers={"X-User": "1"})).status_code == 200


async def test_the_user_throttle_counts_each_user_apart(clock: Clock) -> None:
    async with serve(clock, throttle_rates={"user": "2/min"}) as http:
        ann = [(await http.get("/user/", headers={"X-User": "1"})).status_code for _ in range(3)]
        bob = [(await http.get("/user/", headers={"X-User": "2"})).status_code for _ in range(2)]
        anonymous = [(await http.get("/user/")).status_code for _ in range(3)]

        assert ann == [200, 200, 429]
        assert bob == [200, 200]
        assert anonymous == [200, 200, 429]  # counted by address


async def test_views_sharing_a_scope_share_its_count(clock: Clock) -> None:
    async with serve(clock, throttle_rates={"uploads": "3/hour"}) as http:
        codes = [
            (await http.get("/uploads/")).status_code,
            (await http.post("/uploads/")).status_code,
            (await http.get("/more-uploads/")).status_code,
            (await http.get("/more-uploads/")).status_code,
        ]

        assert codes == [200, 200, 200, 429]
        assert [(await http.get("/unscoped/")).status_code for _ in range(5)] == [200] * 5


async def test_a_scope_without_a_rate_throttles_nothing(clock: Clock) -> None:
    async with serve(clock) as http:
        assert {(await http.get("/uploads/")).status_code for _ in range(20)} == {200}
        assert {(await http.get("/anon/")).status_code for _ in range(20)} == {200}


async def test_the_default_throttle_classes_apply_to_views_that_name_none(
    clock: Clock,
) -> None:
    async with serve(
        clock, throttle_default_classes="anon", throttle_rates={"anon": "1/min", "user": "1/min"}
    ) as http:
        assert (await http.get("/default/")).status_code == 200
        assert (await http.get("/default/")).status_code == 429
        # A view with its own throttle_classes keeps them.
        assert (await http.get("/user/", headers={"X-User": "1"})).status_code == 200


async def test_a_dotted_default_throttle_is_imported(clock: Clock) -> None:
    async with serve(
        clock,
        throttle_default_classes="core.throttling.UserRateThrottle",
        throttle_rates={"user": "1/min"},
    ) as http:
        assert (await http.get("/default/", headers={"X-User": "3"})).status_code == 200
        assert (await http.get("/default/", headers={"X-User": "3"})).status_code == 429


@pytest.mark.parametrize("name", ["bursty", "core.throttling.parse_rate", "nowhere.Throttle"])
async def test_an_unknown_default_throttle_fails_start_up(name: str) -> None:
    app = CoreApp(settings=test_settings(throttle_default_classes=name))

    with pytest.raises(ConfigurationError, match="THROTTLE_DEFAULT_CLASSES"):
        async with app.lifespan():
            pass


async def test_the_memory_limiter_is_the_default_and_per_app() -> None:
    first = CoreApp(settings=test_settings())
    second = CoreApp(settings=test_settings())

    limiter = first.container.throttling.rate_limiter()

    assert isinstance(limiter, InMemoryRateLimiter)
    assert limiter is first.container.throttling.rate_limiter()
    assert limiter is not second.container.throttling.rate_limiter()


def test_the_memory_limiter_forgets_keys_whose_window_passed() -> None:
    import asyncio

    clock = Clock()
    limiter = InMemoryRateLimiter(clock=clock)

    async def hits() -> None:
        for n in range(3000):
            await limiter.hit(f"k{n}", limit=1, window=10)
            clock.now += 0.01

    asyncio.run(hits())

    assert len(limiter) < 2100  # keys older than the window are swept as the map grows


async def test_a_memory_store_in_production_warns_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Production as it should be otherwise (a long key, a shared token store); nothing connects
    # until a request needs the stores.
    production = {"environment": "production", "secret_key": "x" * 48, "auth_token_store": "redis"}
    alone = CoreApp(settings=test_settings(**production))
    shared = CoreApp(settings=test_settings(**production, throttle_store="redis"))

    with caplog.at_level("WARNING", logger="core.throttling"):
        async with alone.lifespan():
            pass
        warned = [r.getMessage() for r in caplog.records]
        caplog.clear()
        async with shared.lifespan():
            pass

    assert any("THROTTLE_STORE=memory in production" in message for message in warned)
    assert not caplog.records
