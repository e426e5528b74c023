"""Shared pieces of the auth tests: a fast hasher, an app with auth routes, token forging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from core import AutoRouter, CoreApp, ModelViewSet, action
from core.auth import AuthViewSet, PasswordHasher
from core.permissions import AllowAny, HasPermission, IsAuthenticated, IsInGroup
from core.settings import Settings
from tests.unit.auth.models import Post

SECRET = "auth-tests-secret-key-long-enough-for-hs256-0123456789"
PASSWORD = "correct horse battery staple"


class FastHasher(PasswordHasher):
    """Salted SHA-256, for tests only: the real schemes cost ~0.3 s per hash by design."""

    name = "fast_sha256"

    def __init__(self) -> None:
        self.verified = 0

    def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        return f"fast${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"

    def verify(self, password: str, hashed: str) -> bool:
        self.verified += 1
        scheme, _, rest = hashed.partition("$")
        salt, _, digest = rest.partition("$")
        if scheme != "fast" or not digest:
            return False
        expected = hashlib.sha256((salt + password).encode()).hexdigest()
        return hmac.compare_digest(expected, digest)


class PostOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    author_id: int


class PostViewSet(ModelViewSet):
    """Posts guarded by database permissions and groups."""

    model = Post
    output_schema = PostOutput
    permission_classes = [IsAuthenticated]
    permission_classes_by_action = {
        "list": [AllowAny],
        "destroy": [HasPermission("posts.delete")],
    }

    @action(methods=["POST"], detail=True, permission_classes=[IsInGroup("editors")])
    async def feature(self, request: Request, db: Any, **kwargs: Any) -> Any:
        post = await self.get_object(db, **kwargs)
        return {"featured": post.id}

    @action(methods=["GET"], detail=False)
    async def whoami(self, request: Request, db: Any, **kwargs: Any) -> Any:
        user = request.state.user
        return {"id": user.id, "type": type(user).__name__}


def build_auth_app(settings: Settings) -> CoreApp:
    router = AutoRouter(prefix="/api/v1")
    router.register("/auth", AuthViewSet)
    router.register("/posts", PostViewSet)
    return CoreApp(settings=settings, routers=[router], title="Auth tests")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: str | None = None) -> str:
    """A token with this header and claims, HMAC-SHA256-signed with `key` (unsigned if None)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, unverified."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """The token pair of a successful login through AuthViewSet."""
    response = await http.post("/api/v1/auth/login/", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens
