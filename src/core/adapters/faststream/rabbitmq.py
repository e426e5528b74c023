"""RabbitMqEventBroker: the EventBroker port on RabbitMQ (AMQP 0-9-1), via FastStream."""

# No `from __future__ import annotations` here: FastStream reads the consumer function's
# annotations at runtime to inject the message, and a postponed one would be a bare string.

import hashlib
import logging
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import aio_pika
from aio_pika.exceptions import AMQPError, ChannelClosed
from faststream import AckPolicy, Context
from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.message import RabbitMessage

from core.adapters.faststream._base import (
    BROKER_LOGGER,
    CONTENT_TYPE,
    CORRELATION_ID,
    AttemptCounter,
    FastStreamEventBroker,
    Subscription,
    raw_body,
)
from core.errors import BrokerUnavailableError, ConfigurationError


class RabbitMqEventBroker(FastStreamEventBroker[RabbitBroker]):
    """RabbitMQ through FastStream's `RabbitBroker` (aio-pika).

    Topology (the one Spring Cloud Stream's RabbitMQ binder uses):

    - Each topic is a durable `topic` exchange of the same name, declared on first publish or
      subscribe.
    - Each (group, topic) is a durable queue `<topic>.<group>`, bound to the topic's exchange
      with `#`. Every group's queue gets a copy of every message; the consumers of one queue (the
      instances of one service) compete for its messages, so each is handled once per group.
    - `key` is the routing key. Groups bind with `#`, so it does not filter today, but it is where
      a binding for a subset of keys would look.
    - A queue keeps messages while its consumers are down, but only from the moment it was first
      declared (the group's first `start`); before that the exchange drops them.

    Messages are persistent; each consumer has at most `prefetch_count` unacknowledged messages.
    A failed message is rejected back to its queue (nack with requeue) and redelivered, up to
    `max_redeliveries` times (counted in this process by message id), then rejected without
    requeue: it goes to the queue's dead-letter exchange if a policy sets one, else it is dropped.

    Args:
        url: `amqp://user:password@host:port/vhost`, the RABBITMQ_URL setting.
        max_redeliveries: redeliveries of a failing message before it is given up.
        connect_timeout: seconds `start` waits for the server to answer.
        prefetch_count: unacknowledged messages one consumer may hold.
        broker_options: extra `faststream.rabbit.RabbitBroker` settings.
    """

    technology: ClassVar[str] = "RabbitMQ"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (AMQPError, OSError, TimeoutError)

    def __init__(
        self,
        url: str,
        *,
        max_redeliveries: int = 3,
        connect_timeout: float = 5.0,
        prefetch_count: int = 10,
        broker_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(max_redeliveries=max_redeliveries, connect_timeout=connect_timeout)
        self.url = url
        self.prefetch_count = prefetch_count
        self._broker_options = dict(broker_options or {})
        self._attempts = AttemptCounter()
        self._declared: set[str] = set()

    def _create_broker(self) -> RabbitBroker:
        # A new connection has declared nothing yet as far as this process knows.
        self._declared.clear()
        options: dict[str, Any] = {
            # Per-message access logs at DEBUG: at INFO they would drown an application's logs.
            "log_level": logging.DEBUG,
            "logger": BROKER_LOGGER,
            "default_channel": Channel(prefetch_count=self.prefetch_count),
            **self._broker_options,
        }
        return RabbitBroker(self.url, **options)

    async def _publish(
        self,
        broker: RabbitBroker,
        body: bytes,
        *,
        topic: str,
        key: str | None,
        headers: dict[str, str],
        correlation_id: str | None,
    ) -> None:
        exchange = _exchange(topic)
        if topic not in self._declared:
            # Publishing to an exchange that does not exist closes the AMQP channel, so declare
            # it (idempotent) once per connection.
            await broker.declare_exchange(exchange)
            self._declared.add(topic)
        # The correlation id is an AMQP message property: not repeated among the headers.
        headers.pop(CORRELATION_ID, None)
        amqp_headers: dict[str, Any] = headers
        await broker.publish(
            body,
            exchange=exchange,
            routing_key=key or "",
            headers=amqp_headers,
            content_type=CONTENT_TYPE,
            correlation_id=correlation_id,
            message_id=uuid.uuid4().hex,
            persist=True,
            # A topic nobody subscribes to is not an error, as on Kafka: let the exchange drop it.
            mandatory=False,
        )

    def _subscribe(self, broker: RabbitBroker, subscription: Subscription) -> list[Any]:
        handler, group = subscription.handler, subscription.group
        attempts = self._attempts

        async def consume(message: Annotated[RabbitMessage, Context("message")]) -> None:
            raw = message.raw_message
            queue = f"{raw.exchange}.{group}"
            # Without a producer-set id, the body stands in, so a foreign message that keeps
            # failing is still counted.
            identity = (queue, raw.message_id or hashlib.sha256(raw.body).hexdigest())

            async def ack() -> None:
                attempts.forget(identity)
                await message.ack()

            async def retry() -> None:
                await message.nack(requeue=True)

            async def give_up() -> None:
                attempts.forget(identity)
                await message.reject(requeue=False)

            async def failed_attempts() -> int:
                return attempts.failed(identity)

            await self.deliver(
                handler,
                message.body,
                where=queue,
                ack=ack,
                retry=retry,
                give_up=give_up,
                failed_attempts=failed_attempts,
            )

        subscribers: list[Any] = []
        for topic in subscription.topics:
            subscriber = broker.subscriber(
                RabbitQueue(f"{topic}.{group}", durable=True, routing_key="#"),
                _exchange(topic),
                ack_policy=AckPolicy.MANUAL,
                decoder=raw_body,
            )
            subscriber(consume)
            subscribers.append(subscriber)
        return subscribers

    async def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Declare the topic's exchange (durable, type `topic`).

        Returns:
            True if it was created, False if it already existed.

        Raises:
            ConfigurationError: `partitions` is not 1 (RabbitMQ has no partitions: run more
                consumers in the group instead), or the name exists as another kind of exchange.
            BrokerUnavailableError: RabbitMQ could not be reached.
        """
        if partitions != 1:
            raise ConfigurationError(
                "RabbitMQ topics have no partitions: scale a group by running more consumers."
            )
        try:
            connection = await aio_pika.connect(self.url)
        except self.driver_errors as exc:
            raise BrokerUnavailableError(f"RabbitMQ is unreachable ({exc})") from exc
        async with connection:
            try:
                # A passive declare fails (and closes its channel) when the exchange is missing.
                probe = await connection.channel()
                await probe.get_exchange(name, ensure=True)
                return False
            except ChannelClosed:
                pass
            channel = await connection.channel()
            try:
                await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            except ChannelClosed as exc:
                raise ConfigurationError(f"RabbitMQ refused exchange {name!r}: {exc}") from exc
            except self.driver_errors as exc:
                raise BrokerUnavailableError(f"RabbitMQ is unreachable ({exc})") from exc
            return True

    async def list_topics(self) -> list[str]:
        """Not applicable: AMQP cannot list exchanges.

        Raises:
            ConfigurationError: always; the management plugin's UI, HTTP API or
                `rabbitmqctl list_exchanges` list them.
        """
        raise ConfigurationError(
            "list_topics is not applicable to RabbitMQ: AMQP cannot list exchanges. Use the "
            "management UI or HTTP API, or `rabbitmqctl list_exchanges`."
        )


def _exchange(topic: str) -> RabbitExchange:
    return RabbitExchange(topic, type=ExchangeType.TOPIC, durable=True)
