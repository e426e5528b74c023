"""Request authentication: the Bearer token of a request becomes `request.state.user`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import NotAuthenticatedError
from core.ports.tokens import TokenBackend


class TokenUser:
    """A user known only from a verified access token: services sharing SECRET_KEY trust each other.

    `id` is the token's `sub` (an int when it looks like one); every claim is in `claims`;
    `permissions` and `groups` claims feed HasPermission and IsInGroup.
    """

    is_authenticated = True
    is_active = True

    def __init__(self, claims: Mapping[str, Any]) -> None:
        self.claims = dict(claims)
        sub = str(claims.get("sub", ""))
        self.id: int | str = int(sub) if sub.isdigit() else sub
        self.email: str | None = claims.get("email")
        self.is_staff = bool(claims.get("is_staff", False))
        self.is_superuser = bool(claims.get("is_superuser", False))
        self.permissions = list(claims.get("permissions", ()) or ())
        self.groups = list(claims.get("groups", ()) or ())

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["claims"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<TokenUser id={self.id!r}>"


class RequestAuthenticator:
    """Reads `Authorization: Bearer <access token>`; no header means an anonymous request.

    A header with a bad, expired or wrong-type token is refused with 401, as DRF does, rather than
    silently treated as anonymous.
    """

    def __init__(self, token_backend: TokenBackend) -> None:
        self.token_backend = token_backend

    async def authenticate(self, request: Any, db: Any) -> Any | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticatedError("Authorization header must be 'Bearer <token>'.")
        payload = self.token_backend.verify_token(token.strip(), token_type="access")
        if payload is None:
            raise NotAuthenticatedError("Invalid or expired token.")
        return TokenUser(payload)
