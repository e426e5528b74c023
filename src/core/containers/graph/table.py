"""The declared adapter table: for each port's provider, the value that selects each adapter,
the adapter class it builds and the settings it is built from.

Builders import their adapter inside their body (so `import core` works without the extras),
so nothing in a provider says which class it builds without calling it. This table says it
instead, beside the containers; `tests/unit/test_container_graph.py` checks it against them
(every Selector branch and builder function has an entry, and each adapter reads exactly the
settings listed here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from core.auth.registry import (
    BUILTIN_PASSWORD_HASHERS,
    registered_password_hasher,
    registered_token_backend,
)
from core.declarations import Declarations

__all__ = ("ADAPTERS", "BUILDERS", "DECLARED", "Adapter", "PortEntry")


@dataclass(frozen=True, slots=True)
class Adapter:
    """One adapter a port's provider can serve.

    Attributes:
        cls: Its qualified class name (a string: reading the table imports no adapter).
        settings: The settings (Settings field names) it is built from, besides the one that
            selects it.
    """

    cls: str
    settings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PortEntry:
    """A port's provider and the adapters its selecting value can name.

    Attributes:
        provider: The provider's path in CoreContainer (`messaging.broker`).
        port: The port's name (`EventBroker`).
        setting: The Settings field whose value selects the adapter (`message_broker`).
        adapters: Each built-in value and the adapter it selects; for a Selector, one entry per
            branch.
        declared: The `configure_auth` keyword that wins over `setting` when declared.
        registered: Looks a value up among the adapters user code registered (`register_*`) in
            the given declarations: the instance, None for a built-in value; raises
            `ConfigurationError` for neither.
        label: How to name the setting to a user, when it is not an environment variable.
    """

    provider: str
    port: str
    setting: str
    adapters: Mapping[str, Adapter]
    declared: str | None = None
    registered: Callable[[str, Declarations], object | None] | None = None
    label: str | None = None


_SQLALCHEMY_DATABASE = (
    "database_url",
    "database_echo",
    "database_pool_size",
    "database_max_overflow",
    "database_pool_timeout",
    "database_pool_recycle",
    "database_pool_pre_ping",
)
_JWT = (
    "secret_key",
    "auth_algorithm",
    "auth_access_token_expire_minutes",
    "auth_refresh_token_expire_days",
    "auth_private_key_file",
    "auth_public_key_file",
    "auth_issuer",
    "auth_audience",
    "auth_leeway_seconds",
)
# DATABASE_BACKEND is no environment variable: Settings derives it from DATABASE_URL.
_BACKEND = "DATABASE_URL backend"
_PASSLIB = Adapter("core.adapters.passlib.hashers.PasslibPasswordHasher")

#: Every port provider of CoreContainer, in declaration order.
ADAPTERS: Final[tuple[PortEntry, ...]] = (
    PortEntry(
        "database.database",
        "Database",
        "database_backend",
        {
            "sqlalchemy": Adapter(
                "core.adapters.sqlalchemy.database.SqlAlchemyDatabase", _SQLALCHEMY_DATABASE
            ),
            "memory": Adapter("core.adapters.memory.database.InMemoryDatabase"),
        },
        label=_BACKEND,
    ),
    PortEntry(
        "database.repository",
        "Repository",
        "database_backend",
        {
            "sqlalchemy": Adapter("core.adapters.sqlalchemy.repository.SqlAlchemyRepository"),
            "memory": Adapter("core.adapters.memory.repository.InMemoryRepository"),
        },
        label=_BACKEND,
    ),
    PortEntry(
        "auth.password_hasher",
        "PasswordHasher",
        "auth_password_hasher",
        dict.fromkeys(BUILTIN_PASSWORD_HASHERS, _PASSLIB),
        declared="password_hasher",
        registered=registered_password_hasher,
    ),
    PortEntry(
        "auth.token_backend",
        "TokenBackend",
        "auth_token_backend",
        {"jwt": Adapter("core.adapters.jwt.tokens.JwtTokenBackend", _JWT)},
        declared="token_backend",
        registered=registered_token_backend,
    ),
    PortEntry(
        "auth.token_store",
        "TokenStore",
        "auth_token_store",
        {
            "memory": Adapter("core.adapters.memory.tokens.InMemoryTokenStore"),
            "redis": Adapter(
                "core.adapters.redis.tokens.RedisTokenStore",
                ("auth_token_store_url", "redis_url", "auth_token_store_prefix"),
            ),
            "database": Adapter("core.adapters.sqlalchemy.tokens.SqlAlchemyTokenStore"),
        },
    ),
    PortEntry(
        "throttling.rate_limiter",
        "RateLimiter",
        "throttle_store",
        {
            "memory": Adapter("core.adapters.memory.ratelimit.InMemoryRateLimiter"),
            "redis": Adapter(
                "core.adapters.redis.ratelimit.RedisRateLimiter",
                ("throttle_store_url", "redis_url", "throttle_key_prefix"),
            ),
        },
    ),
    PortEntry(
        "idempotency.store",
        "IdempotencyStore",
        "idempotency_store",
        {
            "database": Adapter("core.adapters.sqlalchemy.idempotency.SqlAlchemyIdempotencyStore"),
            "redis": Adapter(
                "core.adapters.redis.idempotency.RedisIdempotencyStore",
                ("idempotency_store_url", "redis_url", "idempotency_key_prefix"),
            ),
            "memory": Adapter("core.adapters.memory.idempotency.InMemoryIdempotencyStore"),
        },
    ),
    PortEntry(
        "messaging.broker",
        "EventBroker",
        "message_broker",
        {
            "memory": Adapter("core.adapters.memory.broker.InMemoryEventBroker"),
            "kafka": Adapter(
                "core.adapters.faststream.kafka.KafkaEventBroker",
                ("kafka_bootstrap_servers", "app_name"),
            ),
            "redis": Adapter("core.adapters.faststream.redis.RedisEventBroker", ("redis_url",)),
            "rabbitmq": Adapter(
                "core.adapters.faststream.rabbitmq.RabbitMqEventBroker", ("rabbitmq_url",)
            ),
        },
    ),
    PortEntry(
        "metrics.recorder",
        "Metrics",
        "metrics_backend",
        {
            "prometheus": Adapter("core.adapters.prometheus.metrics.PrometheusMetrics"),
            "off": Adapter("core.ports.metrics.NullMetrics"),
        },
        label="METRICS_ENABLED",
    ),
    PortEntry(
        "tasks.queue",
        "TaskQueue",
        "task_broker",
        {
            "memory": Adapter("core.adapters.memory.tasks.InMemoryTaskQueue"),
            "redis": Adapter(
                "core.adapters.taskiq.queue.TaskiqTaskQueue",
                ("redis_url", "task_key_prefix", "task_redelivery_timeout"),
            ),
        },
    ),
)

#: Providers built by a function that are not ports: the class the function returns.
BUILDERS: Final[Mapping[str, str]] = {
    "auth.password_policy": "core.auth.passwords.PasswordPolicy",
    "auth.refresh_tokens": "core.auth.refresh.RefreshTokens",
    "idempotency.keys": "core.idempotency.IdempotencyKeys",
    "messaging.outbox": "core.messaging.outbox.Outbox",
    "messaging.relay": "core.messaging.outbox.OutboxRelay",
    "messaging.retry_policy": "core.messaging.consumers.RetryPolicy",
    "messaging.runtime": "core.messaging.runtime.MessagingRuntime",
    "tasks.runner": "core.tasks.binding.TaskRunner",
    "tasks.binder": "core.tasks.binding.TaskBinder",
    "tracing": "core.tracing.Tracing",
}

#: Settings a `configure_auth` keyword overrides: Settings field -> keyword.
DECLARED: Final[Mapping[str, str]] = {
    "secret_key": "secret_key",
    "auth_algorithm": "algorithm",
    "auth_access_token_expire_minutes": "access_token_expire_minutes",
    "auth_refresh_token_expire_days": "refresh_token_expire_days",
    "auth_password_hasher": "password_hasher",
    "auth_token_backend": "token_backend",
    "auth_password_min_length": "password_min_length",
    "auth_password_max_length": "password_max_length",
}
