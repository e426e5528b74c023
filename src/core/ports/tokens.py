"""Token-backend port: creates and checks the signed, typed tokens (access, refresh) of the API."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TokenBackend(Protocol):
    """Creates and checks signed, typed tokens (`access`, `refresh`). Subclass it to add your
    own (see `register_token_backend`).

    Guarantees every implementation gives:

    - `create_token` puts `token_type` in the payload's `type` claim and an expiry in `exp`.
    - `decode_token` returns the payload of a well-signed, unexpired token, or None.
    - `verify_token` does the same and also requires `payload["type"] == token_type`, so a
      refresh token is never accepted where an access token is expected.
    - Neither `decode_token` nor `verify_token` raises for a bad token: callers only ever see a
      payload or None, and turn None into a 401.

    `name` is the value `AUTH_TOKEN_BACKEND` selects the backend by.

    Example:
        >>> class CustomJWT(TokenBackend):
        ...     name = "custom_jwt"
        ...     def create_token(self, payload, token_type="access", expires_delta=None): ...
        ...     def decode_token(self, token): ...
        ...     def verify_token(self, token, token_type="access"): ...
    """

    # A plain `str` rather than ClassVar, so both class and instance attributes fit under mypy.
    name: str

    @abstractmethod
    def create_token(
        self,
        payload: dict[str, Any],
        token_type: str = "access",
        expires_delta: timedelta | None = None,
    ) -> str:
        """Sign `payload` as a token of `token_type`.

        Args:
            payload: the claims to carry, usually `sub` (the user id) and any extra claims.
            token_type: stored in the `type` claim; `verify_token` checks it.
            expires_delta: lifetime; None means the backend's default for `token_type`.

        Returns:
            The encoded token.
        """

    @abstractmethod
    def decode_token(self, token: str) -> dict[str, Any] | None:
        """The payload of a valid (well-signed, unexpired) token, or None."""

    @abstractmethod
    def verify_token(self, token: str, token_type: str = "access") -> dict[str, Any] | None:
        """The payload of a valid token whose `type` claim is `token_type`, or None."""


@runtime_checkable
class TokenStore(Protocol):
    """Remembers which tokens were spent or revoked, and each user's session version.

    Refresh tokens rotate: each one is good for one refresh, which returns a new pair in the
    same *family* (the chain of tokens that grew from one login). Presenting a spent token again
    means a copy leaked, so the whole family is revoked; except within a short grace window,
    where a concurrent refresh with the same token gets the pair the first one got (`spend`).
    A logout revokes the family and the access token (`revoke_token`); a password change bumps
    the user's *session version*, and tokens carrying an older one stop working.

    The store holds only that state, each entry for as long as the token it concerns could
    still verify (its `ttl`), so it never grows past the tokens alive; session versions are
    kept for good (one small entry per user whose sessions were ended).

    Guarantees every implementation gives:

    - `mark_used` and `spend` are atomic: of concurrent calls with one `jti`, exactly one is
      first, even across processes when the store is shared (Redis, a database).
    - An entry disappears after its `ttl` seconds; until then it is visible to every caller.
    - `bump_session_version` is atomic: concurrent bumps each count.
    - Unreachable storage raises `TokenStoreUnavailableError`; a driver's error never leaks.
    """

    @abstractmethod
    async def mark_used(self, jti: str, ttl: float) -> bool:
        """Record the refresh token `jti` as used for `ttl` seconds.

        Returns:
            True the first time, False when it was already used (a replay).
        """

    @abstractmethod
    async def spend(
        self, jti: str, ttl: float, successor: Mapping[str, str], grace: float
    ) -> Mapping[str, str] | None:
        """Record the refresh token `jti` as used for `ttl` seconds, and `successor` (the pair
        its refresh issued) as its successor for `grace` seconds.

        Returns:
            `successor` the first time; the first caller's successor when `jti` was spent less
            than `grace` seconds ago (a concurrent refresh); None when it was spent earlier, or
            used by `mark_used` (a replay).
        """

    @abstractmethod
    async def revoke_family(self, family: str, ttl: float) -> None:
        """Refuse every token of `family` for the next `ttl` seconds (never shortens an earlier
        revocation)."""

    @abstractmethod
    async def is_revoked(self, family: str) -> bool:
        """Whether `family` is revoked."""

    @abstractmethod
    async def revoke_token(self, jti: str, ttl: float) -> None:
        """Refuse the token `jti` (an access token at logout) for the next `ttl` seconds."""

    @abstractmethod
    async def access_state(self, jti: str, family: str | None, subject: str) -> tuple[bool, int]:
        """What a request needs to know about an access token, in one round trip.

        Returns:
            Whether the token `jti` or its `family` is revoked, and the session version of
            `subject` (see `session_version`).
        """

    @abstractmethod
    async def session_version(self, subject: str) -> int:
        """The session version of user `subject`: 0 until `bump_session_version` is called."""

    @abstractmethod
    async def bump_session_version(self, subject: str) -> int:
        """Add one to the session version of `subject` (ending every session issued before);
        returns the new version."""

    async def check(self) -> None:
        """Readiness: return when the token store answers, raise when not.

        GET /health/ready and `core status` run it, each within HEALTH_CHECK_TIMEOUT seconds.
        Cheap and side-effect free. An adapter without `check` is reported as "unchecked",
        not as failing.
        """
        ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections; called once when the app stops."""
