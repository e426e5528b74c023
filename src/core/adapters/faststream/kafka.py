"""KafkaEventBroker: the EventBroker port on Kafka (or a Kafka-protocol broker), via FastStream."""

# No `from __future__ import annotations` here: FastStream reads the consumer function's
# annotations at runtime to inject the message, and a postponed one would be a bare string.

import logging
from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, ClassVar, Literal, cast

# aiokafka ships no type information (no py.typed).
from aiokafka import AIOKafkaProducer, ConsumerRecord  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from core.adapters.faststream._base import (
    BROKER_LOGGER,
    CONTENT_TYPE,
    AttemptCounter,
    FastStreamEventBroker,
    Subscription,
    _quietly,
    raw_body,
)
from core.errors import BrokerUnavailableError, ConfigurationError


class KafkaEventBroker(FastStreamEventBroker[KafkaBroker]):
    """Kafka through FastStream's `KafkaBroker` (aiokafka).

    - A consumer group is a Kafka consumer group: each group gets every message, and the members
      of one group split the topic's partitions, so a group scales up to one member per partition.
      Create topics with enough partitions (`create_topic`); a topic a subscriber creates on its
      own gets one.
    - `key` is the Kafka message key: messages with the same key go to the same partition, so one
      key's messages are handled in order.
    - A new group starts at the earliest retained offset (`auto_offset_reset`), so nothing
      published between the group's creation and its first partition assignment is lost.
    - Offsets are committed after the handler succeeds. A failed message is fetched again (the
      consumer seeks back to it) up to `max_redeliveries` times, then logged and committed past:
      Kafka has no dead-letter queue, and a poison message must not block its partition forever.
      The count lives in this process, so a rebalance can grant a message a few more attempts.

    Args:
        bootstrap_servers: `host:port[,host:port]`, the KAFKA_BOOTSTRAP_SERVERS setting.
        client_id: how the consumers and producer name themselves to the cluster.
        max_redeliveries: redeliveries of a failing message before it is given up.
        connect_timeout: seconds `start` waits for the server to answer.
        auto_offset_reset: where a group with no committed offset starts.
        consumer_options: extra aiokafka consumer settings (`session_timeout_ms`,
            `heartbeat_interval_ms`, `max_poll_interval_ms`...).
        broker_options: extra `faststream.kafka.KafkaBroker` settings (security, timeouts...).
    """

    technology: ClassVar[str] = "Kafka"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (KafkaError, OSError, TimeoutError)

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        *,
        client_id: str = "core",
        max_redeliveries: int = 3,
        connect_timeout: float = 5.0,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        consumer_options: Mapping[str, Any] | None = None,
        broker_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(max_redeliveries=max_redeliveries, connect_timeout=connect_timeout)
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.auto_offset_reset = auto_offset_reset
        self._consumer_options = dict(consumer_options or {})
        self._broker_options = dict(broker_options or {})
        self._attempts = AttemptCounter()

    async def _connected(self) -> KafkaBroker:
        try:
            return await super()._connected()
        except BaseException as exc:
            await _stop_orphaned_producers(exc)
            raise

    def _create_broker(self) -> KafkaBroker:
        # Per-message access logs at DEBUG: at INFO they would drown an application's own logs.
        options: dict[str, Any] = {
            "log_level": logging.DEBUG,
            "logger": BROKER_LOGGER,
            **self._broker_options,
        }
        return KafkaBroker(self.bootstrap_servers, client_id=self.client_id, **options)

    def _publish(
        self,
        broker: KafkaBroker,
        body: bytes,
        *,
        topic: str,
        key: str | None,
        headers: dict[str, str],
        correlation_id: str | None,
    ) -> Awaitable[Any]:
        headers["content-type"] = CONTENT_TYPE
        return broker.publish(
            body,
            topic,
            key=key.encode() if key is not None else None,
            headers=headers,
            correlation_id=correlation_id,
        )

    def _subscribe(self, broker: KafkaBroker, subscription: Subscription) -> list[Any]:
        handler, group = subscription.handler, subscription.group
        attempts = self._attempts

        async def consume(message: Annotated[KafkaMessage, Context("message")]) -> None:
            # A non-batch subscriber gets one record per message, never a tuple of them.
            record = cast("ConsumerRecord[Any, Any]", message.raw_message)
            where = f"{record.topic}[{record.partition}]@{record.offset}/{group}"
            position = (group, record.topic, record.partition, record.offset)

            async def ack() -> None:
                attempts.forget(position)
                await message.ack()

            async def failed_attempts() -> int:
                return attempts.failed(position)

            await self.deliver(
                handler,
                message.body,
                where=where,
                ack=ack,
                retry=message.nack,  # seeks the partition back to this record
                give_up=ack,
                failed_attempts=failed_attempts,
            )

        subscriber = broker.subscriber(
            *subscription.topics,
            group_id=group,
            auto_offset_reset=self.auto_offset_reset,
            # Commit only after the handler settled the message: an auto-commit could move the
            # offset past a message whose handler then failed.
            ack_policy=AckPolicy.MANUAL,
            decoder=raw_body,
            **self._consumer_options,
        )
        subscriber(consume)
        return [subscriber]

    async def create_topic(
        self, name: str, partitions: int = 1, *, replication_factor: int = 1
    ) -> bool:
        """Create a topic.

        Returns:
            True if it was created, False if it already existed (it is left unchanged).

        Raises:
            ConfigurationError: the cluster refused the name, partition count or replication.
            BrokerUnavailableError: the cluster could not be reached.
        """
        if partitions < 1 or replication_factor < 1:
            raise ConfigurationError("a topic needs at least one partition and one replica")
        response = await self._admin(
            lambda admin: admin.create_topics([NewTopic(name, partitions, replication_factor)])
        )
        for topic_error in response.to_object()["topic_errors"]:
            code = topic_error["error_code"]
            if not code:
                continue
            error = for_code(code)(topic_error.get("error_message") or f"error code {code}")
            if isinstance(error, TopicAlreadyExistsError):
                return False
            if isinstance(
                error, InvalidTopicError | InvalidPartitionsError | InvalidReplicationFactorError
            ):
                raise ConfigurationError(f"Kafka refused topic {name!r}: {error}") from error
            raise BrokerUnavailableError(
                f"Kafka could not create topic {name!r}: {error}"
            ) from error
        return True

    async def list_topics(self) -> list[str]:
        """The cluster's topics, sorted, without Kafka's internal ones (`__consumer_offsets`...).

        Raises:
            BrokerUnavailableError: the cluster could not be reached.
        """
        topics: list[str] = await self._admin(lambda admin: admin.list_topics())
        return sorted(t for t in topics if not t.startswith("__"))

    async def _admin(self, operation: Any) -> Any:
        # A short-lived admin client: topic administration is a rare, CLI-driven operation.
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        try:
            await admin.start()
            try:
                return await operation(admin)
            finally:
                await admin.close()
        except self.driver_errors as exc:
            raise BrokerUnavailableError(f"Kafka is unreachable ({exc})") from exc


async def _stop_orphaned_producers(error: BaseException) -> None:
    """Stop the aiokafka producers a failed `KafkaBroker.connect()` left behind.

    FastStream 0.7 creates an `AIOKafkaProducer` and starts it; when the start fails (the cluster
    is unreachable) it neither keeps nor stops it, so `broker.stop()` cannot close it and aiokafka
    logs "Unclosed AIOKafkaProducer" at ERROR once it is collected: once per failed attempt, and
    the outbox relay retries for as long as the cluster is down. The failure's frames are the
    only place that still holds it.
    """
    seen: set[int] = set()
    frame = error.__traceback__
    while frame is not None:
        for value in list(frame.tb_frame.f_locals.values()):
            if isinstance(value, AIOKafkaProducer) and id(value) not in seen:
                seen.add(id(value))
                await _quietly(value.stop)
        frame = frame.tb_next
