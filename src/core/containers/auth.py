"""AuthContainer: password hasher and token backend, chosen by AUTH_PASSWORD_HASHER and
AUTH_TOKEN_BACKEND."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import containers, providers

from core.auth.authentication import RequestAuthenticator
from core.auth.registry import registered_password_hasher, registered_token_backend
from core.errors import ConfigurationError
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend


def _password_hasher(name: str) -> PasswordHasher:
    # Registered names come from user code (`register_password_hasher`), so this is a registry
    # lookup rather than a Selector, which only knows the branches it declares.
    hasher = registered_password_hasher(name)
    if hasher is not None:
        return hasher
    # Imported here so `import core` never imports passlib.
    from core.adapters.passlib.hashers import PasslibPasswordHasher

    return PasslibPasswordHasher(name)


def _token_backend(
    name: str,
    *,
    secret_key: str,
    algorithm: str,
    access_token_expire_minutes: int,
    refresh_token_expire_days: int,
    private_key_file: str | None,
    public_key_file: str | None,
    issuer: str | None,
    audience: str | None,
    leeway_seconds: float,
) -> TokenBackend:
    backend = registered_token_backend(name)
    if backend is not None:
        return backend
    from core.adapters.jwt.tokens import JwtTokenBackend

    return JwtTokenBackend(
        secret_key,
        algorithm=algorithm,
        access_token_expire_minutes=access_token_expire_minutes,
        refresh_token_expire_days=refresh_token_expire_days,
        private_key=_read_key(private_key_file, "AUTH_PRIVATE_KEY_FILE"),
        public_key=_read_key(public_key_file, "AUTH_PUBLIC_KEY_FILE"),
        issuer=issuer,
        audience=audience,
        leeway=leeway_seconds,
    )


def _read_key(path: str | None, setting: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{setting}={path!r} cannot be read: {exc.strerror}.") from exc


class AuthContainer(containers.DeclarativeContainer):
    """Password hasher and token backend of one app.

    Both are Singletons: built on first use from the settings, once per container, so two apps
    in one process never share a hasher or a key. Override them before first use:
    `with app.container.auth.password_hasher.override(FakeHasher()): ...`.
    """

    config = providers.Configuration(strict=True)

    password_hasher = providers.Singleton(_password_hasher, name=config.auth_password_hasher)

    token_backend = providers.Singleton(
        _token_backend,
        name=config.auth_token_backend,
        secret_key=config.secret_key,
        algorithm=config.auth_algorithm,
        access_token_expire_minutes=config.auth_access_token_expire_minutes,
        refresh_token_expire_days=config.auth_refresh_token_expire_days,
        private_key_file=config.auth_private_key_file,
        public_key_file=config.auth_public_key_file,
        issuer=config.auth_issuer,
        audience=config.auth_audience,
        leeway_seconds=config.auth_leeway_seconds,
    )

    authenticator = providers.Singleton(RequestAuthenticator, token_backend=token_backend)
