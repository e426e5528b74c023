"""AuthContainer: hasher, token backend, token store, password policy, authenticator and
refresh-token rotation, from the AUTH_* settings and the `Declarations` the root gives it
(`configure_auth`, `register_*`).

Every builder reads the declarations when it runs (on first use), and a declared value wins over
its setting: `configure_auth(secret_key=...)` over SECRET_KEY, and so on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from core.adapters.memory.tokens import InMemoryTokenStore
from core.auth.authentication import RequestAuthenticator
from core.auth.hashing import bounded_queue
from core.auth.passwords import PasswordPolicy
from core.auth.refresh import RefreshTokens
from core.auth.registry import (
    registered_auth_backends,
    registered_password_hasher,
    registered_token_backend,
)
from core.declarations import Declarations
from core.errors import ConfigurationError, MissingDependencyError
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend, TokenStore


def _password_hasher(name: str, declarations: Declarations) -> PasswordHasher:
    name = declarations.auth.value("password_hasher", name)
    # Registered names come from user code (`register_password_hasher`), so this is a registry
    # lookup rather than a Selector, which only knows the branches it declares.
    hasher = registered_password_hasher(name, declarations)
    if hasher is not None:
        return hasher
    # Imported here so `import core` never imports passlib.
    from core.adapters.passlib.hashers import PasslibPasswordHasher

    return PasslibPasswordHasher(name)


def _token_backend(
    name: str,
    *,
    declarations: Declarations,
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
    declared = declarations.auth
    backend = registered_token_backend(declared.value("token_backend", name), declarations)
    if backend is not None:
        return backend
    from core.adapters.jwt.tokens import JwtTokenBackend

    return JwtTokenBackend(
        declared.value("secret_key", secret_key),
        algorithm=declared.value("algorithm", algorithm),
        access_token_expire_minutes=declared.value(
            "access_token_expire_minutes", access_token_expire_minutes
        ),
        refresh_token_expire_days=declared.value(
            "refresh_token_expire_days", refresh_token_expire_days
        ),
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


def _password_policy(
    min_length: int, max_length: int, declarations: Declarations
) -> PasswordPolicy:
    declared = declarations.auth
    return PasswordPolicy(
        declared.value("password_min_length", min_length),
        declared.value("password_max_length", max_length),
        declared.password_validators or (),
    )


def _redis_token_store(url: str | None, fallback_url: str, prefix: str) -> TokenStore:
    # Imported here so `import core` works without the redis extra until someone selects it.
    try:
        from core.adapters.redis.tokens import RedisTokenStore
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "redis":
            raise MissingDependencyError("redis", "redis") from exc
        raise
    return RedisTokenStore(url or fallback_url, prefix=prefix)


def _declared_user_model(declarations: Declarations) -> type[Any] | None:
    return declarations.auth.user_model


def _database_token_store(database: Any) -> TokenStore:
    engine = getattr(database, "engine", None)
    if engine is None:
        raise ConfigurationError(
            "AUTH_TOKEN_STORE=database needs a SQL DATABASE_URL (PostgreSQL or SQLite)."
        )
    from core.adapters.sqlalchemy.tokens import SqlAlchemyTokenStore

    return SqlAlchemyTokenStore(engine)


async def _token_store_lifecycle(
    store: TokenStore, password_hasher: PasswordHasher, token_backend: TokenBackend
) -> AsyncIterator[TokenStore]:
    # Built when the app starts (the hasher and token backend too, though only the store
    # needs closing): a misconfiguration (RS256 without keys, an unknown hasher or token
    # backend) stops the start-up instead of failing the first request.
    yield store
    await store.close()


def _refresh_tokens(
    token_backend: TokenBackend,
    token_store: TokenStore,
    refresh_token_expire_days: int,
    family_lifetime_days: float,
    grace_seconds: float,
    declarations: Declarations,
) -> RefreshTokens:
    days = declarations.auth.value("refresh_token_expire_days", refresh_token_expire_days)
    return RefreshTokens(
        token_backend,
        token_store,
        timedelta(days=days),
        family_lifetime=timedelta(days=family_lifetime_days),
        grace=timedelta(seconds=grace_seconds),
    )


class AuthContainer(containers.DeclarativeContainer):
    """The auth collaborators of one app.

    All but `user_model` are Singletons: built on first use, once per container, so two apps
    in one process never share a hasher, a key or a token store. Override them before first
    use: `with app.container.auth.password_hasher.override(FakeHasher()): ...`.
    `user_model` and `auth_backends` are read from the declarations at every call, so
    `app.container.auth.user_model.override(providers.Object(User))` works at any time.
    """

    config = providers.Configuration(strict=True)
    # The app's database, for AUTH_TOKEN_STORE=database (given by the root).
    database: providers.Dependency[Any] = providers.Dependency()
    declarations = providers.Dependency(instance_of=Declarations)  # given by the root

    user_model = providers.Callable(_declared_user_model, declarations)

    auth_backends = providers.Callable(registered_auth_backends, declarations)

    password_hasher = providers.Singleton(
        _password_hasher, name=config.auth_password_hasher, declarations=declarations
    )

    password_policy = providers.Singleton(
        _password_policy,
        min_length=config.auth_password_min_length,
        max_length=config.auth_password_max_length,
        declarations=declarations,
    )

    token_backend = providers.Singleton(
        _token_backend,
        name=config.auth_token_backend,
        declarations=declarations,
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

    token_store = providers.Selector(
        config.auth_token_store,
        memory=providers.Singleton(InMemoryTokenStore),
        redis=providers.Singleton(
            _redis_token_store,
            url=config.auth_token_store_url,
            fallback_url=config.redis_url,
            prefix=config.auth_token_store_prefix,
        ),
        database=providers.Singleton(_database_token_store, database),
    )

    token_store_lifecycle = providers.Resource(
        _token_store_lifecycle, token_store, password_hasher, token_backend
    )

    # The hashing pool is process-wide; while this app runs, its queue holds at most this many.
    hashing_queue = providers.Resource(bounded_queue, size=config.auth_hashing_queue_size)

    refresh_tokens = providers.Singleton(
        _refresh_tokens,
        token_backend=token_backend,
        token_store=token_store,
        refresh_token_expire_days=config.auth_refresh_token_expire_days,
        family_lifetime_days=config.auth_refresh_family_lifetime_days,
        grace_seconds=config.auth_refresh_grace_seconds,
        declarations=declarations,
    )

    # The authenticator gets the user-model *provider* (`.provider`), not its value, so it asks
    # per request and a later override or declaration is seen.
    authenticator = providers.Singleton(
        RequestAuthenticator,
        token_backend=token_backend,
        user_model=user_model.provider,
        custom_backends=auth_backends.provider,
        sessions=refresh_tokens,
    )
