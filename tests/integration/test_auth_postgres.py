"""Authentication end to end on PostgreSQL: register, login, me, refresh, logout, and
permissions from database rows, with the real password hasher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from core import CoreApp, Model
from core.auth import add_to_group, configure_auth, grant_permission
from core.settings import Settings
from core.testing import isolated_declarations
from tests import services
from tests.unit.auth.models import Post, User
from tests.unit.auth.support import PASSWORD, SECRET, bearer, build_auth_app, claims_of

pytestmark = pytest.mark.postgres

AUTH = "/api/v1/auth"


@pytest.fixture
def declared() -> Iterator[None]:
    with isolated_declarations():
        configure_auth(secret_key=SECRET, user_model=User, password_hasher="pbkdf2_sha256")
        yield


@pytest.fixture
async def app(postgres_url: str, declared: None) -> AsyncIterator[CoreApp]:
    url = await services.create_database(postgres_url, "core_auth")
    application = build_auth_app(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    try:
        async with application.lifespan():
            await application.create_all(Model.metadata)
            yield application
    finally:
        await services.drop_database(postgres_url, url)


@pytest.fixture
async def http(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_register_login_me_refresh_logout(http: httpx.AsyncClient) -> None:
    registered = await http.post(
        f"{AUTH}/register/", json={"email": "Ann@Example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert user["email"] == "ann@example.com" and "password" not in user

    duplicate = await http.post(
        f"{AUTH}/register/", json={"email": "ANN@example.com", "password": PASSWORD}
    )
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "email"

    wrong = await http.post(f"{AUTH}/login/", json={"email": "ann@example.com", "password": "x"})
    unknown = await http.post(f"{AUTH}/login/", json={"email": "no@example.com", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()

    login = await http.post(
        f"{AUTH}/login/", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    tokens = login.json()

    me = await http.get(f"{AUTH}/me/", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"] and me.json()["last_login"] is not None

    refreshed = await http.post(f"{AUTH}/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    pair = refreshed.json()
    assert claims_of(pair["refresh_token"])["fam"] == claims_of(tokens["refresh_token"])["fam"]

    # Within the grace window a second refresh with the spent token gets the same pair.
    twin = await http.post(f"{AUTH}/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert twin.status_code == 200 and twin.json() == pair

    second = (
        await http.post(f"{AUTH}/login/", json={"email": "ann@example.com", "password": PASSWORD})
    ).json()
    out = await http.post(f"{AUTH}/logout/", json={"refresh_token": second["refresh_token"]})
    assert out.status_code == 204
    after = await http.post(f"{AUTH}/refresh/", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    me = await http.get(f"{AUTH}/me/", headers=bearer(second["access_token"]))
    assert me.status_code == 401  # the login's access token ended with it


async def test_permissions_from_rows_on_postgres(http: httpx.AsyncClient, app: CoreApp) -> None:
    async with app.session() as db:
        ann = await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        post = await Post.objects.using(db).create(title="hello", author_id=ann.id, db=db)
    token = (
        await http.post(f"{AUTH}/login/", json={"email": "ann@example.com", "password": PASSWORD})
    ).json()["access_token"]

    assert (
        await http.delete(f"/api/v1/posts/{post.id}/", headers=bearer(token))
    ).status_code == 403
    path = f"/api/v1/posts/{post.id}/feature/"
    assert (await http.post(path, headers=bearer(token))).status_code == 403

    async with app.session() as db:
        editors = await add_to_group(ann, "editors", db)
        await grant_permission(editors, "posts.delete", db)

    assert (await http.post(path, headers=bearer(token))).status_code == 200
    assert (
        await http.delete(f"/api/v1/posts/{post.id}/", headers=bearer(token))
    ).status_code == 204
    async with app.session() as db:
        assert await User.GroupLink.objects.using(db).count() == 1
