"""MessagingContainer: which event broker serves, chosen by MESSAGE_BROKER, and the messaging
runtime (outbox, relay, consumer retry policy, in-process consumers) its lifecycle runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from core.adapters.memory.broker import InMemoryEventBroker
from core.declarations import Declarations
from core.errors import MissingDependencyError
from core.ports.broker import EventBroker
from core.ports.metrics import Metrics

if TYPE_CHECKING:
    from core.messaging.consumers import RetryPolicy
    from core.messaging.outbox import Outbox, OutboxRelay
    from core.messaging.runtime import MessagingRuntime
    from core.tracing import Tracing

# Each builder imports its adapter when called, so `import core` works without the broker's
# extra (and loads no aiokafka, redis or aio-pika) until someone selects that broker.


def _kafka(bootstrap_servers: str, client_id: str, tracing: Tracing | None) -> EventBroker:
    try:
        from core.adapters.faststream.kafka import KafkaEventBroker
    except ImportError as exc:
        raise MissingDependencyError("aiokafka", "kafka") from exc
    return KafkaEventBroker(
        bootstrap_servers, client_id=client_id, broker_options=_traced(tracing, "kafka")
    )


def _redis(url: str, tracing: Tracing | None) -> EventBroker:
    try:
        from core.adapters.faststream.redis import RedisEventBroker
    except ImportError as exc:
        raise MissingDependencyError("redis", "redis") from exc
    return RedisEventBroker(url, broker_options=_traced(tracing, "redis"))


def _rabbitmq(url: str, tracing: Tracing | None) -> EventBroker:
    try:
        from core.adapters.faststream.rabbitmq import RabbitMqEventBroker
    except ImportError as exc:
        raise MissingDependencyError("aio-pika", "rabbitmq") from exc
    return RabbitMqEventBroker(url, broker_options=_traced(tracing, "rabbitmq"))


def _traced(tracing: Tracing | None, technology: str) -> dict[str, Any]:
    # TRACING_ENABLED: FastStream's own OpenTelemetry middleware spans each publish and each
    # message processed, and carries the context in the message's headers.
    if tracing is None:
        return {}
    return {"middlewares": (tracing.broker_middleware(technology),)}


# The builders below import `core.messaging` when called: it declares the outbox tables on the
# models' metadata, which an app that never uses messaging must not get.


def _outbox(database_backend: str, tracing: Tracing | None) -> Outbox:
    from core.messaging.outbox import Outbox

    # The in-memory database has no isolation between units of work: the relay must not see
    # rows whose unit of work has not committed yet.
    return Outbox(track_in_flight=database_backend == "memory", tracing=tracing)


def _relay(**collaborators: Any) -> OutboxRelay:
    from core.messaging.outbox import OutboxRelay

    return OutboxRelay(**collaborators)


def _retry_policy(**options: Any) -> RetryPolicy:
    from core.messaging.consumers import RetryPolicy

    return RetryPolicy(**options)


def _runtime(**collaborators: Any) -> MessagingRuntime:
    from core.messaging.runtime import MessagingRuntime

    return MessagingRuntime(**collaborators)


# `core.messaging.models.OutboxMessage.__tablename__`, named here so checking for it imports
# nothing.
OUTBOX_TABLE = "core_outbox"


def messaging_declared(declarations: Declarations) -> bool:
    """Whether this app has events to relay or consume: declared `@event`s or `@consumer`s, or
    the outbox table on the models' metadata (`publish_event` comes with it)."""
    if declarations.events or declarations.consumers:
        return True
    from core.models import Model

    return OUTBOX_TABLE in Model.metadata.tables


async def _lifecycle(
    broker: EventBroker, runtime: providers.Provider[Any], declarations: Declarations
) -> AsyncIterator[EventBroker]:
    if not messaging_declared(declarations):
        # Nothing to relay or consume: the broker alone, for direct publishes.
        await broker.start()
        yield broker
        await broker.stop()
        return
    messaging: MessagingRuntime = runtime()
    await messaging.start(broker)
    yield broker
    await messaging.stop(broker)


class MessagingContainer(containers.DeclarativeContainer):
    """The event broker and the messaging runtime of one app.

    - `broker`: the EventBroker adapter (a Selector on MESSAGE_BROKER).
    - `outbox`: writes events in the caller's unit of work (`Outbox`).
    - `relay`: publishes committed outbox rows to `broker` (`OutboxRelay`).
    - `retry_policy`: how a failing consumer handler is retried (`RetryPolicy`; a Factory, so
      a group's `max_retries` can change one value).
    - `runtime`: the outbox, the relay and the consumers this process runs (`MessagingRuntime`).
    - `lifecycle`: the resource that binds the consumers, starts the broker and the relay, and
      stops them.

    Given by the root: `database` (the database container, whose `database` the runtime checks
    before starting a relay), `declarations` (events and consumers), `context`, the app
    container that relay passes and consumer messages make ambient, and `metrics`, the
    recorder of consumed events (a no-op unless METRICS_ENABLED).
    """

    config = providers.Configuration(strict=True)
    database = providers.DependenciesContainer()
    declarations = providers.Dependency(instance_of=Declarations)
    context = providers.Dependency(instance_of=containers.Container)
    metrics: providers.Dependency[Metrics] = providers.Dependency()
    # Core's tracer, or None when TRACING_ENABLED is off.
    tracing: providers.Dependency[Any] = providers.Dependency()

    broker = providers.Selector(
        config.message_broker,
        memory=providers.Singleton(InMemoryEventBroker),
        kafka=providers.Singleton(
            _kafka,
            bootstrap_servers=config.kafka_bootstrap_servers,
            client_id=config.app_name,
            tracing=tracing,
        ),
        redis=providers.Singleton(_redis, url=config.redis_url, tracing=tracing),
        rabbitmq=providers.Singleton(_rabbitmq, url=config.rabbitmq_url, tracing=tracing),
    )

    outbox = providers.Singleton(_outbox, database_backend=config.database_backend, tracing=tracing)

    # `broker.provider`: the relay resolves the broker per pass, so an override made after it
    # was built takes effect.
    relay = providers.Singleton(
        _relay,
        container=context,
        outbox=outbox,
        broker=broker.provider,
        batch_size=config.outbox_batch_size,
        poll_interval=config.outbox_poll_interval,
        backoff_max=config.outbox_retry_backoff_max,
        max_attempts=config.outbox_max_attempts,
        retention=config.outbox_retention,
        processed_retention=config.processed_events_retention,
        tracing=tracing,
    )

    retry_policy = providers.Factory(
        _retry_policy,
        max_retries=config.consumer_max_retries,
        backoff=config.consumer_retry_backoff,
        backoff_max=config.consumer_retry_backoff_max,
        dead_letter_suffix=config.consumer_dead_letter_suffix,
        unhandled=config.consumer_unhandled_events,
    )

    runtime = providers.Singleton(
        _runtime,
        container=context,
        outbox=outbox,
        relay=relay,
        broker=broker.provider,
        database=database.database.provider,
        declarations=declarations,
        retry_policy=retry_policy.provider,
        source=config.app_name,
        message_broker=config.message_broker,
        consumers_in_process=config.consumers_in_process,
        run_relay=config.outbox_relay_in_process,
        metrics=metrics,
        tracing=tracing,
    )

    lifecycle = providers.Resource(
        _lifecycle, broker, runtime=runtime.provider, declarations=declarations
    )
