"""The spec's hand-written AuthViewSet ("AuthViewSet Completo"), exactly as the spec shows it,
run end to end over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from core import AutoRouter, CoreApp, ModelViewSet, action
from core.auth import create_access_token, create_refresh_token, verify_token
from core.permissions import AllowAny, IsAuthenticated
from core.testing import test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import FastHasher, bearer


class RegisterInput(BaseModel):
    email: str
    password: str


class LoginInput(BaseModel):
    email: str
    password: str


class UserOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str


# --- the spec's code, verbatim (section "AuthViewSet Completo") ---------------------------------
# fmt: off
class AuthViewSet(ModelViewSet):
    model = User
    tags = ["Auth"]
    permission_classes = [AllowAny]

    # Desabilita CRUD padrao
    async def list(self, *a, **kw): raise HTTPException(404)  # noqa: E701
    async def retrieve(self, *a, **kw): raise HTTPException(404)  # noqa: E701
    async def create(self, *a, **kw): raise HTTPException(404)  # noqa: E701
    async def update(self, *a, **kw): raise HTTPException(404)  # noqa: E701
    async def destroy(self, *a, **kw): raise HTTPException(404)  # noqa: E701

    @action(methods=["POST"], detail=False)
    async def register(self, request: Request, db: AsyncSession, **kwargs):
        """POST /auth/register/"""
        body = await request.json()
        data = RegisterInput.model_validate(body)

        if await User.get_by_email(data.email, db):
            raise HTTPException(400, "Email already registered")

        user = await User.create_user(
            email=data.email, password=data.password, db=db
        )
        return UserOutput.model_validate(user).model_dump()

    @action(methods=["POST"], detail=False)
    async def login(self, request: Request, db: AsyncSession, **kwargs):
        """POST /auth/login/"""
        body = await request.json()
        data = LoginInput.model_validate(body)

        user = await User.authenticate(data.email, data.password, db)
        if not user:
            raise HTTPException(401, "Invalid credentials")

        return {
            "access_token": create_access_token(user_id=user.id, extra_claims={"email": user.email}),  # noqa: E501
            "refresh_token": create_refresh_token(user_id=user.id),
            "token_type": "bearer",
        }

    @action(methods=["POST"], detail=False)
    async def refresh(self, request: Request, db: AsyncSession, **kwargs):
        """POST /auth/refresh/"""
        body = await request.json()
        payload = verify_token(body["refresh_token"], token_type="refresh")
        if not payload:
            raise HTTPException(401, "Invalid refresh token")

        return {
            "access_token": create_access_token(user_id=payload["sub"]),
            "refresh_token": create_refresh_token(user_id=payload["sub"]),
            "token_type": "bearer",
        }

    @action(methods=["GET"], detail=False, permission_classes=[IsAuthenticated])
    async def me(self, request: Request, db: AsyncSession, **kwargs):
        """GET /auth/me/"""
        return UserOutput.model_validate(request.state.user).model_dump()
# fmt: on
# --- end of the spec's code -------------------------------------------------------------------


@pytest.fixture
async def spec_app(hasher: FastHasher) -> AsyncIterator[CoreApp]:
    router = AutoRouter()
    router.register("/auth", AuthViewSet)
    app = CoreApp(settings=test_settings(), routers=[router])
    async with app.lifespan():
        await app.create_all()
        yield app


@pytest.fixture
async def client(spec_app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=spec_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_the_specs_auth_viewset_works_as_written(client: httpx.AsyncClient) -> None:
    credentials = {"email": "ann@example.com", "password": "correct horse battery"}

    registered = await client.post("/auth/register/", json=credentials)
    assert registered.status_code == 200
    user: dict[str, Any] = registered.json()
    assert user == {"id": user["id"], "email": "ann@example.com"}

    duplicate = await client.post("/auth/register/", json=credentials)
    assert duplicate.status_code == 400
    assert duplicate.json()["detail"] == "Email already registered"

    wrong = await client.post("/auth/login/", json={**credentials, "password": "not the password"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "Invalid credentials"

    tokens = (await client.post("/auth/login/", json=credentials)).json()
    assert tokens["token_type"] == "bearer"
    assert verifies_outside_the_app(tokens["access_token"])

    me = await client.get("/auth/me/", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json() == user

    refreshed = await client.post("/auth/refresh/", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access_token"]
    assert (await client.get("/auth/me/", headers=bearer(new_access))).json() == user

    bad = await client.post("/auth/refresh/", json={"refresh_token": tokens["access_token"]})
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid refresh token"

    assert (await client.get("/auth/me/")).status_code == 401
    for path in ("/auth/", f"/auth/{user['id']}/"):
        assert (await client.get(path)).status_code == 404


def verifies_outside_the_app(token: str) -> bool:
    """The helpers also work outside a request: the script container signs with the same
    declared key, so the app's token verifies there too."""
    payload = verify_token(token, token_type="access")
    return payload is not None and payload["email"] == "ann@example.com"


async def test_the_specs_auth_viewset_lets_no_anonymous_caller_change_a_user(
    client: httpx.AsyncClient, spec_app: CoreApp
) -> None:
    # The spec disables update (404) but says nothing of partial_update: PATCH is update with
    # partial=True, so it is disabled too, and the derived input schema holds no account flag
    # and no password.
    credentials = {"email": "ann@example.com", "password": "correct horse battery"}
    user = (await client.post("/auth/register/", json=credentials)).json()
    path = f"/auth/{user['id']}/"

    for body in (
        {"is_superuser": True},
        {"is_staff": True, "is_active": False},
        {"password": "plaintext"},
        {"email": "mallory@example.com"},
        {"name": "Mallory"},
    ):
        for method in ("PATCH", "PUT"):
            response = await client.request(method, path, json=body)
            assert response.status_code in (404, 422), (method, body, response.text)
            assert "plaintext" not in response.text

    async with spec_app.session() as db:
        stored = await User.get_by_email("ann@example.com", db)
    assert stored is not None and not stored.is_superuser and not stored.is_staff
    assert stored.is_active and stored.password != "plaintext"
    assert (await client.post("/auth/login/", json=credentials)).status_code == 200
