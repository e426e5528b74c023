"""The auth-backend chain: built-in token and model backends, custom backends (the spec's LDAP
example), stateless token users for services without a user table, anonymous requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.adapters.jwt.tokens import JwtTokenBackend
from core.auth import (
    AuthBackend,
    TokenUser,
    authenticate,
    configure_auth,
    create_access_token,
    register_auth_backend,
)
from core.context import use_container
from core.errors import ConfigurationError
from core.testing import isolated_declarations, test_settings
from tests.unit.auth.models import Post, User
from tests.unit.auth.support import PASSWORD, SECRET, bearer, build_auth_app, claims_of

AUTH = "/api/v1/auth"


class LDAPBackend(AuthBackend):
    """The spec's custom backend, against an in-memory "directory"; directory users get a local
    row (with an unusable password) so the rest of the app sees ordinary users."""

    name = "ldap"

    def __init__(self, directory: dict[str, str]) -> None:
        self.directory = directory
        self.loaded: list[Any] = []

    async def authenticate(self, request: Any, db: Any, **credentials: Any) -> Any:
        username = credentials.get("username")
        password = credentials.get("password")
        if username is None or self.directory.get(username) != password:
            return None
        email = f"{username}@corp.example"
        user = await User.get_by_email(email, db)
        if user is None:
            user = await User.create_user(email=email, db=db)
        return user

    async def get_user(self, user_id: int, db: Any) -> Any:
        self.loaded.append(user_id)
        return await User.objects.using(db).get_or_none(id=user_id)


class ApiKeyBackend(AuthBackend):
    """Authenticates requests by `Authorization: ApiKey <key>`, a scheme the token backend
    leaves alone."""

    name = "api_key"

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys
        self.asked = 0

    async def authenticate(self, request: Any, db: Any, **credentials: Any) -> Any:
        self.asked += 1
        if credentials:
            return None
        scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
        return self.keys.get(key) if scheme == "ApiKey" else None

    async def get_user(self, user_id: Any, db: Any) -> Any:
        return None


@pytest.fixture
def ldap(hasher: Any) -> LDAPBackend:
    backend = LDAPBackend({"jdoe": "ldap-secret-1"})
    register_auth_backend(backend)
    return backend


async def test_login_through_a_custom_backend_and_later_requests_use_its_get_user(
    ldap: LDAPBackend, http: httpx.AsyncClient
) -> None:
    refused = await http.post(
        f"{AUTH}/login/", json={"username": "jdoe", "password": "wrong-password"}
    )
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"

    response = await http.post(
        f"{AUTH}/login/", json={"username": "jdoe", "password": "ldap-secret-1"}
    )
    assert response.status_code == 200
    tokens = response.json()
    assert claims_of(tokens["access_token"])["auth_backend"] == "ldap"

    me = await http.get(f"{AUTH}/me/", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "jdoe@corp.example"
    assert ldap.loaded == [me.json()["id"]]

    refreshed = await http.post(f"{AUTH}/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert claims_of(refreshed.json()["access_token"])["auth_backend"] == "ldap"
    assert len(ldap.loaded) == 2


async def test_the_model_backend_is_asked_before_custom_ones(
    ldap: LDAPBackend, http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
    tokens = (
        await http.post(f"{AUTH}/login/", json={"email": "ann@example.com", "password": PASSWORD})
    ).json()

    assert "auth_backend" not in claims_of(tokens["access_token"])
    authenticator = auth_app.container.auth.authenticator()
    assert [b.name for b in authenticator.backends()] == ["token", "model", "ldap"]
    assert authenticator.backend("ldap") is ldap and authenticator.backend("nope") is None


async def test_authenticate_helper_asks_the_chain(ldap: LDAPBackend, auth_app: CoreApp) -> None:
    request = SimpleNamespace(headers={})
    async with auth_app.session() as db:
        await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        by_model = await authenticate(request, db, email="ann@example.com", password=PASSWORD)
        by_ldap = await authenticate(request, db, username="jdoe", password="ldap-secret-1")
        nobody = await authenticate(request, db, username="jdoe", password="nope")
        nothing = await authenticate(request, db)
        token = create_access_token(user_id=by_model.id)
        by_token = await authenticate(request, db, token=token)

    assert by_model is not None and by_model.email == "ann@example.com"
    assert by_ldap is not None and by_ldap.email == "jdoe@corp.example"
    assert nobody is None and nothing is None
    assert by_token is not None and by_token.id == by_model.id


async def test_a_custom_backend_can_authenticate_requests_by_its_own_scheme(
    hasher: Any, http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    async with auth_app.session() as db:
        robot = await User.create_user(email="robot@example.com", password=PASSWORD, db=db)
    register_auth_backend(ApiKeyBackend({"k-123": robot}))

    ok = await http.get(f"{AUTH}/me/", headers={"Authorization": "ApiKey k-123"})
    unknown = await http.get(f"{AUTH}/me/", headers={"Authorization": "ApiKey nope"})

    assert ok.status_code == 200 and ok.json()["email"] == "robot@example.com"
    assert unknown.status_code == 401


async def test_anonymous_requests_ask_no_backend(
    hasher: Any, http: httpx.AsyncClient, auth_app: CoreApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = ApiKeyBackend({})
    register_auth_backend(counting)
    authenticator = auth_app.container.auth.authenticator()

    def no_chain() -> Any:
        raise AssertionError("an anonymous request walked the backend chain")

    monkeypatch.setattr(authenticator, "backends", no_chain)
    response = await http.get("/api/v1/posts/")

    assert response.status_code == 200
    assert counting.asked == 0


# -- a service with no user model ------------------------------------------------------------------
@pytest.fixture
def stateless() -> Iterator[None]:
    """No `configure_auth(user_model=...)`: this process is a service without a user table."""
    with isolated_declarations():
        configure_auth(secret_key=SECRET)
        yield


@pytest.fixture
async def order_api(stateless: None) -> AsyncIterator[httpx.AsyncClient]:
    app = build_auth_app(test_settings())
    async with app.lifespan():
        await app.create_all()
        async with app.session() as db:
            author = await User.objects.using(db).create(email="author@example.com", db=db)
            await Post.objects.using(db).create(id=7, title="t", author_id=author.id, db=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_service_without_user_model_trusts_tokens_signed_with_the_shared_key(
    order_api: httpx.AsyncClient,
) -> None:
    # Another service (the user API) signs with the same SECRET_KEY.
    user_api = JwtTokenBackend(SECRET)
    token = user_api.create_token(
        {"sub": 42, "email": "ann@example.com", "permissions": ["posts.delete"]}
    )

    whoami = await order_api.get("/api/v1/posts/whoami/", headers=bearer(token))
    me = await order_api.get(f"{AUTH}/me/", headers=bearer(token))
    delete = await order_api.delete("/api/v1/posts/7/", headers=bearer(token))

    assert whoami.status_code == 200 and whoami.json() == {"id": 42, "type": "TokenUser"}
    assert me.json() == {
        "id": 42,
        "email": "ann@example.com",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
    }
    assert delete.status_code == 204  # HasPermission read the `permissions` claim


async def test_a_service_without_user_model_refuses_other_keys(
    order_api: httpx.AsyncClient,
) -> None:
    foreign = JwtTokenBackend("some-other-service-key-that-is-long-enough").create_token(
        {"sub": 42}
    )

    response = await order_api.get("/api/v1/posts/whoami/", headers=bearer(foreign))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_without_a_user_model_auth_endpoints_that_need_one_say_so_in_the_log(
    order_api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await order_api.post(
        f"{AUTH}/register/", json={"email": "a@example.com", "password": PASSWORD}
    )

    # The client learns nothing of the configuration; the operator reads it in the log.
    assert response.status_code == 500
    assert response.json() == {
        "detail": "A server error occurred.",
        "code": ConfigurationError.code,
    }
    assert "needs a user model" in caplog.text


async def test_a_token_user_is_built_from_claims(stateless: None) -> None:
    app = CoreApp(settings=test_settings())
    request = SimpleNamespace(headers={})
    with use_container(app.container):
        token = create_access_token(
            user_id="u-1", extra_claims={"groups": ["editors"], "is_staff": True}
        )
        user = await app.container.auth.authenticator().authenticate(
            SimpleNamespace(headers={"authorization": f"Bearer {token}"}), None
        )
        assert await authenticate(request, None, token=token) is not None
    assert isinstance(user, TokenUser)
    assert (user.id, user.groups, user.is_staff) == ("u-1", ["editors"], True)
