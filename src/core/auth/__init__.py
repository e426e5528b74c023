"""Authentication: the ports users subclass and the registries that make them selectable."""

from core.auth.registry import (
    register_auth_backend,
    register_password_hasher,
    register_token_backend,
)
from core.ports.auth import AuthBackend
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend

__all__ = (
    "AuthBackend",
    "PasswordHasher",
    "TokenBackend",
    "register_auth_backend",
    "register_password_hasher",
    "register_token_backend",
)
