"""Settings: every environment variable the framework reads, in one place.

Read once by the composition root (`CoreApp`, the CLI, the worker), never at import.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError

DEFAULT_SECRET_KEY = "change-me-insecure-development-key"


class Settings(BaseSettings):
    """Application settings, from the environment and `.env` (environment wins).

    Example:
        >>> Settings(database_url="sqlite+aiosqlite:///./demo.db").database_backend
        'sqlalchemy'
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_name: str = "Core API"
    environment: Literal["development", "test", "staging", "production"] = "development"
    debug: bool = False
    secret_key: str = DEFAULT_SECRET_KEY
    app_module: str = Field(
        default="src.main:app", description="Where the CLI finds the project's CoreApp."
    )
    api_prefix: str = "/api/v1"
    timezone: str = "UTC"

    database_url: str = "sqlite+aiosqlite:///./app.db"
    database_echo: bool = False
    database_pool_size: int = 10
    database_max_overflow: int = 20
    database_pool_timeout: float = 30.0
    database_pool_recycle: int = 1800
    migrations_dir: str = "migrations"

    auth_access_token_expire_minutes: int = 30
    auth_refresh_token_expire_days: int = 7
    auth_password_hasher: str = "pbkdf2_sha256"
    auth_token_backend: str = "jwt"
    auth_algorithm: Literal[
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"
    ] = "HS256"
    auth_private_key_file: str | None = None
    auth_public_key_file: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_leeway_seconds: int = 0

    message_broker: Literal["memory", "kafka", "redis", "rabbitmq"] = "memory"
    kafka_bootstrap_servers: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"

    task_broker: Literal["memory", "redis"] = "memory"
    task_default_queue: str = "default"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def database_backend(self) -> Literal["memory", "sqlalchemy"]:
        """`memory` for `DATABASE_URL=memory://`, else `sqlalchemy`."""
        return "memory" if self.database_url.startswith("memory:") else "sqlalchemy"

    def check(self) -> None:
        """Refuse settings that must not reach a running app.

        Raises:
            ConfigurationError: with a one-line reason.
        """
        if self.environment == "production" and self.secret_key in ("", DEFAULT_SECRET_KEY):
            raise ConfigurationError(
                "SECRET_KEY must be set to a private random value when ENVIRONMENT=production."
            )
        if not self.api_prefix.startswith("/") and self.api_prefix:
            raise ConfigurationError(f"API_PREFIX must start with '/': got {self.api_prefix!r}.")

    def as_config(self) -> dict[str, Any]:
        """The settings as the plain dict the containers' Configuration reads."""
        return self.model_dump()
