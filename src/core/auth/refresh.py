"""RefreshTokens: token pairs, rotation with reuse detection, revocation, and sessions that end.

Every refresh token belongs to a *family*, the chain of tokens grown from one login (the `fam`
claim, which access tokens carry too; a token without one, e.g. from `create_refresh_token`, is
its own family). A refresh spends the token and returns a new pair in the same family.
Presenting a spent token again means a copy leaked, so the family is revoked: the thief's and
the owner's tokens stop working together, and the owner logs in again. A client racing itself
(two tabs refreshing at once) is not a thief: within `grace` of the first refresh the others get
the same new pair.

A family lives at most `family_lifetime` from its login (the `auth_time` claim), however often
it rotates. Every token carries its user's *session version* (`ver`); a password change or
`revoke_all_sessions(user)` bumps it, and tokens with an older one stop working everywhere
the token store is shared.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeGuard

from core.auth.errors import InvalidTokenError
from core.ports.tokens import TokenBackend, TokenStore

__all__ = (
    "AUTH_TIME_CLAIM",
    "FAMILY_CLAIM",
    "VERSION_CLAIM",
    "RefreshTokens",
    "revoke_all_sessions",
)

FAMILY_CLAIM = "fam"
VERSION_CLAIM = "ver"
AUTH_TIME_CLAIM = "auth_time"


class RefreshTokens:
    """Issues, rotates and revokes token pairs, and checks access tokens against revocations
    (the container's `auth.refresh_tokens`).

    Args:
        token_backend: signs and verifies the tokens.
        token_store: remembers spent and revoked tokens and session versions.
        refresh_lifetime: the lifetime of one refresh token; also how long a family stays
            revoked (the longest a token issued before the revocation can still verify).
        family_lifetime: the absolute lifetime of a login (AUTH_REFRESH_FAMILY_LIFETIME_DAYS).
        grace: how long after a refresh a concurrent one with the same token gets the same
            pair instead of revoking the family (AUTH_REFRESH_GRACE_SECONDS).

    Example:
        >>> tokens = app.container.auth.refresh_tokens()  # doctest: +SKIP
        >>> pair = await tokens.login(user.id, claims={"email": user.email})  # doctest: +SKIP
        >>> payload = await tokens.check_refresh(pair["refresh_token"])  # doctest: +SKIP
        >>> await tokens.spend(payload, tokens.next_pair(payload))  # doctest: +SKIP
    """

    def __init__(
        self,
        token_backend: TokenBackend,
        token_store: TokenStore,
        refresh_lifetime: timedelta,
        *,
        family_lifetime: timedelta | None = None,
        grace: timedelta = timedelta(0),
    ) -> None:
        self.token_backend = token_backend
        self.token_store = token_store
        self.refresh_lifetime = refresh_lifetime
        self.family_lifetime = family_lifetime
        self.grace = grace

    # -- issuing ------------------------------------------------------------------------------
    def issue(
        self,
        user_id: Any,
        *,
        claims: Mapping[str, Any] | None = None,
        family: str | None = None,
        refresh_claims: Mapping[str, Any] | None = None,
        version: int = 0,
        auth_time: int | None = None,
    ) -> dict[str, str]:
        """A new access and refresh token for `user_id`.

        Args:
            user_id: the `sub` of both tokens.
            claims: extra claims of the access token.
            family: the family to continue (a rotation); a new one when None (a login).
            refresh_claims: extra claims of the refresh token.
            version: the user's session version (see `login`, which looks it up).
            auth_time: when the family's login happened (epoch seconds); now when None.

        Returns:
            `{"access_token": ..., "refresh_token": ..., "token_type": "bearer"}`.

        Raises:
            InvalidTokenError: the family has outlived `family_lifetime`.
        """
        now = int(time.time())
        auth_time = now if auth_time is None else auth_time
        family = family or uuid.uuid4().hex
        session = {FAMILY_CLAIM: family, VERSION_CLAIM: version}
        access = self.token_backend.create_token(
            {**(claims or {}), "sub": user_id, **session}, token_type="access"
        )
        refresh = self.token_backend.create_token(
            {**(refresh_claims or {}), "sub": user_id, **session, AUTH_TIME_CLAIM: auth_time},
            token_type="refresh",
            expires_delta=self._refresh_lifetime(auth_time, now),
        )
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}

    async def login(
        self,
        user_id: Any,
        *,
        claims: Mapping[str, Any] | None = None,
        refresh_claims: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """A pair starting a new family, carrying the user's current session version."""
        version = await self.token_store.session_version(str(user_id))
        return self.issue(user_id, claims=claims, refresh_claims=refresh_claims, version=version)

    def _refresh_lifetime(self, auth_time: int, now: int) -> timedelta | None:
        if self.family_lifetime is None:
            return None
        left = timedelta(seconds=auth_time - now) + self.family_lifetime
        if left <= timedelta(0):
            raise InvalidTokenError("This session has reached its maximum age; log in again.")
        return min(left, self.refresh_lifetime)

    # -- rotating -----------------------------------------------------------------------------
    @staticmethod
    def family_of(payload: Mapping[str, Any]) -> str:
        """The family of a verified refresh token's payload."""
        return str(payload.get(FAMILY_CLAIM) or _token_id(payload))

    async def check_refresh(self, refresh_token: object) -> dict[str, Any]:
        """The payload of `refresh_token` if it may be refreshed, without spending it.

        Raises:
            InvalidTokenError: not a valid refresh token; its family is revoked or past its
                absolute lifetime; its session version is stale (a password change).
        """
        payload = self._verify(refresh_token, "refresh")
        if await self.token_store.is_revoked(self.family_of(payload)):
            raise InvalidTokenError("This refresh token has been revoked.")
        if self._version_of(payload) < await self.token_store.session_version(str(payload["sub"])):
            raise InvalidTokenError("This session has ended; log in again.")
        if self._past_family_lifetime(payload.get(AUTH_TIME_CLAIM)):
            raise InvalidTokenError("This session has reached its maximum age; log in again.")
        return payload

    def next_pair(
        self,
        payload: Mapping[str, Any],
        *,
        user_id: Any = None,
        claims: Mapping[str, Any] | None = None,
        refresh_claims: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """The pair a refresh with the (checked) `payload` hands out: same family, same
        session version and login time."""
        auth_time = payload.get(AUTH_TIME_CLAIM)
        return self.issue(
            payload["sub"] if user_id is None else user_id,
            claims=claims,
            refresh_claims=refresh_claims,
            family=self.family_of(payload),
            version=self._version_of(payload),
            auth_time=int(auth_time) if _is_number(auth_time) else None,
        )

    async def spend(self, payload: Mapping[str, Any], pair: Mapping[str, str]) -> dict[str, str]:
        """Spend the refresh token of `payload` for `pair`; the pair to answer with.

        Returns:
            `pair`, or, for a concurrent refresh with the same token within `grace`, the pair
            the first one got.

        Raises:
            InvalidTokenError: the token was spent before (which revokes the family).
        """
        answer = await self.token_store.spend(
            _token_id(payload), self._remaining(payload), pair, self.grace.total_seconds()
        )
        if answer is None:
            await self.revoke_family(self.family_of(payload))
            raise InvalidTokenError(
                "This refresh token was already used; every token of its session is revoked."
            )
        return dict(answer)

    async def consume(self, refresh_token: str) -> dict[str, Any]:
        """Verify and spend `refresh_token`, once, with no grace window; the caller then issues
        the next pair (`next_pair`). `check_refresh` + `spend` is the concurrent-safe form.

        Raises:
            InvalidTokenError: see `check_refresh`; or it was already spent (which revokes
                the family).
        """
        payload = await self.check_refresh(refresh_token)
        if not await self.token_store.mark_used(_token_id(payload), self._remaining(payload)):
            await self.revoke_family(self.family_of(payload))
            raise InvalidTokenError(
                "This refresh token was already used; every token of its session is revoked."
            )
        return payload

    # -- ending sessions ----------------------------------------------------------------------
    async def revoke(self, refresh_token: str) -> dict[str, Any]:
        """Revoke the family of `refresh_token` (a logout): its refresh tokens and the access
        tokens issued with them. Returns its payload.

        Raises:
            InvalidTokenError: not a valid refresh token.
        """
        payload = self._verify(refresh_token, "refresh")
        await self.token_store.mark_used(_token_id(payload), self._remaining(payload))
        await self.revoke_family(self.family_of(payload))
        return payload

    async def revoke_access(self, access_token: object) -> bool:
        """Refuse `access_token` from now until it expires; False if it is not a valid one."""
        try:
            payload = self._verify(access_token, "access")
        except InvalidTokenError:
            return False
        await self.token_store.revoke_token(_token_id(payload), self._remaining(payload))
        return True

    async def revoke_family(self, family: str) -> None:
        """Refuse every token of `family` from now on."""
        await self.token_store.revoke_family(family, self.refresh_lifetime.total_seconds())

    async def revoke_all_sessions(self, user_id: Any) -> int:
        """End every session of `user_id`: each token issued to it so far stops working.

        Returns:
            The user's new session version.
        """
        return await self.token_store.bump_session_version(str(user_id))

    async def check_access(self, payload: Mapping[str, Any], token: str | None = None) -> None:
        """Refuse a verified access token that was revoked (logout), whose family was revoked,
        or whose session version is stale (password change, `revoke_all_sessions`).

        Raises:
            InvalidTokenError: one of those.
        """
        jti = payload.get("jti")
        if jti is None:
            jti = _digest(token) if token is not None else None
        family = payload.get(FAMILY_CLAIM)
        revoked, version = await self.token_store.access_state(
            str(jti or ""), str(family) if family else None, str(payload.get("sub"))
        )
        if revoked or self._version_of(payload) < version:
            raise InvalidTokenError("This token has been revoked.")

    # -- helpers ------------------------------------------------------------------------------
    def _verify(self, token: object, token_type: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise InvalidTokenError(f"Invalid or expired {token_type} token.")
        payload = self.token_backend.verify_token(token, token_type=token_type)
        if payload is None or payload.get("sub") is None:
            raise InvalidTokenError(f"Invalid or expired {token_type} token.")
        if "jti" not in payload:
            # A custom token backend may not set `jti`; the token's own digest identifies it.
            payload = {**payload, "jti": _digest(token)}
        return payload

    def _past_family_lifetime(self, auth_time: Any) -> bool:
        if self.family_lifetime is None or not _is_number(auth_time):
            return False
        return bool(time.time() >= auth_time + self.family_lifetime.total_seconds())

    @staticmethod
    def _version_of(payload: Mapping[str, Any]) -> int:
        # A token without the claim (made by `create_access_token`, or before versions
        # existed) counts as version 0: it ends with the first password change.
        version = payload.get(VERSION_CLAIM, 0)
        return version if isinstance(version, int) and not isinstance(version, bool) else 0

    def _remaining(self, payload: Mapping[str, Any]) -> float:
        # Remember a spent token for as long as it could still verify, and no longer; without
        # an `exp` (a custom backend), for as long as any refresh token lives.
        exp = payload.get("exp")
        if _is_number(exp):
            return max(1.0, exp - time.time())
        return self.refresh_lifetime.total_seconds()


async def revoke_all_sessions(user: Any) -> int:
    """End every session of `user` (a user object or its id) on every replica sharing the
    token store: every access and refresh token issued to it so far stops working. A password
    change (`set_password` on a saved user) does the same.

    Returns:
        The user's new session version.

    Example:
        >>> await revoke_all_sessions(user)  # doctest: +SKIP
    """
    from core.context import current_container

    tokens: RefreshTokens = current_container().auth.refresh_tokens()
    return await tokens.revoke_all_sessions(_user_id(user))


def _user_id(user: Any) -> Any:
    for name in ("pk", "id"):
        value = getattr(user, name, None)
        if value is not None and not callable(value):
            return value
    return user


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_id(payload: Mapping[str, Any]) -> str:
    return str(payload["jti"])
