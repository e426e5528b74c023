"""AuthViewSet over HTTP: register, login, refresh (rotation, reuse detection), me, logout, and
every way bad input is refused."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.auth import create_access_token
from core.context import use_container
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, bearer, claims_of, forge, login

AUTH = "/api/v1/auth"


async def test_register_login_me_refresh_logout(http: httpx.AsyncClient) -> None:
    registered = await http.post(
        f"{AUTH}/register/", json={"email": " Ann@Example.COM ", "password": PASSWORD}
    )
    assert registered.status_code == 201
    body = registered.json()
    assert body["email"] == "ann@example.com"
    assert "password" not in body
    assert body["is_active"] is True and body["is_superuser"] is False

    tokens = await login(http, "ANN@example.com")
    assert tokens["token_type"] == "bearer"
    access = claims_of(tokens["access_token"])
    assert access["sub"] == str(body["id"]) and access["type"] == "access"
    assert access["email"] == "ann@example.com"

    me = await http.get(f"{AUTH}/me/", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == body["id"] and me.json()["last_login"] is not None

    refreshed = await http.post(f"{AUTH}/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    pair = refreshed.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    # The rotated token continues the login's family.
    assert claims_of(pair["refresh_token"])["fam"] == claims_of(tokens["refresh_token"])["fam"]
    assert (await http.get(f"{AUTH}/me/", headers=bearer(pair["access_token"]))).status_code == 200

    out = await http.post(f"{AUTH}/logout/", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204 and out.content == b""
    again = await http.post(f"{AUTH}/refresh/", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    assert again.headers["www-authenticate"] == "Bearer"


async def test_unknown_email_and_wrong_password_get_the_same_401(
    http: httpx.AsyncClient, ann: User
) -> None:
    unknown = await http.post(
        f"{AUTH}/login/", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    wrong = await http.post(f"{AUTH}/login/", json={"email": ann.email, "password": "wrong pass"})

    assert unknown.status_code == wrong.status_code == 401
    assert (
        unknown.json()
        == wrong.json()
        == {
            "detail": "Invalid credentials.",
            "code": "invalid_credentials",
        }
    )
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"] == "Bearer"


async def test_inactive_users_cannot_log_in(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    async with auth_app.session() as db:
        user = await User.objects.using(db).get(id=ann.id)
        user.is_active = False
        await user.save(db)

    response = await http.post(f"{AUTH}/login/", json={"email": ann.email, "password": PASSWORD})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_register_with_an_existing_email_is_a_409_naming_the_field(
    http: httpx.AsyncClient, ann: User
) -> None:
    response = await http.post(
        f"{AUTH}/register/", json={"email": "ANN@example.com", "password": PASSWORD}
    )

    assert response.status_code == 409
    assert response.json()["field"] == "email"
    assert response.json()["code"] == "unique"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too short"),
        ("x" * 129, "too long"),
    ],
)
async def test_register_refuses_a_password_breaking_the_policy_with_reasons(
    http: httpx.AsyncClient, auth_app: CoreApp, password: str, reason: str
) -> None:
    response = await http.post(
        f"{AUTH}/register/", json={"email": "bob@example.com", "password": password}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_password"
    assert any(reason in text for text in body["detail"]["password"])
    assert await _user_count(auth_app) == 0


async def _user_count(app: CoreApp) -> int:
    async with app.session() as db:
        return await User.objects.using(db).count()


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@b.io"},
        {"email": "a@b.io", "password": PASSWORD, "is_superuser": True},
        {"email": "a" * 250 + "@b.io", "password": PASSWORD},
    ],
)
async def test_register_validates_its_body(
    http: httpx.AsyncClient, auth_app: CoreApp, body: dict[str, Any]
) -> None:
    response = await http.post(f"{AUTH}/register/", json=body)

    assert response.status_code == 422
    assert await _user_count(auth_app) == 0


async def test_register_and_login_refuse_malformed_json(http: httpx.AsyncClient) -> None:
    for path in ("register", "login", "refresh", "logout"):
        response = await http.post(
            f"{AUTH}/{path}/", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, path
        assert response.json()["code"] == "parse_error", path


async def test_login_needs_an_identifier(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{AUTH}/login/", json={"password": PASSWORD})

    assert response.status_code == 422


def _tokens_with(auth_app: CoreApp, user_id: Any, **extra: Any) -> str:
    with use_container(auth_app.container):
        return create_access_token(user_id=user_id, **extra)


async def test_bad_tokens_are_refused_with_401_and_www_authenticate(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    good = _tokens_with(auth_app, ann.id)
    claims = claims_of(good)
    now = int(time.time())
    header, _, signature = good.rpartition(".")
    tampered_claims = forge(
        {"alg": "HS256", "typ": "JWT"}, {**claims, "sub": "999"}, key="another-key"
    )
    bad = {
        "malformed": "not.a.jwt",
        "garbage": "abc",
        "tampered signature": f"{header}.{signature[::-1]}",
        "signed with another key": tampered_claims,
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims),
        "expired": forge(
            {"alg": "HS256", "typ": "JWT"}, {**claims, "iat": now - 120, "exp": now - 60}, SECRET
        ),
        "refresh used as access": (await login(http, ann.email))["refresh_token"],
        "no exp": forge(
            {"alg": "HS256", "typ": "JWT"}, {"sub": str(ann.id), "type": "access"}, SECRET
        ),
    }
    for name, token in bad.items():
        response = await http.get(f"{AUTH}/me/", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.json()["code"] == "invalid_token", name

    for header_value in ("Bearer ", "Bearer", "Token abc", "Basic YTpi"):
        response = await http.get(f"{AUTH}/me/", headers={"Authorization": header_value})
        assert response.status_code == 401, header_value
        assert response.headers["www-authenticate"] == "Bearer", header_value

    assert (await http.get(f"{AUTH}/me/", headers=bearer(good))).status_code == 200


async def test_a_token_for_a_deleted_or_deactivated_user_is_refused(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    token = _tokens_with(auth_app, ann.id)
    async with auth_app.session() as db:
        user = await User.objects.using(db).get(id=ann.id)
        user.is_active = False
        await user.save(db)
    inactive = await http.get(f"{AUTH}/me/", headers=bearer(token))
    async with auth_app.session() as db:
        await (await User.objects.using(db).get(id=ann.id)).delete(db)
    deleted = await http.get(f"{AUTH}/me/", headers=bearer(token))
    foreign = await http.get(
        f"{AUTH}/me/", headers=bearer(_tokens_with(auth_app, "not-an-integer-id"))
    )

    for response in (inactive, deleted, foreign):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_me_needs_authentication(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{AUTH}/me/")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_reusing_a_refresh_token_revokes_its_whole_family(
    http: httpx.AsyncClient, ann: User
) -> None:
    first = await login(http, ann.email)
    other_login = await login(http, ann.email)
    second = (
        await http.post(f"{AUTH}/refresh/", json={"refresh_token": first["refresh_token"]})
    ).json()

    # The first token is presented again: a copy leaked, or a client raced itself.
    replay = await http.post(f"{AUTH}/refresh/", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]

    # Its successor, unused until now, belongs to the revoked family too.
    successor = await http.post(f"{AUTH}/refresh/", json={"refresh_token": second["refresh_token"]})
    assert successor.status_code == 401
    assert "revoked" in successor.json()["detail"]

    # Another login of the same user is another family, untouched.
    unrelated = await http.post(
        f"{AUTH}/refresh/", json={"refresh_token": other_login["refresh_token"]}
    )
    assert unrelated.status_code == 200


async def test_refresh_refuses_access_tokens_and_garbage(
    http: httpx.AsyncClient, ann: User
) -> None:
    tokens = await login(http, ann.email)
    for token in (tokens["access_token"], "garbage", ""):
        response = await http.post(f"{AUTH}/refresh/", json={"refresh_token": token})
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
    logout = await http.post(f"{AUTH}/logout/", json={"refresh_token": tokens["access_token"]})
    assert logout.status_code == 401


async def test_refresh_for_a_user_deactivated_since_login_is_refused(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    tokens = await login(http, ann.email)
    async with auth_app.session() as db:
        user = await User.objects.using(db).get(id=ann.id)
        user.is_active = False
        await user.save(db)

    response = await http.post(f"{AUTH}/refresh/", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401


async def test_refresh_tokens_from_the_helper_rotate_too(
    http: httpx.AsyncClient, auth_app: CoreApp, ann: User
) -> None:
    from core.auth import create_refresh_token

    with use_container(auth_app.container):
        token = create_refresh_token(user_id=ann.id)

    first = await http.post(f"{AUTH}/refresh/", json={"refresh_token": token})
    replay = await http.post(f"{AUTH}/refresh/", json={"refresh_token": token})

    assert first.status_code == 200 and replay.status_code == 401
    # The helper's token was its own family; the rotated one carries it on.
    assert claims_of(first.json()["refresh_token"])["fam"] == claims_of(token)["jti"]


async def test_staff_flags_travel_in_the_access_token(
    http: httpx.AsyncClient, auth_app: CoreApp
) -> None:
    async with auth_app.session() as db:
        await User.create_superuser(email="root@example.com", password=PASSWORD, db=db)

    claims = claims_of((await login(http, "root@example.com"))["access_token"])

    assert claims["is_staff"] is True and claims["is_superuser"] is True


def test_openapi_documents_the_auth_routes(auth_app: CoreApp) -> None:
    schema = auth_app.fastapi.openapi()
    paths = {path for path in schema["paths"] if path.startswith(AUTH)}

    assert paths == {f"{AUTH}/{name}/" for name in ("register", "login", "refresh", "me", "logout")}
    login_op = schema["paths"][f"{AUTH}/login/"]["post"]
    assert login_op["tags"] == ["Auth"]
    body = login_op["requestBody"]["content"]["application/json"]["schema"]
    # Named components, not inlined copies: generated clients get one class per body.
    assert body == {"$ref": "#/components/schemas/LoginInput"}
    components = schema["components"]["schemas"]
    assert set(components["LoginInput"]["properties"]) == {"email", "username", "password"}
    for name, body_of in (("register", "RegisterInput"), ("refresh", "RefreshInput")):
        operation = schema["paths"][f"{AUTH}/{name}/"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{body_of}"
    assert components["RefreshInput"]["required"] == ["refresh_token"]
    assert components["RegisterInput"]["additionalProperties"] is False
    assert schema["paths"][f"{AUTH}/register/"]["post"]["responses"].get("201") is not None
