"""Two CoreApps on one PostgreSQL database and one shared token store, standing for two replicas:
sessions end on both, whichever replica ended them. Run on the Redis and on the database store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis

from core import CoreApp, Model
from core.auth import configure_auth, register_password_hasher
from core.auth.models import TokenRecord
from core.ports.tokens import TokenStore
from core.settings import Settings
from core.testing import TokenStoreContract, isolated_declarations
from tests import services
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, FastHasher, bearer, build_auth_app, login

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

AUTH = "/api/v1/auth"
GRACE = 1.0


@dataclass
class Replicas:
    one: httpx.AsyncClient
    two: httpx.AsyncClient
    first: CoreApp

    async def refresh(self, client: httpx.AsyncClient, token: str) -> httpx.Response:
        return await client.post(f"{AUTH}/refresh/", json={"refresh_token": token})

    async def me(self, access: str) -> tuple[int, int]:
        """The status of GET me/ with `access`, on each replica."""
        return (
            (await self.one.get(f"{AUTH}/me/", headers=bearer(access))).status_code,
            (await self.two.get(f"{AUTH}/me/", headers=bearer(access))).status_code,
        )


@pytest.fixture
def declared() -> Iterator[None]:
    with isolated_declarations():
        register_password_hasher(FastHasher())
        configure_auth(secret_key=SECRET, user_model=User, password_hasher="fast_sha256")
        yield


@pytest.fixture(params=["redis", "database"])
async def replicas(
    request: pytest.FixtureRequest, postgres_url: str, redis_url: str, declared: None
) -> AsyncIterator[Replicas]:
    url = await services.create_database(postgres_url, "core_replicas")
    prefix = f"core-test:{uuid.uuid4().hex[:12]}:"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=url,
        auth_token_store=request.param,
        auth_token_store_url=redis_url,
        auth_token_store_prefix=prefix,
        auth_refresh_grace_seconds=GRACE,
    )
    first, second = build_auth_app(settings), build_auth_app(settings)
    try:
        async with first.lifespan(), second.lifespan():
            await first.create_all(Model.metadata)
            async with first.session() as db:
                await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
            one = httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a")
            two = httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b")
            async with one, two:
                yield Replicas(one, two, first)
    finally:
        await services.drop_database(postgres_url, url)
        async with Redis.from_url(redis_url) as redis:
            keys = [key async for key in redis.scan_iter(f"{prefix}*")]
            if keys:
                await redis.delete(*keys)


async def test_logout_on_one_replica_ends_the_session_on_the_other(r: Replicas) -> None:
    tokens = await login(r.one, "ann@example.com")
    assert await r.me(tokens["access_token"]) == (200, 200)

    logout = await r.one.post(
        f"{AUTH}/logout/",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )

    assert logout.status_code == 204
    assert (await r.refresh(r.two, tokens["refresh_token"])).status_code == 401
    assert await r.me(tokens["access_token"]) == (401, 401)


async def test_a_password_change_on_one_replica_ends_sessions_on_both(r: Replicas) -> None:
    on_one, on_two = await login(r.one, "ann@example.com"), await login(r.two, "ann@example.com")

    async with r.first.session() as db:
        user = await User.objects.using(db).get(email="ann@example.com")
        await user.set_password("another long passphrase")
        await user.save(db)

    for tokens in (on_one, on_two):
        assert await r.me(tokens["access_token"]) == (401, 401)
        assert (await r.refresh(r.one, tokens["refresh_token"])).status_code == 401
        assert (await r.refresh(r.two, tokens["refresh_token"])).status_code == 401
    fresh = await login(r.two, "ann@example.com", "another long passphrase")
    assert await r.me(fresh["access_token"]) == (200, 200)


async def test_concurrent_refreshes_across_replicas_share_one_pair_within_the_window(
    r: Replicas,
) -> None:
    tokens = await login(r.one, "ann@example.com")
    token = tokens["refresh_token"]

    answers = await asyncio.gather(
        *(r.refresh(client, token) for client in (r.one, r.two, r.one, r.two, r.one))
    )

    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.json()["refresh_token"] for a in answers}) == 1
    pair = answers[0].json()
    assert await r.me(pair["access_token"]) == (200, 200)

    await asyncio.sleep(GRACE + 0.5)  # past the window: a reuse is a replay
    replay = await r.refresh(r.two, token)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert (await r.refresh(r.one, pair["refresh_token"])).status_code == 401
    assert await r.me(pair["access_token"]) == (401, 401)


@pytest.fixture
def r(replicas: Replicas) -> Replicas:
    return replicas


class TestPostgresTokenStore(TokenStoreContract):
    """The database token store on PostgreSQL: the same contract as memory and Redis."""

    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[TokenStore]:
        url = await services.create_database(postgres_url, "core_tokens")
        app = CoreApp(
            settings=Settings(  # type: ignore[call-arg]
                _env_file=None, environment="test", database_url=url, auth_token_store="database"
            )
        )
        try:
            async with app.lifespan():
                await app.create_all(TokenRecord.metadata)
                yield app.container.auth.token_store()
        finally:
            await services.drop_database(postgres_url, url)
