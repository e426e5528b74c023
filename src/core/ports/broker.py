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
    message unacknowledged for redelivery where the technology allows. `subscribe` is called only
    before `start`. `publish` raises `BrokerUnavailableError`; driver errors never leak.
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
