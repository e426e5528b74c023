"""The password policy and its validators."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.auth import (
    MinimumLengthValidator,
    NumericPasswordValidator,
    PasswordPolicy,
    PasswordPolicyError,
    UserAttributeValidator,
)
from core.errors import ConfigurationError


def test_the_default_policy_wants_8_to_128_characters() -> None:
    policy = PasswordPolicy()

    assert policy.errors("a" * 8) == []
    assert policy.errors("a" * 128) == []
    assert policy.errors("a" * 7) == [
        "This password is too short: it must contain at least 8 characters."
    ]
    assert policy.errors("a" * 129) == [
        "This password is too long: it must contain at most 128 characters."
    ]
    assert policy.errors(None) == ["The password must be a string."]


def test_every_reason_is_reported_at_once() -> None:
    ann = SimpleNamespace(email="annabel@example.com")
    policy = PasswordPolicy(
        12, 64, [NumericPasswordValidator(), UserAttributeValidator(), lambda p, u: None]
    )

    with pytest.raises(PasswordPolicyError) as caught:
        policy.validate("1234", ann)

    assert caught.value.reasons == [
        "This password is too short: it must contain at least 12 characters.",
        "This password is entirely numeric.",
    ]
    assert caught.value.detail == {"password": caught.value.reasons}
    assert policy.errors("my name is annabel!", ann) == [
        "This password is too similar to the email."
    ]
    assert policy.errors("my name is annabel!", None) == []


def test_validators_are_plain_callables() -> None:
    assert MinimumLengthValidator(3)("ab") is not None
    assert MinimumLengthValidator(3)("abc") is None
    assert NumericPasswordValidator()("12a") is None
    assert UserAttributeValidator(("name",))("xx-bo-xx", SimpleNamespace(name="bo")) is None


@pytest.mark.parametrize(("low", "high"), [(0, 10), (10, 5), (8, 5000)])
def test_impossible_lengths_are_a_configuration_error(low: int, high: int) -> None:
    with pytest.raises(ConfigurationError):
        PasswordPolicy(low, high)
