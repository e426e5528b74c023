"""RedisEventBroker: the EventBroker port on Redis Streams, via FastStream."""

# No `from __future__ import annotations` here: FastStream reads the consumer function's
# annotations at runtime to inject the message, and a postponed one would be a bare string.

import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, ClassVar

from faststream import AckPolicy, Context
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisStreamMessage, bDATA_KEY
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.adapters.faststream._base import (
    BROKER_LOGGER,
    CONTENT_TYPE,
    FastStreamEventBroker,
    Subscription,
    raw_body,
)
from core.errors import BrokerUnavailableError, ConfigurationError


class RedisEventBroker(FastStreamEventBroker[RedisBroker]):
    """Redis through FastStream's `RedisBroker`, on Redis Streams with consumer groups.

    Why Streams and not Pub/Sub: Pub/Sub delivers to whoever listens at that instant and keeps
    nothing. A subscriber that is down or restarting misses the message, nothing is acknowledged,
    and there are no consumer groups, so every instance of a service would get every message.
    A Stream stores messages; a consumer group (XGROUP) hands each one to a single consumer of the
    group (XREADGROUP) and keeps it pending until that consumer acknowledges it (XACK); pending
    messages of a failed or vanished consumer can be claimed again (XAUTOCLAIM). That is the
    at-least-once, load-shared delivery the port promises.

    - Each topic is a stream; each group a Redis consumer group on it, created at `start` at the
      stream's end (messages published before the group first started are not delivered to it).
    - Each subscription reads with its own consumer name, `<host>-<pid>-<random>-<n>`, so the
      instances of a service share the group's messages.
    - A message whose handler fails stays pending. A second reader per subscription claims
      messages pending longer than `redelivery_after_ms` (its own failures and those of crashed
      consumers) and delivers them again, up to `max_redeliveries` times, counted by Redis
      (XPENDING); then it is logged and acknowledged. A handler slower than `redelivery_after_ms`
      can therefore see its message twice.
    - `key` has no routing meaning on Redis (a stream has no partitions): it travels in the
      message headers.
    - Streams keep acknowledged messages. `stream_maxlen` caps each stream (oldest entries are
      trimmed on publish, even if a slow group has not read them); None keeps everything.

    Args:
        url: `redis://host:port/db`, the REDIS_URL setting.
        max_redeliveries: redeliveries of a failing message before it is given up.
        connect_timeout: seconds `start` waits for the server to answer.
        redelivery_after_ms: how long a message stays pending before it is delivered again.
        stream_maxlen: approximate cap on each stream's length, or None.
        consumer_name: prefix of this broker's consumer names (default `<host>-<pid>-<random>`).
        polling_interval_ms: how long one read blocks waiting for messages.
        broker_options: extra `faststream.redis.RedisBroker` settings.
    """

    technology: ClassVar[str] = "Redis"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (RedisError, OSError, TimeoutError)

    def __init__(
        self,
        url: str,
        *,
        max_redeliveries: int = 3,
        connect_timeout: float = 5.0,
        redelivery_after_ms: int = 30_000,
        stream_maxlen: int | None = None,
        consumer_name: str | None = None,
        polling_interval_ms: int = 100,
        broker_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(max_redeliveries=max_redeliveries, connect_timeout=connect_timeout)
        if redelivery_after_ms <= 0:
            raise ConfigurationError("redelivery_after_ms must be > 0")
        self.url = url
        self.redelivery_after_ms = redelivery_after_ms
        self.stream_maxlen = stream_maxlen
        # Unique per instance, so two brokers in one process are two consumers of a group.
        self.consumer_name = consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.polling_interval_ms = polling_interval_ms
        self._broker_options = dict(broker_options or {})

    def _create_broker(self) -> RedisBroker:
        # Per-message access logs at DEBUG: at INFO they would drown an application's own logs.
        options: dict[str, Any] = {
            "log_level": logging.DEBUG,
            "logger": BROKER_LOGGER,
            **self._broker_options,
        }
        return RedisBroker(self.url, **options)

    def _publish(
        self,
        broker: RedisBroker,
        body: bytes,
        *,
        topic: str,
        key: str | None,
        headers: dict[str, str],
        correlation_id: str | None,
    ) -> Awaitable[Any]:
        headers["content-type"] = CONTENT_TYPE
        if key is not None:
            headers["key"] = key
        return broker.publish(
            body,
            stream=topic,
            headers=headers,
            correlation_id=correlation_id,
            maxlen=self.stream_maxlen,
        )

    def _subscribe(self, broker: RedisBroker, subscription: Subscription) -> list[Any]:
        handler, group = subscription.handler, subscription.group
        consumer = f"{self.consumer_name}-{subscription.index}"

        async def consume(message: Annotated[RedisStreamMessage, Context("message")]) -> None:
            stream = message.raw_message["channel"]
            stream = stream.decode() if isinstance(stream, bytes) else stream

            async def nothing() -> None:
                # Unacknowledged, the message stays pending until the claiming reader takes it.
                return None

            await self.deliver(
                handler,
                message.body,
                where=f"{stream}/{group}",
                ack=message.ack,
                retry=nothing,
                give_up=message.ack,
                failed_attempts=message.get_delivery_count,
            )

        subscribers: list[Any] = []
        for topic in subscription.topics:
            # New messages: XREADGROUP >, one at a time. A bigger COUNT would let one consumer
            # grab a backlog its peers could share, and a fetched message is pending (its idle
            # time running) while it waits its turn, so a long batch would be claimed again.
            reader = broker.subscriber(
                stream=StreamSub(
                    topic,
                    group=group,
                    consumer=consumer,
                    polling_interval=self.polling_interval_ms,
                    max_records=1,
                ),
                ack_policy=AckPolicy.MANUAL,
                decoder=raw_body,
                parser=_tolerant_parser,
            )
            # Redeliveries: XAUTOCLAIM of messages pending longer than redelivery_after_ms.
            # Redis 8.4 can do both in one XREADGROUP (CLAIM); a second reader works on 6.2+.
            claimer = broker.subscriber(
                stream=StreamSub(
                    topic,
                    group=group,
                    consumer=f"{consumer}-claim",
                    min_idle_time=self.redelivery_after_ms,
                    polling_interval=min(self.redelivery_after_ms, 1_000),
                ),
                ack_policy=AckPolicy.MANUAL,
                decoder=raw_body,
                parser=_tolerant_parser,
            )
            reader(consume)
            claimer(consume)
            subscribers += [reader, claimer]
        return subscribers

    async def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Not applicable: Redis creates a stream on its first message or consumer group.

        Raises:
            ConfigurationError: always.
        """
        raise ConfigurationError(
            "create_topic is not applicable to Redis: a stream is created by its first publish "
            "or consumer group, and has no partitions (run more consumers in the group instead)."
        )

    async def list_topics(self) -> list[str]:
        """The streams in this Redis database, sorted (every stream, not only this app's).

        Raises:
            BrokerUnavailableError: Redis could not be reached.
        """
        client: Redis = Redis.from_url(self.url)
        try:
            keys = [key async for key in client.scan_iter(_type="STREAM")]
        except self.driver_errors as exc:
            raise BrokerUnavailableError(f"Redis is unreachable ({exc})") from exc
        finally:
            await client.aclose()
        return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in keys)


async def _tolerant_parser(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's stream parser, which also takes entries another program wrote.

    FastStream JSON-encodes the fields of an entry that lacks its own field, and fails on a
    value that is not UTF-8; the entry then stayed pending, redelivered and failing for ever.
    Such an entry becomes a body of its own (the one field's value, or its fields as JSON), for
    `deliver` to dead-letter like any other undecodable message.
    """
    try:
        return await original(message)
    except Exception:
        fields = message.get("data")
        if not isinstance(fields, dict) or bDATA_KEY in fields:
            raise
        return await original({**message, "data": {bDATA_KEY: _foreign_body(fields)}})


def _foreign_body(fields: dict[Any, Any]) -> bytes:
    def text(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    if len(fields) == 1:
        [value] = fields.values()
        return value if isinstance(value, bytes) else text(value).encode()
    return json.dumps({text(k): text(v) for k, v in fields.items()}).encode()
