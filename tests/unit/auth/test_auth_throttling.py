"""AuthViewSet's throttles (login, register and refresh per client address and per account)
and the bounded password-hashing queue (503 with Retry-After when full)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.adapters.memory.ratelimit import InMemoryRateLimiter
from core.auth.hashing import hashing_pool, run_hasher
from core.testing import test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, FastHasher, build_auth_app, login

LOGIN = "/api/v1/auth/login/"
REGISTER = "/api/v1/auth/register/"
REFRESH = "/api/v1/auth/refresh/"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def serve(
    clock: Clock, peer: str = "198.51.100.7", **settings: Any
) -> AsyncIterator[tuple[CoreApp, httpx.AsyncClient]]:
    app = build_auth_app(test_settings(**settings))
    app.container.throttling.rate_limiter.override(InMemoryRateLimiter(clock=clock))
    transport = httpx.ASGITransport(app=app, client=(peer, 4321))
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        await app.create_all()
        async with app.session() as db:
            await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        yield app, http


@pytest.fixture
def clock() -> Clock:
    return Clock()


def wrong(email: str = "ann@example.com") -> dict[str, str]:
    return {"email": email, "password": "not the password"}


async def test_logins_are_throttled_per_account_whatever_the_address(
    hasher: FastHasher, clock: Clock
) -> None:
    async with serve(
        clock,
        peer="10.0.0.2",
        trusted_proxies=["10.0.0.0/8"],
        throttle_rates={"auth": "100/min", "auth_account": "3/min"},
    ) as (_, http):
        codes = [
            (
                await http.post(LOGIN, json=wrong(), headers={"X-Forwarded-For": f"203.0.113.{n}"})
            ).status_code
            for n in range(4)
        ]
        # The right password does not get through either while the account's rate is spent,
        # and the email's case does not make another account.
        right = await http.post(LOGIN, json={"email": "ANN@example.com", "password": PASSWORD})
        other = await http.post(LOGIN, json=wrong("bob@example.com"))

        assert codes == [401, 401, 401, 429]
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) == 60
        assert right.json()["code"] == "throttled"
        assert other.status_code == 401

        clock.now += 61
        assert (await login(http, "ann@example.com"))["access_token"]


async def test_logins_are_throttled_per_client_address(hasher: FastHasher, clock: Clock) -> None:
    async with serve(clock, throttle_rates={"auth": "3/min", "auth_account": "100/min"}) as (
        _,
        http,
    ):
        codes = [
            (await http.post(LOGIN, json=wrong(f"user{n}@example.com"))).status_code
            for n in range(4)
        ]

        assert codes == [401, 401, 401, 429]
        assert hasher.verified == 3, "a throttled login costs no hash"


async def test_a_throttled_request_is_refused_before_its_body_is_read(
    hasher: FastHasher, clock: Clock
) -> None:
    async with serve(clock, throttle_rates={"auth": "1/min"}) as (_, http):
        await http.post(LOGIN, json=wrong())

        refused = await http.post(LOGIN, content=b"{not json")

        assert refused.status_code == 429


async def test_register_is_throttled_per_address_and_per_email(
    hasher: FastHasher, clock: Clock
) -> None:
    async with serve(clock, throttle_rates={"auth": "4/min", "auth_account": "2/min"}) as (
        _,
        http,
    ):
        taken = [
            (await http.post(REGISTER, json={"email": "ann@example.com", "password": PASSWORD}))
            for _ in range(3)
        ]
        fresh = await http.post(REGISTER, json={"email": "cid@example.com", "password": PASSWORD})
        over = await http.post(REGISTER, json={"email": "dee@example.com", "password": PASSWORD})

        assert [r.status_code for r in taken] == [409, 409, 429]
        assert fresh.status_code == 201
        assert over.status_code == 429


async def test_refresh_is_throttled_per_account(hasher: FastHasher, clock: Clock) -> None:
    async with serve(clock, throttle_rates={"auth": "100/min", "auth_account": "2/min"}) as (
        _,
        http,
    ):
        tokens = await login(http, "ann@example.com")
        first = await http.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        second = await http.post(REFRESH, json={"refresh_token": first.json()["refresh_token"]})
        third = await http.post(REFRESH, json={"refresh_token": second.json()["refresh_token"]})

        assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
        assert "Retry-After" in third.headers
        # Refused before the token was spent: it still works once the window passed.
        clock.now += 61
        again = await http.post(REFRESH, json={"refresh_token": second.json()["refresh_token"]})
        assert again.status_code == 200


async def test_me_and_logout_are_not_throttled(hasher: FastHasher, clock: Clock) -> None:
    async with serve(clock, throttle_rates={"auth": "1/min", "auth_account": "1/min"}) as (
        _,
        http,
    ):
        tokens = await login(http, "ann@example.com")
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}

        assert {
            (await http.get("/api/v1/auth/me/", headers=headers)).status_code for _ in range(5)
        } == {200}


async def test_auth_rates_can_be_turned_off(hasher: FastHasher, clock: Clock) -> None:
    async with serve(clock, throttle_rates={"auth": None, "auth_account": None}) as (_, http):
        codes = {(await http.post(LOGIN, json=wrong())).status_code for _ in range(40)}

        assert codes == {401}


# -- the bounded hashing queue ---------------------------------------------------------------


async def test_a_full_hashing_queue_answers_503_at_once(hasher: FastHasher, clock: Clock) -> None:
    blocker = threading.Event()
    before = hashing_pool().queue_size
    async with serve(clock, auth_hashing_queue_size=2) as (app, http):
        pool = hashing_pool()
        assert pool.queue_size == 2
        # Take every thread and every queue place.
        held = [asyncio.create_task(run_hasher(blocker.wait, 30)) for _ in range(pool.capacity)]
        try:
            await asyncio.sleep(0)  # one turn of the loop: each task takes its place and waits
            assert pool.pending == pool.capacity

            refused = await http.post(
                LOGIN, json={"email": "ann@example.com", "password": PASSWORD}
            )

            assert refused.status_code == 503
            assert refused.json()["code"] == "service_busy"
            assert int(refused.headers["Retry-After"]) >= 1
        finally:
            blocker.set()
            await asyncio.gather(*held)

        assert (await login(http, "ann@example.com"))["access_token"]
    assert hashing_pool().queue_size == before, "the app's bound ends with the app"


async def test_openapi_lists_the_throttled_answers(hasher: FastHasher, clock: Clock) -> None:
    async with serve(clock) as (app, http):
        paths = (await http.get("/openapi.json")).json()["paths"]

    for path, statuses in [
        ("login", {"429", "503"}),
        ("register", {"429", "503"}),
        ("refresh", {"429"}),
    ]:
        responses = paths[f"/api/v1/auth/{path}/"]["post"]["responses"]
        assert statuses <= set(responses), path
        assert "Retry-After" in responses["429"]["headers"]
    assert "429" not in paths["/api/v1/auth/logout/"]["post"]["responses"]
    assert "503" not in paths["/api/v1/auth/refresh/"]["post"]["responses"]
