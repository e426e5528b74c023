"""Module-level token helpers: `create_access_token`, `create_refresh_token`, `verify_token`.

They use the token backend of the container `core.context.current_container()` finds: the
current request's, message's or task's; else the running app's; else the process default, built
from the settings and the `configure_auth` declaration (a script, a shell). So the same call
works everywhere, and two apps in one process each sign with their own key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from core.context import current_container
from core.ports.tokens import TokenBackend

__all__ = ("create_access_token", "create_refresh_token", "verify_token")


def _token_backend() -> TokenBackend:
    backend: TokenBackend = current_container().auth.token_backend()
    return backend


def create_access_token(
    user_id: Any,
    extra_claims: Mapping[str, Any] | None = None,
    expires_delta: timedelta | None = None,
) -> str:
    """A signed access token for `user_id` (its `sub` claim).

    Args:
        user_id: the user's id; stored as a string in `sub`.
        extra_claims: more claims to carry (`email`, `is_staff`, `permissions`, `groups`...);
            they cannot override `sub`, `type`, `exp`, `iat` or `jti`.
        expires_delta: lifetime; AUTH_ACCESS_TOKEN_EXPIRE_MINUTES by default.

    Example:
        >>> access = create_access_token(  # doctest: +SKIP
        ...     user_id=user.id, extra_claims={"email": user.email}
        ... )
    """
    claims = {**(extra_claims or {}), "sub": user_id}
    return _token_backend().create_token(claims, token_type="access", expires_delta=expires_delta)


def create_refresh_token(user_id: Any, expires_delta: timedelta | None = None) -> str:
    """A signed refresh token for `user_id`, valid AUTH_REFRESH_TOKEN_EXPIRE_DAYS by default.

    Such a token starts its own family: `AuthViewSet`'s refresh endpoint rotates it like one
    it issued.

    Example:
        >>> refresh = create_refresh_token(user_id=user.id)  # doctest: +SKIP
    """
    return _token_backend().create_token(
        {"sub": user_id}, token_type="refresh", expires_delta=expires_delta
    )


def verify_token(token: str, token_type: str = "access") -> dict[str, Any] | None:
    """The payload of a valid token of `token_type`, or None.

    None for anything that is not a well-signed, unexpired token of that type: malformed,
    tampered, `alg: none`, expired, or an access token where a refresh token is expected.
    Stateless: it does not consult the refresh-token store (see `AuthViewSet`).

    Returns:
        The claims: `sub` (a string), `type`, `exp`, `iat`, `jti` and any extra claims.

    Example:
        >>> payload = verify_token(access, token_type="access")  # doctest: +SKIP
        >>> user_id = payload["sub"]  # doctest: +SKIP
    """
    return _token_backend().verify_token(token, token_type=token_type)
