"""RefreshTokens: token pairs, refresh-token rotation with reuse detection, and revocation.

Every refresh token belongs to a *family*, the chain of tokens grown from one login (the `fam`
claim; a token without one, e.g. from `create_refresh_token`, is its own family). A refresh
spends the token and returns a new pair in the same family. Presenting a spent token again means
a copy leaked (or a client raced itself), so the family is revoked: the thief's and the
owner's tokens stop working together, and the owner logs in again.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from core.auth.errors import InvalidTokenError
from core.ports.tokens import TokenBackend, TokenStore

__all__ = ("FAMILY_CLAIM", "RefreshTokens")

FAMILY_CLAIM = "fam"


class RefreshTokens:
    """Issues, rotates and revokes token pairs (the container's `auth.refresh_tokens`).

    Args:
        token_backend: signs and verifies the tokens.
        token_store: remembers spent tokens and revoked families.
        refresh_lifetime: how long a family stays revoked: the longest a token issued before
            the revocation can still verify.

    Example:
        >>> tokens = app.container.auth.refresh_tokens()  # doctest: +SKIP
        >>> pair = tokens.issue(user.id, claims={"email": user.email})  # doctest: +SKIP
        >>> payload = await tokens.consume(pair["refresh_token"])  # doctest: +SKIP
        >>> tokens.issue(payload["sub"], family=tokens.family_of(payload))  # doctest: +SKIP
    """

    def __init__(
        self, token_backend: TokenBackend, token_store: TokenStore, refresh_lifetime: timedelta
    ) -> None:
        self.token_backend = token_backend
        self.token_store = token_store
        self.refresh_lifetime = refresh_lifetime

    def issue(
        self,
        user_id: Any,
        *,
        claims: Mapping[str, Any] | None = None,
        family: str | None = None,
        refresh_claims: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """A new access and refresh token for `user_id`.

        Args:
            user_id: the `sub` of both tokens.
            claims: extra claims of the access token.
            family: the family to continue (a rotation); a new one when None (a login).
            refresh_claims: extra claims of the refresh token.

        Returns:
            `{"access_token": ..., "refresh_token": ..., "token_type": "bearer"}`.
        """
        access = self.token_backend.create_token(
            {**(claims or {}), "sub": user_id}, token_type="access"
        )
        refresh = self.token_backend.create_token(
            {**(refresh_claims or {}), "sub": user_id, FAMILY_CLAIM: family or uuid.uuid4().hex},
            token_type="refresh",
        )
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}

    @staticmethod
    def family_of(payload: Mapping[str, Any]) -> str:
        """The family of a verified refresh token's payload."""
        return str(payload.get(FAMILY_CLAIM) or _token_id(payload))

    async def consume(self, refresh_token: str) -> dict[str, Any]:
        """Verify and spend `refresh_token`, once; the caller then issues the next pair.

        Raises:
            InvalidTokenError: not a valid refresh token, its family is revoked, or it was
                already spent (which revokes the family).
        """
        payload = self._verify(refresh_token)
        family = self.family_of(payload)
        if await self.token_store.is_revoked(family):
            raise InvalidTokenError("This refresh token has been revoked.")
        if not await self.token_store.mark_used(_token_id(payload), self._remaining(payload)):
            await self.revoke_family(family)
            raise InvalidTokenError(
                "This refresh token was already used; every token of its session is revoked."
            )
        return payload

    async def revoke(self, refresh_token: str) -> dict[str, Any]:
        """Revoke the family of `refresh_token` (a logout); returns its payload.

        Raises:
            InvalidTokenError: not a valid refresh token.
        """
        payload = self._verify(refresh_token)
        await self.token_store.mark_used(_token_id(payload), self._remaining(payload))
        await self.revoke_family(self.family_of(payload))
        return payload

    async def revoke_family(self, family: str) -> None:
        """Refuse every refresh token of `family` from now on."""
        await self.token_store.revoke_family(family, self.refresh_lifetime.total_seconds())

    def _verify(self, refresh_token: object) -> dict[str, Any]:
        if not isinstance(refresh_token, str) or not refresh_token:
            raise InvalidTokenError("Invalid or expired refresh token.")
        payload = self.token_backend.verify_token(refresh_token, token_type="refresh")
        if payload is None or payload.get("sub") is None:
            raise InvalidTokenError("Invalid or expired refresh token.")
        if "jti" not in payload:
            # A custom token backend may not set `jti`; the token's own digest identifies it.
            payload = {**payload, "jti": hashlib.sha256(refresh_token.encode()).hexdigest()}
        return payload

    def _remaining(self, payload: Mapping[str, Any]) -> float:
        # Remember a spent token for as long as it could still verify, and no longer; without
        # an `exp` (a custom backend), for as long as any refresh token lives.
        exp = payload.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            return max(1.0, exp - time.time())
        return self.refresh_lifetime.total_seconds()


def _token_id(payload: Mapping[str, Any]) -> str:
    return str(payload["jti"])
