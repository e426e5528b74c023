"""Settings: every environment variable the framework reads, in one place.

Read once by the composition root (`CoreApp`, the CLI, the worker), never at import.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import Field, computed_field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigurationError

MIN_HMAC_KEY_BYTES = 32

#: Keys that appear in documentation, templates or earlier releases: whoever has read them can
#: sign tokens, so no app outside ENVIRONMENT=test starts with one.
PUBLIC_SECRET_KEYS = frozenset(
    {
        "change-me-insecure-development-key",  # the default of earlier releases
        "your-secret-key",  # the spec's configure_auth example
        "test-secret-key-that-is-long-enough-for-hs256",  # the generated projects' test key
        "secret",
        "secret-key",
        "secret_key",
        "changeme",
        "change-me",
        "development",
    }
)

# One random key per process for ENVIRONMENT=test without SECRET_KEY: apps built in one test
# process trust each other's tokens (as replicas sharing a key do), and nothing is public.
_TEST_SECRET_KEY = secrets.token_urlsafe(48)
#: THROTTLE_RATES every app has unless it sets them: AuthViewSet's login, register and refresh
#: per client address (`auth`) and per account (`auth_account`). A rate of None turns one off.
DEFAULT_THROTTLE_RATES: dict[str, str | None] = {"auth": "30/min", "auth_account": "10/min"}


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
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log lines as JSON (`json`) or readable text (`console`); `auto`: JSON when "
        "ENVIRONMENT=production, text otherwise.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="The level of the lines Core's log handler writes."
    )
    secret_key: str = Field(
        default="",
        description="Signs the tokens; no default: `core init` writes a random one to `.env`.",
        repr=False,
    )
    app_module: str = Field(
        default="src.main:app", description="Where the CLI finds the project's CoreApp."
    )
    api_prefix: str = "/api/v1"
    docs_enabled: bool = Field(
        default=True,
        description="Serve /docs, /redoc and /openapi.json; turn off to hide the API's "
        "description in production.",
    )
    docs_permission: str | None = Field(
        default=None,
        description="The dotted path of a permission (`core.permissions.IsAdmin`) that "
        "/docs, /redoc and /openapi.json require; a refused caller gets 401 or 403.",
    )
    openapi_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/"],
        description="The OpenAPI `servers` URLs, comma-separated; `/` (where the document is "
        "served) by default.",
    )
    openapi_license_name: str = Field(
        default="Proprietary",
        description="The OpenAPI `info.license` name; empty for no license entry.",
    )
    openapi_license_url: str | None = Field(
        default=None, description="The OpenAPI `info.license` URL."
    )
    timezone: str = "UTC"

    database_url: str = "sqlite+aiosqlite:///./app.db"
    database_echo: bool = False
    # The pool keeps up to pool_size connections open; a request that finds them all busy waits
    # for one (up to pool_timeout). Overflow connections are closed as they come back, so under
    # a steady load above pool_size they are opened again and again (on PostgreSQL each is a
    # server process, an SSL attempt and a login: bench/http/README.md measured it halving
    # throughput at 50 concurrent requests). None by default: raise pool_size instead.
    database_pool_size: int = 20
    database_max_overflow: int = 0
    database_pool_timeout: float = 30.0
    database_pool_recycle: int = 1800
    # Off by default: the asyncpg ping is three round trips per checkout (see bench/http);
    # pool_recycle retires old connections, and a dropped one fails one request cleanly.
    database_pool_pre_ping: bool = False
    migrations_dir: str = "migrations"

    request_max_body_size: int = Field(
        default=1024 * 1024,
        ge=0,
        description="Bytes a request body may hold; past them it is refused with 413 while it "
        "streams in. A ViewSet's `max_body_size` overrides it for its routes.",
    )
    request_max_json_depth: int = Field(
        default=32,
        ge=1,
        le=200,
        description="How deep a JSON body may nest objects and arrays; deeper is a 400.",
    )

    docs_assets: Literal["local", "cdn"] = Field(
        default="local",
        description="Where `/docs` and `/redoc` load Swagger UI's and ReDoc's scripts and "
        "styles: `local` from the app itself (installed with the framework; works with no "
        "internet), `cdn` from the public CDN FastAPI uses.",
    )

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
    auth_password_min_length: int = 8
    auth_password_max_length: int = 128
    auth_token_store: Literal["memory", "redis", "database"] = "memory"
    auth_token_store_url: str | None = Field(
        default=None, description="Redis URL of the token store; REDIS_URL when unset."
    )
    auth_token_store_prefix: str = "core:auth:"
    auth_refresh_family_lifetime_days: float = Field(
        default=30,
        gt=0,
        description="Absolute lifetime of a login: past it, its refresh tokens stop rotating.",
    )
    auth_refresh_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Concurrent refreshes with one token within this window get the same pair.",
    )
    auth_hashing_queue_size: int = Field(
        default=64,
        ge=0,
        description="Password hashes that may wait for a hashing thread; past it, login and "
        "register answer 503 with Retry-After at once.",
    )

    throttle_store: Literal["memory", "redis"] = Field(
        default="memory",
        description="Where throttle counts live: `memory` (this process) or `redis` (shared by "
        "every replica: use it with more than one).",
    )
    throttle_store_url: str | None = Field(
        default=None, description="Redis URL of the throttle counts; REDIS_URL when unset."
    )
    throttle_key_prefix: str = "core:throttle:"
    throttle_rates: dict[str, str | None] = Field(
        default_factory=lambda: dict(DEFAULT_THROTTLE_RATES),
        description='Rates by scope, e.g. {"anon": "100/min", "user": "1000/day"}; merged over '
        "the built-in `auth` and `auth_account` rates.",
    )
    throttle_default_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Throttles of views that set no `throttle_classes`: `anon`, `user`, "
        "`scoped` or dotted paths, comma-separated.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs of the proxies whose X-Forwarded-For is believed, "
        "comma-separated; none by default (the socket peer is the client).",
    )

    health_check_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds each readiness check (GET /health/ready, `core status`) has to "
        "answer; a probe's own timeout must be longer.",
    )

    # Metrics (Prometheus; needs the `metrics` extra): docs/operations.md#metrics.
    metrics_enabled: bool = Field(
        default=False,
        description="Record request, event and task metrics and serve them in Prometheus' "
        "format (needs the `metrics` extra).",
    )
    metrics_path: str = Field(
        default="/metrics",
        pattern=r"^/",
        description="Where the API serves the metrics (not in OpenAPI).",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which `core worker` and `core consumer` serve their metrics; 0: none.",
    )
    metrics_host: str = Field(
        default="0.0.0.0",
        description="Interface the METRICS_PORT of `core worker` and `core consumer` binds.",
    )
    metrics_scrape_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds a scrape has to read the outbox counts and the task queue's "
        "streams; what misses it is left out of that scrape.",
    )

    message_broker: Literal["memory", "kafka", "redis", "rabbitmq"] = "memory"
    kafka_bootstrap_servers: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"
    consumers_in_process: bool = Field(
        default=False,
        description="Run the declared consumers inside the app too (always on with "
        "MESSAGE_BROKER=memory); otherwise they run in `core consumer` processes.",
    )
    consumer_max_retries: int = Field(
        default=3, ge=0, description="Retries of a failing event handler before dead-lettering."
    )
    consumer_retry_backoff: float = Field(
        default=0.5, ge=0, description="Seconds before a handler's first retry; doubles per retry."
    )
    consumer_retry_backoff_max: float = Field(
        default=30.0, ge=0, description="Longest wait between two attempts of a handler."
    )
    consumer_dead_letter_suffix: str = Field(
        default=".dlq", min_length=1, description="Dead-letter topic of `t`: `t` + this suffix."
    )
    consumer_unhandled_events: Literal["dead_letter", "skip"] = Field(
        default="dead_letter",
        description="What an event no handler of the group names gets: `dead_letter` sends it "
        "to `<topic>.dlq` with the reason; `skip` acknowledges it and logs it once.",
    )
    outbox_relay_in_process: bool = Field(
        default=True,
        description="Relay the outbox inside the app; turn off where `core outbox relay` runs.",
    )
    outbox_poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between outbox polls when no commit wakes it."
    )
    outbox_batch_size: int = Field(default=100, ge=1, description="Outbox rows relayed per pass.")
    outbox_retry_backoff_max: float = Field(
        default=30.0, gt=0, description="Longest wait before the relay retries a failed publish."
    )
    outbox_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Failed publishes of an outbox row before it is parked as failed "
        "(`core outbox failed` lists them; an unreachable broker uses up no attempts).",
    )
    outbox_retention: float = Field(
        default=86_400.0, gt=0, description="Seconds a relayed outbox row is kept before deletion."
    )
    processed_events_retention: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="Seconds an idempotency record (an event a group handled) is kept.",
    )

    # -- idempotency keys (docs/idempotency.md) ------------------------------------------------
    idempotency_store: Literal["database", "redis", "memory"] = Field(
        default="database",
        description="Where `Idempotency-Key`s and their responses live: `database` (the app's "
        "own, in each request's transaction: exactly once), `redis` (shared, saved just after "
        "the commit) or `memory` (this process).",
    )
    idempotency_store_url: str | None = Field(
        default=None, description="Redis URL of the idempotency store; REDIS_URL when unset."
    )
    idempotency_key_prefix: str = "core:idempotency:"
    idempotency_key_ttl_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="Seconds a key and its response are kept: a retry within them is replayed.",
    )
    idempotency_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Seconds a retry waits for the request holding its key to finish before "
        "answering 409 with Retry-After.",
    )

    task_broker: Literal["memory", "redis"] = "memory"
    task_default_queue: str = "default"
    task_key_prefix: str = Field(
        default="core:tasks", description="Prefix of every Redis key the task queue uses."
    )
    task_redelivery_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds before a task whose worker died is run again by another worker; "
        "keep it above the longest task's run time.",
    )

    # Traces (OpenTelemetry, the `tracing` extra): see docs/operations.md#traces. The exporter's
    # endpoint, headers and sampler are the standard OTEL_* variables, read by the SDK itself.
    tracing_enabled: bool = Field(
        default=False,
        description="Trace requests, database statements, outbox writes and relays, events "
        "handled and tasks sent and run with OpenTelemetry (needs the `tracing` extra).",
    )
    tracing_exporter: Literal["otlp", "console", "none"] = Field(
        default="otlp",
        description="Where the tracer provider Core installs sends spans: `otlp` (OTLP over "
        "HTTP to OTEL_EXPORTER_OTLP_ENDPOINT), `console`, or `none`. Unused when the "
        "application installed its own tracer provider.",
    )
    tracing_service_name: str | None = Field(
        default=None,
        description="The traces' `service.name`; OTEL_SERVICE_NAME, else APP_NAME, when unset.",
    )

    # Garbage collection: core/heap.py, docs/operations.md#garbage-collection.
    gc_freeze_after_startup: bool = Field(
        default=True,
        description="Once the app has started, move the objects it holds to the garbage "
        "collector's permanent generation, so full collections skip them (they stopped "
        "requests for 100-250 ms in bench/http); `false` leaves the collector as Python sets it.",
    )

    @field_validator(
        "throttle_default_classes", "trusted_proxies", "openapi_servers", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from core.throttling import parse_trusted_proxies

        parse_trusted_proxies(value)
        return value

    @field_validator("throttle_rates")
    @classmethod
    def _rates(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        from core.throttling import parse_rate

        for rate in value.values():
            if rate is not None:
                parse_rate(rate)
        return {**DEFAULT_THROTTLE_RATES, **value}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def database_backend(self) -> Literal["memory", "sqlalchemy"]:
        """`memory` for `DATABASE_URL=memory://`, else `sqlalchemy`."""
        return "memory" if self.database_url.startswith("memory:") else "sqlalchemy"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def metrics_backend(self) -> Literal["prometheus", "off"]:
        """`prometheus` when METRICS_ENABLED, else `off`."""
        return "prometheus" if self.metrics_enabled else "off"

    @model_validator(mode="after")
    def _test_secret_key(self) -> Settings:
        if self.environment == "test" and not self.secret_key:
            self.secret_key = _TEST_SECRET_KEY
        return self

    def check(self, signing_secret: str | None = None, algorithm: str | None = None) -> None:
        """Refuse settings that must not reach a running app.

        Outside ENVIRONMENT=test an HMAC-signed app (HS256, the default) needs a private
        SECRET_KEY of at least 32 bytes; an asymmetric one (RS256, ES256...) needs its key
        files. In production the token store must be shared by every process (not `memory`).

        Args:
            signing_secret: the key that will really sign tokens, when something other than
                SECRET_KEY provides it (the composition root passes `configure_auth`'s).
            algorithm: the token algorithm, when something other than AUTH_ALGORITHM sets it.

        Raises:
            ConfigurationError: with a one-line reason.
        """
        secret = self.secret_key if signing_secret is None else signing_secret
        algorithm = self.auth_algorithm if algorithm is None else algorithm
        if self.environment != "test":
            if algorithm.startswith("HS"):
                _check_hmac_key(secret, algorithm)
            elif not (self.auth_private_key_file or self.auth_public_key_file):
                raise ConfigurationError(
                    f"AUTH_ALGORITHM={algorithm} needs AUTH_PRIVATE_KEY_FILE (to sign) and/or "
                    "AUTH_PUBLIC_KEY_FILE (to verify)."
                )
        if self.environment == "production" and self.auth_token_store == "memory":
            raise ConfigurationError(
                "AUTH_TOKEN_STORE=memory keeps sessions in one process; set AUTH_TOKEN_STORE="
                "redis or database when ENVIRONMENT=production."
            )
        if not self.api_prefix.startswith("/") and self.api_prefix:
            raise ConfigurationError(f"API_PREFIX must start with '/': got {self.api_prefix!r}.")

    def as_config(self) -> dict[str, Any]:
        """The settings as the plain dict the containers' Configuration reads."""
        return self.model_dump()


_MAKE_ONE = "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` makes one"


def _check_hmac_key(secret: str, algorithm: str) -> None:
    if not secret:
        raise ConfigurationError(
            f"SECRET_KEY is not set: put a private random value in .env ({_MAKE_ONE})."
        )
    if secret in PUBLIC_SECRET_KEYS:
        raise ConfigurationError(
            f"SECRET_KEY is a publicly known example value; use a private random one ({_MAKE_ONE})."
        )
    size = len(secret.encode())
    if size < MIN_HMAC_KEY_BYTES:
        # RFC 7518 3.2: an HMAC key at least as long as the hash; anything shorter can be
        # brute-forced from one token (PyJWT warns about it).
        raise ConfigurationError(
            f"SECRET_KEY must be at least {MIN_HMAC_KEY_BYTES} bytes for {algorithm} tokens "
            f"(got {size}); {_MAKE_ONE}."
        )
