"""`configure_auth`: the process-wide auth declaration every container's auth providers read.

`configure_auth(...)` only records values; every container reads them when it builds its auth
providers. Precedence, for each value: an explicit `configure_auth` argument, then the setting
(environment, then `.env`), then the framework default. Arguments left out (None) keep the
setting, so `configure_auth(user_model=User)` changes nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from core.declarations import AuthDeclaration, Declarations, PasswordValidator, declarations
from core.errors import ConfigurationError

__all__ = ("AuthDeclaration", "auth_declaration", "configure_auth", "declared_user_model")


def configure_auth(
    *,
    secret_key: str | None = None,
    access_token_expire_minutes: int | None = None,
    refresh_token_expire_days: int | None = None,
    password_hasher: str | None = None,
    user_model: type[Any] | None = None,
    token_backend: str | None = None,
    algorithm: str | None = None,
    password_min_length: int | None = None,
    password_max_length: int | None = None,
    password_validators: Sequence[PasswordValidator] | None = None,
) -> AuthDeclaration:
    """Declare the project's authentication, once, at import time (before `CoreApp(...)`).

    Every argument overrides its setting (`SECRET_KEY`, `AUTH_ACCESS_TOKEN_EXPIRE_MINUTES`,
    `AUTH_REFRESH_TOKEN_EXPIRE_DAYS`, `AUTH_PASSWORD_HASHER`, `AUTH_TOKEN_BACKEND`,
    `AUTH_ALGORITHM`, `AUTH_PASSWORD_MIN_LENGTH`, `AUTH_PASSWORD_MAX_LENGTH`); arguments left out
    keep theirs. A later call updates only the arguments it passes. The declaration is
    process-wide, like `register_*`; each app's container builds its own hasher, token backend
    and authenticator from it, on first use, so declare before the first request.

    Args:
        secret_key: the HMAC key that signs tokens.
        access_token_expire_minutes: lifetime of access tokens.
        refresh_token_expire_days: lifetime of refresh tokens.
        password_hasher: `pbkdf2_sha256`, `argon2`, `bcrypt`, `scrypt` or a registered name.
        user_model: the project's user model (usually an `AbstractUser` subclass). With one,
            a valid access token loads the user from the database; without, requests carry a
            stateless `TokenUser` built from the token's claims.
        token_backend: `jwt` or a registered token backend's name.
        algorithm: the JWT signing algorithm (HS256 by default).
        password_min_length: the password policy's minimum length (8 by default).
        password_max_length: the password policy's maximum length (128 by default).
        password_validators: extra policy checks, each `validator(password, user)` returning a
            reason to refuse or None (see `core.auth.passwords`).

    Returns:
        The whole declaration after this call.

    Raises:
        ConfigurationError: a value of the wrong kind (checked here, so the mistake points at
            the `configure_auth` line rather than at the first request).

    Example:
        >>> configure_auth(  # doctest: +SKIP
        ...     secret_key="your-secret-key",
        ...     access_token_expire_minutes=30,
        ...     refresh_token_expire_days=7,
        ...     password_hasher="pbkdf2_sha256",
        ...     user_model=User,
        ... )
    """
    changes: dict[str, Any] = {}
    for name, value in (
        ("secret_key", secret_key),
        ("password_hasher", password_hasher),
        ("token_backend", token_backend),
        ("algorithm", algorithm),
    ):
        if value is not None:
            changes[name] = _non_empty_str(name, value)
    for name, number in (
        ("access_token_expire_minutes", access_token_expire_minutes),
        ("refresh_token_expire_days", refresh_token_expire_days),
        ("password_min_length", password_min_length),
        ("password_max_length", password_max_length),
    ):
        if number is not None:
            changes[name] = _positive_int(name, number)
    if user_model is not None:
        changes["user_model"] = _mapped_model(user_model)
    if password_validators is not None:
        validators = tuple(password_validators)
        for validator in validators:
            if not callable(validator):
                raise ConfigurationError(
                    f"configure_auth(password_validators=...) takes callables, got {validator!r}."
                )
        changes["password_validators"] = validators
    declared = declarations()
    with declared.lock:
        declared.auth = dataclasses.replace(declared.auth, **changes)
        return declared.auth


def auth_declaration(declared: Declarations | None = None) -> AuthDeclaration:
    """What `configure_auth` recorded in `declared` (the process's by default); immutable."""
    return (declared if declared is not None else declarations()).auth


def declared_user_model(declared: Declarations | None = None) -> type[Any] | None:
    """The user model `configure_auth(user_model=...)` declared, or None."""
    return auth_declaration(declared).user_model


def _non_empty_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"configure_auth({name}=...) must be a non-empty string.")
    return value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"configure_auth({name}=...) must be a positive integer.")
    return value


def _mapped_model(model: object) -> type[Any]:
    from core.models import Model

    if not (isinstance(model, type) and issubclass(model, Model) and hasattr(model, "__table__")):
        raise ConfigurationError(
            f"configure_auth(user_model=...) takes a concrete Model class, got {model!r}."
        )
    return model
