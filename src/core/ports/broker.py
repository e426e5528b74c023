"""Event-broker port: what the framework needs from Kafka, Redis or RabbitMQ."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]
Handler = Callable[[Message], Awaitable[None]]


@runtime_checkable
class EventBroker(Protocol):
    """Publishes JSON messages to topics and feeds them to subscribed handlers.

    At-least-once delivery: handlers must tolerate duplicates; a handler that raises leaves the
    message unacknowledged for redelivery where the technology allows, a bounded number of times.
    `subscribe` is called only before `start`. `publish` raises `BrokerUnavailableError`; driver
    errors never leak.

    - Every consumer group subscribed to a topic gets every message; the subscribers of one group
      (in one process or many) share its messages, each handled once per group.
    - The message is sent as JSON: `publish` raises `TypeError` for a value JSON cannot carry,
      and each handler receives a fresh dict decoded from it.
    - `key` keeps one key's messages in order where the technology partitions (Kafka);
      `headers` travel as transport metadata beside the body, which they never change.
    - A group receives what is published once it exists (from its first `start`), including
      what is published while its subscribers are stopped.
    """

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def check(self) -> None:
        """Readiness: return when the broker's connection answers, raise when not.

        GET /health/ready and `core status` run it, each within HEALTH_CHECK_TIMEOUT seconds.
        Cheap and side-effect free. An adapter without `check` is reported as "unchecked",
        not as failing.
        """
        ...

    async def publish(
        self,
        message: Message,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...
    def subscribe(self, topics: list[str], handler: Handler, *, group: str) -> None: ...


@runtime_checkable
class EncodedEventBroker(EventBroker, Protocol):
    """An EventBroker that also sends a body its caller has already encoded (optional).

    `publish_event` encodes an event's wire message once, straight from its parts; when the
    broker has `publish_body` it sends those bytes as they are, otherwise it calls `publish`
    with the message. The framework's adapters have it; a broker without it works the same.

    `publish_body(body, ...)` behaves as `publish(message, ...)` would for the message `body`
    encodes: same topic, key and headers semantics, same `BrokerUnavailableError`. `body` is
    compact UTF-8 JSON of one object, which the caller guarantees; the broker neither checks
    nor re-encodes it. `headers` is handed over: the caller made the mapping for this call and
    does not use it again, so the broker may keep it or add its own transport headers to it.
    """

    def publish_body(
        self,
        body: bytes,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[None]: ...
