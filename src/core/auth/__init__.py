"""Authentication: `configure_auth`, token helpers, the user model base, auth backends, the
registries that make hashers and backends selectable, and the ready-made `AuthViewSet`.

The model-bearing names (`AbstractUser`, `Group`, `Permission`, `AuthViewSet` and the grant
helpers) load on first access, so `import core` (which imports this package) defines no auth
tables: a service without users keeps its schema free of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.auth.authentication import Authenticated, RequestAuthenticator, TokenUser, authenticate
from core.auth.backends import ModelAuthBackend, TokenAuthBackend
from core.auth.config import AuthDeclaration, configure_auth
from core.auth.errors import InvalidCredentialsError, InvalidTokenError, PasswordPolicyError
from core.auth.passwords import (
    MinimumLengthValidator,
    NumericPasswordValidator,
    PasswordPolicy,
    UserAttributeValidator,
)
from core.auth.refresh import revoke_all_sessions
from core.auth.registry import (
    register_auth_backend,
    register_password_hasher,
    register_token_backend,
)
from core.auth.tokens import create_access_token, create_refresh_token, verify_token
from core.ports.auth import AuthBackend
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend, TokenStore

if TYPE_CHECKING:
    from core.auth.grants import (
        add_to_group,
        grant_permission,
        remove_from_group,
        revoke_permission,
    )
    from core.auth.groups import Group, Permission
    from core.auth.models import AbstractUser
    from core.auth.views import AuthViewSet

__all__ = (
    "AbstractUser",
    "AuthBackend",
    "AuthDeclaration",
    "AuthViewSet",
    "Authenticated",
    "Group",
    "InvalidCredentialsError",
    "InvalidTokenError",
    "MinimumLengthValidator",
    "ModelAuthBackend",
    "NumericPasswordValidator",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordPolicyError",
    "Permission",
    "RequestAuthenticator",
    "TokenAuthBackend",
    "TokenBackend",
    "TokenStore",
    "TokenUser",
    "UserAttributeValidator",
    "add_to_group",
    "authenticate",
    "configure_auth",
    "create_access_token",
    "create_refresh_token",
    "grant_permission",
    "register_auth_backend",
    "register_password_hasher",
    "register_token_backend",
    "remove_from_group",
    "revoke_all_sessions",
    "revoke_permission",
    "verify_token",
)

_LAZY = {
    "AbstractUser": "core.auth.models",
    "Group": "core.auth.groups",
    "Permission": "core.auth.groups",
    "add_to_group": "core.auth.grants",
    "grant_permission": "core.auth.grants",
    "remove_from_group": "core.auth.grants",
    "revoke_permission": "core.auth.grants",
    "AuthViewSet": "core.auth.views",
}


def __getattr__(name: str) -> Any:
    # PEP 562: import the models (and so define their tables) only when a project asks.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
