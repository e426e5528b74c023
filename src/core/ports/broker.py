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
    async def publish(
        self,
        message: Message,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...
    def subscribe(self, topics: list[str], handler: Handler, *, group: str) -> None: ...
