"""Sessions that end: logout revokes the access token too, a password change or
`revoke_all_sessions` ends every session, families have an absolute lifetime, and concurrent
refreshes within the grace window share one new pair."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.adapters.memory.tokens import InMemoryTokenStore
from core.auth import InvalidTokenError, revoke_all_sessions
from core.auth.refresh import RefreshTokens
from core.context import use_container
from core.testing import test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, bearer, build_auth_app, claims_of, login

AUTH = "/api/v1/auth"


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(f"{AUTH}/refresh/", json={"refresh_token": token})


async def me(http: httpx.AsyncClient, access: str) -> int:
    return (await http.get(f"{AUTH}/me/", headers=bearer(access))).status_code


async def test_logout_revokes_the_access_token_of_the_header_and_of_the_login(
    http: httpx.AsyncClient, ann: User
) -> None:
    tokens = await login(http, ann.email)
    other = await login(http, ann.email)
    assert await me(http, tokens["access_token"]) == 200

    response = await http.post(
        f"{AUTH}/logout/",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )

    assert response.status_code == 204
    assert await me(http, tokens["access_token"]) == 401
    assert (await refresh(http, tokens["refresh_token"])).status_code == 401
    # Another login of the same user is another session: untouched.
    assert await me(http, other["access_token"]) == 200


async def test_logout_without_the_header_still_ends_the_logins_access_tokens(
    http: httpx.AsyncClient, ann: User
) -> None:
    tokens = await login(http, ann.email)
    rotated = (await refresh(http, tokens["refresh_token"])).json()

    await http.post(f"{AUTH}/logout/", json={"refresh_token": rotated["refresh_token"]})

    # Every access token of the login carries its family, and the family is revoked.
    assert await me(http, tokens["access_token"]) == 401
    assert await me(http, rotated["access_token"]) == 401
    assert claims_of(rotated["access_token"])["fam"] == claims_of(tokens["refresh_token"])["fam"]


async def test_a_password_change_ends_every_session(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    first, second = await login(http, ann.email), await login(http, ann.email)

    async with auth_app.session() as db:
        user = await User.objects.using(db).get(pk=ann.id)
        await user.set_password("a brand new passphrase")
        await user.save(db)

    for tokens in (first, second):
        assert await me(http, tokens["access_token"]) == 401
        assert (await refresh(http, tokens["refresh_token"])).status_code == 401
    fresh = await login(http, ann.email, "a brand new passphrase")
    assert await me(http, fresh["access_token"]) == 200
    assert claims_of(fresh["access_token"])["ver"] == 1
    assert (await refresh(http, fresh["refresh_token"])).status_code == 200


async def test_revoke_all_sessions_is_public_and_ends_them(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    tokens = await login(http, ann.email)

    with use_container(auth_app.container):
        assert await revoke_all_sessions(ann) == 1

    assert await me(http, tokens["access_token"]) == 401
    assert (await refresh(http, tokens["refresh_token"])).status_code == 401
    assert await me(http, (await login(http, ann.email))["access_token"]) == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def graced(hasher: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, CoreApp]]:
    """An app with a 5 s grace window and a token store on a clock the test moves."""
    app = build_auth_app(test_settings(auth_refresh_grace_seconds=5))
    clock = Clock()
    with app.container.auth.token_store.override(InMemoryTokenStore(clock)):
        async with app.lifespan():
            await app.create_all()
            async with app.session() as db:
                await User.create_user(email="bo@example.com", password=PASSWORD, db=db)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client, clock, app


async def test_concurrent_refreshes_within_the_window_get_one_new_pair(
    graced: tuple[httpx.AsyncClient, Clock, CoreApp],
) -> None:
    http, clock, _ = graced
    tokens = await login(http, "bo@example.com")

    answers = await asyncio.gather(*(refresh(http, tokens["refresh_token"]) for _ in range(5)))

    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.json()["refresh_token"] for a in answers}) == 1
    pair = answers[0].json()
    clock.now += 4  # still inside the window: a late twin gets the same pair
    assert (await refresh(http, tokens["refresh_token"])).json() == pair
    assert await me(http, pair["access_token"]) == 200

    clock.now += 2  # past the window: a reuse is a replay, and the family dies
    replay = await refresh(http, tokens["refresh_token"])
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert (await refresh(http, pair["refresh_token"])).status_code == 401
    assert await me(http, pair["access_token"]) == 401


async def test_a_family_ends_at_its_absolute_lifetime() -> None:
    from core.adapters.jwt.tokens import JwtTokenBackend

    backend = JwtTokenBackend("k" * 48)
    tokens = RefreshTokens(
        backend, InMemoryTokenStore(), timedelta(days=7), family_lifetime=timedelta(days=30)
    )
    now = int(time.time())

    # A login 29 days ago: the next refresh token lives one more day, not seven.
    late = tokens.issue("1", auth_time=now - 29 * 86_400)
    claims = claims_of(late["refresh_token"])
    assert claims["exp"] - now <= 86_400 + 5

    # A token of a login 31 days ago (issued by a backend that ignored the shorter lifetime)
    # is refused, and no successor can be issued for it.
    old = backend.create_token(
        {"sub": "1", "fam": "f", "auth_time": now - 31 * 86_400}, token_type="refresh"
    )
    with pytest.raises(InvalidTokenError, match="maximum age"):
        await tokens.check_refresh(old)
    with pytest.raises(InvalidTokenError, match="maximum age"):
        tokens.issue("1", auth_time=now - 31 * 86_400)


async def test_rotation_keeps_the_login_time_and_the_family() -> None:
    from core.adapters.jwt.tokens import JwtTokenBackend

    tokens = RefreshTokens(
        JwtTokenBackend("k" * 48),
        InMemoryTokenStore(),
        timedelta(days=7),
        family_lifetime=timedelta(days=30),
    )
    first = tokens.issue("1", auth_time=int(time.time()) - 3600)
    payload = await tokens.check_refresh(first["refresh_token"])
    second = await tokens.spend(payload, tokens.next_pair(payload))

    before, after = claims_of(first["refresh_token"]), claims_of(second["refresh_token"])
    assert (after["fam"], after["auth_time"]) == (before["fam"], before["auth_time"])
