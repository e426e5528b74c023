"""Errors of the auth layer, each answering a fixed status and a stable `code`."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import NotAuthenticatedError, ValidationFailedError

__all__ = ("InvalidCredentialsError", "InvalidTokenError", "PasswordPolicyError")


class InvalidCredentialsError(NotAuthenticatedError):
    """Login refused (401). One body for an unknown email, a wrong password and an inactive
    user, so a response never tells which one it was."""

    code = "invalid_credentials"
    default_detail = "Invalid credentials."


class InvalidTokenError(NotAuthenticatedError):
    """A malformed, expired, tampered, revoked or wrong-type token, or one whose user is gone
    or inactive (401 with `WWW-Authenticate: Bearer`)."""

    code = "invalid_token"
    default_detail = "Invalid or expired token."


class PasswordPolicyError(ValidationFailedError):
    """A new password breaks the password policy (400); `reasons` lists every broken rule.

    The body is `{"detail": {"password": [reasons...]}, "code": "invalid_password"}`.
    """

    code = "invalid_password"

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__({"password": self.reasons})
