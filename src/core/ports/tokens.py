"""Token-backend port: creates and checks the signed, typed tokens (access, refresh) of the API."""

from __future__ import annotations

from abc import abstractmethod
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
    """Remembers which refresh tokens were used and which token families are revoked.

    Refresh tokens rotate: each one is good for one refresh, which returns a new pair in the
    same *family* (the chain of tokens that grew from one login). Presenting a used token again
    means a copy leaked, so the whole family is revoked. The store holds only that state, each
    entry for as long as the token it concerns could still verify (its `ttl`), so it never
    grows past the tokens alive.

    Guarantees every implementation gives:

    - `mark_used` is atomic: of concurrent calls with one `jti`, exactly one returns True, even
      across processes when the store is shared (Redis).
    - An entry disappears after its `ttl` seconds; until then it is visible to every caller.
    - Unreachable storage raises `TokenStoreUnavailableError`; a driver's error never leaks.
    """

    @abstractmethod
    async def mark_used(self, jti: str, ttl: float) -> bool:
        """Record the refresh token `jti` as used for `ttl` seconds.

        Returns:
            True the first time, False when it was already used (a replay).
        """

    @abstractmethod
    async def revoke_family(self, family: str, ttl: float) -> None:
        """Refuse every token of `family` for the next `ttl` seconds (never shortens an earlier
        revocation)."""

    @abstractmethod
    async def is_revoked(self, family: str) -> bool:
        """Whether `family` is revoked."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; called once when the app stops."""
