"""MessagingContainer: which event broker serves, chosen by MESSAGE_BROKER, and the messaging
runtime (outbox relay, in-process consumers) its lifecycle runs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from core.adapters.memory.broker import InMemoryEventBroker
from core.errors import MissingDependencyError
from core.ports.broker import EventBroker

if TYPE_CHECKING:
    from core.messaging.runtime import MessagingRuntime

# Each builder imports its adapter when called, so `import core` works without the broker's
# extra (and loads no aiokafka, redis or aio-pika) until someone selects that broker.


def _kafka(bootstrap_servers: str, client_id: str) -> EventBroker:
    try:
        from core.adapters.faststream.kafka import KafkaEventBroker
    except ImportError as exc:
        raise MissingDependencyError("aiokafka", "kafka") from exc
    return KafkaEventBroker(bootstrap_servers, client_id=client_id)


def _redis(url: str) -> EventBroker:
    try:
        from core.adapters.faststream.redis import RedisEventBroker
    except ImportError as exc:
        raise MissingDependencyError("redis", "redis") from exc
    return RedisEventBroker(url)


def _rabbitmq(url: str) -> EventBroker:
    try:
        from core.adapters.faststream.rabbitmq import RabbitMqEventBroker
    except ImportError as exc:
        raise MissingDependencyError("aio-pika", "rabbitmq") from exc
    return RabbitMqEventBroker(url)


def _root(container: Any) -> Any:
    # A nested container's parent is the `providers.Container` holding it, whose parent is the
    # enclosing container: the top of that chain is the app's root (its database and settings).
    while getattr(container, "parent", None) is not None:
        container = container.parent
    return container


def _runtime(container: Any) -> MessagingRuntime:
    # Imported when first used: `core.messaging` declares the outbox tables, which an app that
    # never imports it must not get.
    from core.messaging.runtime import MessagingRuntime

    return MessagingRuntime(_root(container))


def _messaging_in_use() -> bool:
    # Events and consumers are declared through `core.messaging` (which also declares the outbox
    # table): until something imports it, there is nothing to relay or consume.
    return "core.messaging" in sys.modules


async def _lifecycle(
    broker: EventBroker, runtime: providers.Provider[Any]
) -> AsyncIterator[EventBroker]:
    if not _messaging_in_use():
        await broker.start()
        yield broker
        await broker.stop()
        return
    messaging: MessagingRuntime = runtime()
    await messaging.start(broker)
    yield broker
    await messaging.stop(broker)


class MessagingContainer(containers.DeclarativeContainer):
    """The event broker (`broker`, a Selector on MESSAGE_BROKER), the messaging runtime
    (`runtime`: the outbox, its relay, the consumers this process runs) and `lifecycle`, the
    resource that binds the consumers, starts the broker and the relay, and stops them."""

    __self__ = providers.Self()
    config = providers.Configuration(strict=True)

    broker = providers.Selector(
        config.message_broker,
        memory=providers.Singleton(InMemoryEventBroker),
        kafka=providers.Singleton(
            _kafka,
            bootstrap_servers=config.kafka_bootstrap_servers,
            client_id=config.app_name,
        ),
        redis=providers.Singleton(_redis, url=config.redis_url),
        rabbitmq=providers.Singleton(_rabbitmq, url=config.rabbitmq_url),
    )

    runtime = providers.Singleton(_runtime, container=__self__)

    lifecycle = providers.Resource(_lifecycle, broker, runtime=runtime.provider)
