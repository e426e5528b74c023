"""Strict JSON parsing and field errors without secrets, without a server."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError

from core.views.body import MalformedBodyError, parse_json
from core.views.errors import InvalidBodyError, field_errors


@pytest.mark.parametrize(
    "body",
    [
        b'"\xff"',
        b'"\\ud800"',
        b'"\\udc00"',
        b"NaN",
        b"[Infinity]",
        b'{"a": -Infinity}',
        b"1e400",
        b"-1e309",
        b"9223372036854775808",
        b"[" * 33 + b"]" * 33,
        b'{"a": ' * 40 + b"1" + b"}" * 40,
        b"[" * 1_000_000,
        b"",
        b"{,}",
    ],
)
def test_parse_json_refuses_what_cannot_be_held(body: bytes) -> None:
    with pytest.raises(MalformedBodyError) as caught:
        parse_json(body, max_depth=32)
    assert caught.value.status_code == 400 and caught.value.code == "parse_error"
    assert len(str(caught.value.detail)) < 120  # a reason, never the body


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (b"9223372036854775807", 2**63 - 1),
        (b"1.5e308", 1.5e308),
        (b"[" * 32 + b"]" * 32, parse_json(b"[" * 32 + b"]" * 32, max_depth=32)),
    ],
)
def test_parse_json_accepts_what_fits(body: bytes, value: object) -> None:
    assert parse_json(body, max_depth=32) == value


class Login(BaseModel):
    email: Annotated[str, Field(max_length=10)]
    password: Annotated[str, Field(max_length=5)]
    pin: SecretStr
    note: Annotated[str, Field(max_length=5, json_schema_extra={"write_only": True})] = ""


def test_field_errors_echo_excerpts_and_no_secret() -> None:
    with pytest.raises(ValidationError) as caught:
        Login.model_validate(
            {"email": "e" * 100, "password": "hunter2hunter2", "pin": 12345, "note": "private!"}
        )
    errors = InvalidBodyError.from_validation(caught.value, Login).detail
    by_field = {e["loc"][-1]: e for e in errors}
    assert set(by_field) == {"email", "password", "pin", "note"}
    assert by_field["email"]["input"] == "e" * 32 + "…"
    for secret in ("password", "pin", "note"):
        assert "input" not in by_field[secret] and "ctx" not in by_field[secret]
    assert "hunter2" not in str(errors) and "12345" not in str(errors)
    assert "private" not in str(errors)


def test_objects_and_arrays_are_never_echoed() -> None:
    errors = field_errors([{"loc": ("x",), "msg": "bad", "type": "t", "input": {"a": "b"}}])
    assert errors == [{"loc": ["x"], "msg": "bad", "type": "t"}]
