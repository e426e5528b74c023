"""Registering password hashers, token backends and auth backends, and looking them up.

`register_*` only records a declaration in the process's `Declarations` (see
`core.declarations`), like Celery's task registry; each container looks the configured name up in
the `Declarations` it was given when it builds its provider (`containers/auth.py`). The built-in
names are listed here but built by the container, so importing this module imports no adapter.
"""

from __future__ import annotations

from typing import Final, TypeVar

from core.declarations import Declarations, declarations
from core.errors import ConfigurationError
from core.ports.auth import AuthBackend
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend

#: AUTH_PASSWORD_HASHER values served by the passlib adapter.
BUILTIN_PASSWORD_HASHERS: Final = ("pbkdf2_sha256", "argon2", "bcrypt", "scrypt")
#: AUTH_TOKEN_BACKEND values served by a built-in adapter.
BUILTIN_TOKEN_BACKENDS: Final = ("jwt",)
#: Names of the framework's own auth backends (Bearer token, email and password).
BUILTIN_AUTH_BACKENDS: Final = ("token", "model")

_T = TypeVar("_T")


def register_password_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Make `hasher` selectable by `AUTH_PASSWORD_HASHER=<hasher.name>`.

    The instance is shared by every container that selects it, so keep it stateless.
    Registering a name again replaces the earlier hasher.

    Args:
        hasher: an instance of a `PasswordHasher` subclass with a `name`.

    Returns:
        `hasher`, unchanged.

    Raises:
        ConfigurationError: not a hasher instance, no `name`, or a built-in name.

    Example:
        >>> class CustomHasher(PasswordHasher):
        ...     name = "custom_sha512"
        ...     def hash(self, password): ...
        ...     def verify(self, password, hashed): ...
        >>> register_password_hasher(CustomHasher())  # then AUTH_PASSWORD_HASHER=custom_sha512
    """
    _register(
        declarations().password_hashers,
        hasher,
        PasswordHasher,
        BUILTIN_PASSWORD_HASHERS,
        "password hasher",
    )
    return hasher


def register_token_backend(backend: TokenBackend) -> TokenBackend:
    """Make `backend` selectable by `AUTH_TOKEN_BACKEND=<backend.name>`.

    The instance is shared by every container that selects it. Registering a name again
    replaces the earlier backend.

    Args:
        backend: an instance of a `TokenBackend` subclass with a `name`.

    Returns:
        `backend`, unchanged.

    Raises:
        ConfigurationError: not a token backend instance, no `name`, or a built-in name.

    Example:
        >>> register_token_backend(CustomJWT())  # then AUTH_TOKEN_BACKEND=custom_jwt
    """
    _register(
        declarations().token_backends,
        backend,
        TokenBackend,
        BUILTIN_TOKEN_BACKENDS,
        "token backend",
    )
    return backend


def register_auth_backend(backend: AuthBackend) -> AuthBackend:
    """Add `backend` to the authentication chain, after those registered before it.

    Registering a name again replaces the earlier backend and keeps its place.

    Args:
        backend: an instance of an `AuthBackend` subclass with a `name`.

    Returns:
        `backend`, unchanged.

    Raises:
        ConfigurationError: not an auth backend instance, no `name`, or a built-in name.

    Example:
        >>> register_auth_backend(LDAPBackend())
    """
    # Insertion-ordered: the auth chain asks backends in the order they were registered.
    _register(
        declarations().auth_backends, backend, AuthBackend, BUILTIN_AUTH_BACKENDS, "auth backend"
    )
    return backend


def registered_password_hasher(
    name: str, declared: Declarations | None = None
) -> PasswordHasher | None:
    """The registered hasher called `name`, or None for a built-in name (the container builds
    those).

    Args:
        name: an AUTH_PASSWORD_HASHER value.
        declared: where to look; the process's declarations by default.

    Raises:
        ConfigurationError: `name` is neither built in nor registered; the message lists both.
    """
    registry = (declared or declarations()).password_hashers
    return _lookup(registry, name, BUILTIN_PASSWORD_HASHERS, "AUTH_PASSWORD_HASHER")


def registered_token_backend(
    name: str, declared: Declarations | None = None
) -> TokenBackend | None:
    """The registered token backend called `name`, or None for a built-in name.

    Raises:
        ConfigurationError: `name` is neither built in nor registered; the message lists both.
    """
    registry = (declared or declarations()).token_backends
    return _lookup(registry, name, BUILTIN_TOKEN_BACKENDS, "AUTH_TOKEN_BACKEND")


def registered_auth_backends(declared: Declarations | None = None) -> tuple[AuthBackend, ...]:
    """The registered (custom) auth backends, in chain order."""
    return tuple((declared or declarations()).auth_backends.values())


def password_hasher_names(declared: Declarations | None = None) -> tuple[str, ...]:
    """Every value AUTH_PASSWORD_HASHER accepts now: built-in names, then registered ones."""
    return (*BUILTIN_PASSWORD_HASHERS, *(declared or declarations()).password_hashers)


def token_backend_names(declared: Declarations | None = None) -> tuple[str, ...]:
    """Every value AUTH_TOKEN_BACKEND accepts now: built-in names, then registered ones."""
    return (*BUILTIN_TOKEN_BACKENDS, *(declared or declarations()).token_backends)


def _register(
    registry: dict[str, _T], item: _T, port: type, builtin: tuple[str, ...], kind: str
) -> None:
    # A class passes the structural isinstance check too (its methods are attributes), but the
    # container hands out what was registered, so it must be an instance.
    if isinstance(item, type) or not isinstance(item, port):
        raise ConfigurationError(
            f"register_{kind.replace(' ', '_')}() takes an instance of a {port.__name__} "
            f"subclass, got {item!r}."
        )
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"{type(item).__name__} needs a non-empty `name` to be registered."
        )
    if name in builtin:
        raise ConfigurationError(
            f"{name!r} is a built-in {kind}; give {type(item).__name__} another `name`."
        )
    registry[name] = item


def _lookup(
    registry: dict[str, _T], name: str, builtin: tuple[str, ...], setting: str
) -> _T | None:
    if name in builtin:
        return None
    try:
        return registry[name]
    except KeyError:
        known = ", ".join((*builtin, *registry))
        raise ConfigurationError(f"Unknown {setting} {name!r}; known: {known}.") from None
