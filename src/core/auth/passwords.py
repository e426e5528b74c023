"""The password policy: minimum and maximum length plus pluggable validators.

A validator is any callable `validator(password, user) -> str | None` returning the reason it
refuses the password, or None to accept it; `user` is the user the password is for (None when
unknown). Declare extra ones with `configure_auth(password_validators=[...])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.auth.errors import PasswordPolicyError
from core.errors import ConfigurationError

__all__ = (
    "MinimumLengthValidator",
    "NumericPasswordValidator",
    "PasswordPolicy",
    "UserAttributeValidator",
)

#: passlib refuses longer passwords; no policy may allow more.
HARD_MAX_LENGTH = 4096


class MinimumLengthValidator:
    """Refuses passwords shorter than `min_length` characters.

    Example:
        >>> MinimumLengthValidator(8)("short", None)
        'This password is too short: it must contain at least 8 characters.'
    """

    def __init__(self, min_length: int = 8) -> None:
        self.min_length = min_length

    def __call__(self, password: str, user: Any = None) -> str | None:
        if len(password) < self.min_length:
            return (
                f"This password is too short: it must contain at least {self.min_length} "
                "characters."
            )
        return None


class NumericPasswordValidator:
    """Refuses passwords made only of digits.

    Example:
        >>> NumericPasswordValidator()("12345678", None)
        'This password is entirely numeric.'
    """

    def __call__(self, password: str, user: Any = None) -> str | None:
        return "This password is entirely numeric." if password.isdigit() else None


class UserAttributeValidator:
    """Refuses a password that contains the user's email name part (or another attribute).

    Example:
        >>> from types import SimpleNamespace
        >>> UserAttributeValidator()("ann.lee-2024", SimpleNamespace(email="ann.lee@x.io"))
        'This password is too similar to the email.'
    """

    def __init__(self, attributes: Sequence[str] = ("email",)) -> None:
        self.attributes = tuple(attributes)

    def __call__(self, password: str, user: Any = None) -> str | None:
        if user is None:
            return None
        lowered = password.lower()
        for attribute in self.attributes:
            value = getattr(user, attribute, None)
            if not isinstance(value, str) or not value:
                continue
            # For an email, the part people reuse is the name before the @.
            needle = value.partition("@")[0].lower() if attribute == "email" else value.lower()
            if len(needle) >= 3 and needle in lowered:
                return f"This password is too similar to the {attribute.replace('_', ' ')}."
        return None


class PasswordPolicy:
    """Checks a new password against every rule and reports all the reasons at once.

    The maximum length guards the hasher: hashing cost grows with the input for some schemes,
    and passlib refuses more than 4096 bytes anyway.

    Args:
        min_length: fewest characters allowed (AUTH_PASSWORD_MIN_LENGTH, 8).
        max_length: most characters allowed (AUTH_PASSWORD_MAX_LENGTH, 128).
        validators: extra checks, run after the length checks.

    Raises:
        ConfigurationError: lengths out of order or above 4096.

    Example:
        >>> policy = PasswordPolicy(8, 128, [NumericPasswordValidator()])
        >>> policy.errors("1234")[1]
        'This password is entirely numeric.'
        >>> policy.errors("correct horse battery staple")
        []
    """

    def __init__(
        self, min_length: int = 8, max_length: int = 128, validators: Sequence[Any] = ()
    ) -> None:
        if not 0 < min_length <= max_length <= HARD_MAX_LENGTH:
            raise ConfigurationError(
                "The password policy needs 0 < AUTH_PASSWORD_MIN_LENGTH <= "
                f"AUTH_PASSWORD_MAX_LENGTH <= {HARD_MAX_LENGTH}; got {min_length} and "
                f"{max_length}."
            )
        self.min_length = min_length
        self.max_length = max_length
        self.validators = (MinimumLengthValidator(min_length), *validators)

    def errors(self, password: object, user: Any = None) -> list[str]:
        """Every reason `password` is refused; empty when it is accepted."""
        if not isinstance(password, str):
            return ["The password must be a string."]
        if len(password) > self.max_length:
            # Checked first and alone: the other validators need not read a huge input.
            return [
                f"This password is too long: it must contain at most {self.max_length} characters."
            ]
        reasons = []
        for validator in self.validators:
            reason = validator(password, user)
            if reason:
                reasons.append(str(reason))
        return reasons

    def validate(self, password: object, user: Any = None) -> None:
        """Raise PasswordPolicyError (400) listing every reason `password` is refused."""
        reasons = self.errors(password, user)
        if reasons:
            raise PasswordPolicyError(reasons)
