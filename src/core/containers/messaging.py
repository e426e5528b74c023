"""MessagingContainer: which event broker serves, chosen by MESSAGE_BROKER."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from core.adapters.memory.broker import InMemoryEventBroker
from core.errors import MissingDependencyError
from core.ports.broker import EventBroker

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


async def _broker_lifecycle(broker: EventBroker) -> AsyncIterator[EventBroker]:
    await broker.start()
    yield broker
    await broker.stop()


class MessagingContainer(containers.DeclarativeContainer):
    """The event broker (`broker`, a Selector on MESSAGE_BROKER) and its start/stop resource."""

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

    lifecycle = providers.Resource(_broker_lifecycle, broker)
