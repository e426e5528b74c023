"""Start-up refusals: secrets, shared session state in production, and misconfigured auth
adapters stop the app when it is built or started, with one line, never at the first request."""

from __future__ import annotations

from typing import Any

import pytest

from core import CoreApp
from core.errors import ConfigurationError
from core.settings import PUBLIC_SECRET_KEYS, Settings

PRIVATE = "a-private-random-value-of-48-characters-or-so-xyz"


def settings(**values: Any) -> Settings:
    values.setdefault("environment", "development")
    values.setdefault("database_url", "memory://")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def refusal(**values: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        CoreApp(settings=settings(**values))
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_a_missing_secret_key_refuses_to_start_outside_tests(environment: str) -> None:
    store = {"auth_token_store": "redis"} if environment == "production" else {}
    assert "SECRET_KEY is not set" in refusal(environment=environment, **store)


@pytest.mark.parametrize("secret", sorted(PUBLIC_SECRET_KEYS))
def test_a_publicly_known_key_refuses_to_start(secret: str) -> None:
    assert "publicly known" in refusal(secret_key=secret)


def test_a_short_hmac_key_refuses_to_start() -> None:
    assert "at least 32 bytes for HS256 tokens (got 12)" in refusal(secret_key="short-secret")


def test_a_private_key_starts_and_the_test_environment_needs_none() -> None:
    assert CoreApp(settings=settings(secret_key=PRIVATE)).settings.secret_key == PRIVATE
    first = CoreApp(settings=settings(environment="test")).settings.secret_key
    second = CoreApp(settings=settings(environment="test")).settings.secret_key
    # A random key of this process: apps of one test run trust each other's tokens.
    assert first == second and len(first) >= 32 and first not in PUBLIC_SECRET_KEYS


def test_no_setting_has_a_public_default_key() -> None:
    assert Settings.model_fields["secret_key"].default == ""


def test_production_refuses_the_memory_token_store() -> None:
    message = refusal(environment="production", secret_key=PRIVATE)
    assert "AUTH_TOKEN_STORE=memory" in message
    for store in ("redis", "database"):
        app = CoreApp(
            settings=settings(environment="production", secret_key=PRIVATE, auth_token_store=store)
        )
        assert app.settings.auth_token_store == store


def test_an_asymmetric_algorithm_without_key_files_refuses_to_start() -> None:
    assert "AUTH_PRIVATE_KEY_FILE" in refusal(auth_algorithm="RS256")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auth_password_hasher": "no_such_hasher"}, "no_such_hasher"),
        ({"auth_token_backend": "no_such_backend"}, "no_such_backend"),
        (
            {"auth_algorithm": "RS256", "auth_private_key_file": "/nonexistent/key.pem"},
            "cannot be read",
        ),
    ],
)
async def test_unusable_auth_adapters_fail_when_the_app_starts(
    values: dict[str, Any], message: str
) -> None:
    app = CoreApp(settings=settings(secret_key=PRIVATE, **values))

    with pytest.raises(ConfigurationError, match=message):
        async with app.lifespan():
            pass
