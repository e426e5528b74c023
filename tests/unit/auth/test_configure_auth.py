"""configure_auth: a process-wide declaration, its precedence over settings, what each
container binds, and where the module-level token helpers find their token backend."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

import core
import core.context
from core import CoreApp
from core.auth import (
    NumericPasswordValidator,
    configure_auth,
    create_access_token,
    create_refresh_token,
    register_password_hasher,
    verify_token,
)
from core.auth.config import auth_declaration
from core.containers import build_container
from core.context import use_container
from core.errors import ConfigurationError
from core.settings import Settings
from core.testing import isolated_declarations, test_settings
from tests.unit.auth.models import User
from tests.unit.auth.support import FastHasher

KEY_A = "settings-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "declared-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_declarations():
        yield


def _decode(token: str, key: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"])
    return claims


def test_a_declared_value_overrides_its_setting() -> None:
    configure_auth(secret_key=KEY_B, access_token_expire_minutes=5)
    app = CoreApp(settings=test_settings(secret_key=KEY_A, auth_access_token_expire_minutes=30))

    with use_container(app.container):
        token = create_access_token(user_id=1)
    claims = _decode(token, KEY_B)

    assert claims["exp"] - claims["iat"] == 5 * 60
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(token, KEY_A)


def test_values_not_declared_keep_their_setting() -> None:
    configure_auth(user_model=User)
    app = CoreApp(settings=test_settings(secret_key=KEY_A, auth_refresh_token_expire_days=2))

    with use_container(app.container):
        claims = _decode(create_refresh_token(user_id=1), KEY_A)

    assert claims["exp"] - claims["iat"] == 2 * 86400
    assert app.container.auth.user_model() is User


def test_later_calls_update_only_what_they_pass() -> None:
    configure_auth(secret_key=KEY_B, user_model=User)
    configure_auth(access_token_expire_minutes=10)

    declared = auth_declaration()
    assert (declared.secret_key, declared.user_model, declared.access_token_expire_minutes) == (
        KEY_B,
        User,
        10,
    )


def test_the_declared_hasher_wins_over_auth_password_hasher() -> None:
    fast = FastHasher()
    register_password_hasher(fast)
    configure_auth(password_hasher="fast_sha256")

    container = build_container(test_settings(auth_password_hasher="argon2"))

    assert container.auth.password_hasher() is fast


def test_an_app_given_a_ready_container_still_gets_the_declared_user_model() -> None:
    configure_auth(user_model=User)

    app = CoreApp(container=build_container(test_settings()))

    assert app.container.auth.authenticator().user_model is User


def test_two_apps_sign_with_their_own_keys() -> None:
    first = CoreApp(settings=test_settings(secret_key=KEY_A))
    second = CoreApp(settings=test_settings(secret_key=KEY_B))

    with use_container(first.container):
        token = create_access_token(user_id=7)
        assert verify_token(token)["sub"] == "7"  # type: ignore[index]
    with use_container(second.container):
        assert verify_token(token) is None
    assert first.container.auth.token_store() is not second.container.auth.token_store()


async def test_outside_any_app_the_helpers_use_the_process_default_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("SECRET_KEY", KEY_A)

    from_settings = create_access_token(user_id=1, extra_claims={"role": "script"})
    assert _decode(from_settings, KEY_A)["role"] == "script"
    assert verify_token(from_settings)["sub"] == "1"  # type: ignore[index]
    assert core.context.has_default(), "the helpers built the process default, not their own"

    # A declaration made after the default was built applies to the next one.
    configure_auth(secret_key=KEY_B)
    await core.shutdown()
    declared = create_access_token(user_id=1)
    assert _decode(declared, KEY_B)["sub"] == "1"
    assert verify_token(from_settings) is None


def test_verify_token_payload_and_types() -> None:
    app = CoreApp(settings=test_settings(secret_key=KEY_A))
    with use_container(app.container):
        access = create_access_token(user_id=42, extra_claims={"email": "a@x.io", "sub": "99"})
        refresh = create_refresh_token(user_id=42)
        payload = verify_token(access, token_type="access")
        assert payload is not None
        assert {"sub", "type", "exp", "iat", "jti", "email"} <= set(payload)
        # extra_claims cannot replace the subject
        assert (payload["sub"], payload["type"]) == ("42", "access")
        assert verify_token(access, token_type="refresh") is None
        assert verify_token(refresh, token_type="refresh")["type"] == "refresh"  # type: ignore[index]
        assert verify_token(refresh) is None
        assert verify_token("garbage") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret_key": ""},
        {"secret_key": 123},
        {"access_token_expire_minutes": 0},
        {"refresh_token_expire_days": -1},
        {"refresh_token_expire_days": True},
        {"user_model": object},
        {"user_model": "User"},
        {"password_validators": ["not callable"]},
        {"password_hasher": ""},
    ],
)
def test_configure_auth_refuses_bad_values_at_the_call(kwargs: dict[str, Any]) -> None:
    before = auth_declaration()
    with pytest.raises(ConfigurationError, match=r"configure_auth\("):
        configure_auth(**kwargs)
    assert auth_declaration() is before


def test_the_production_check_reads_the_key_that_will_sign() -> None:
    settings = Settings(_env_file=None, environment="development", secret_key="your-secret-key")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        CoreApp(settings=settings)

    configure_auth(secret_key=KEY_B)
    assert CoreApp(settings=settings).settings.environment == "development"

    configure_auth(secret_key="your-secret-key")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        CoreApp(settings=Settings(_env_file=None, environment="development", secret_key=KEY_A))  # type: ignore[call-arg]


def test_the_password_policy_follows_settings_and_declaration() -> None:
    policy = build_container(test_settings(auth_password_min_length=10)).auth.password_policy()
    assert policy.min_length == 10 and policy.max_length == 128

    configure_auth(password_min_length=12, password_validators=[NumericPasswordValidator()])
    policy = build_container(test_settings(auth_password_min_length=10)).auth.password_policy()
    assert policy.errors("123456789012") == ["This password is entirely numeric."]
    assert len(policy.errors("12345")) == 2

    with pytest.raises(ConfigurationError, match="AUTH_PASSWORD_MIN_LENGTH"):
        build_container(
            test_settings(auth_password_min_length=20, auth_password_max_length=10)
        ).auth.password_policy()


def test_importing_core_defines_no_auth_table_and_loads_no_adapter(tmp_path: Path) -> None:
    code = (
        "import sys, core, core.auth; from core.models import Model; "
        "print(sorted(Model.metadata.tables)); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'passlib', 'redis'})); "
        "print('core.auth.models' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()

    assert out == ["[]", "[]", "False"]
