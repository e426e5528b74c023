"""InMemoryEventBroker: a real in-process event broker, the embedded default and the tests' fake."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.ports.broker import Handler, Message

logger = logging.getLogger("core.broker.memory")


@dataclass
class _Delivery:
    topic: str
    group: str
    body: bytes
    key: str | None
    headers: dict[str, str]
    attempt: int = 1


@dataclass
class _Subscriber:
    handler: Handler
    queue: asyncio.Queue[_Delivery] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


@dataclass
class _GroupTopic:
    """The subscribers of one group to one topic, served in turn."""

    subscribers: list[_Subscriber] = field(default_factory=list)
    turn: itertools.count[int] = field(default_factory=itertools.count)

    def next_subscriber(self) -> _Subscriber:
        return self.subscribers[next(self.turn) % len(self.subscribers)]


@dataclass(frozen=True)
class DeadLetter:
    """A message whose handler kept failing: kept for inspection, never delivered again."""

    topic: str
    group: str
    message: Message
    key: str | None
    headers: Mapping[str, str]
    attempts: int
    error: BaseException


class InMemoryEventBroker:
    """An event broker inside the process: topics, consumer groups, redelivery, no server.

    It keeps the semantics the real adapters share, so code and tests written against it hold on
    Kafka, Redis or RabbitMQ:

    - Every consumer group subscribed to a topic gets every message published to it; inside a
      group the subscribers of that topic take messages in turn (round robin), each message once.
    - Messages are JSON: `publish` encodes the mapping at once (a value JSON cannot carry raises
      `TypeError` there) and each delivery decodes a fresh dict, so handlers never share objects
      with the publisher or with each other. `publish_body` (`EncodedEventBroker`) takes a body
      already encoded, as `publish_event` hands it over.
    - A handler that raises has its message delivered again, to the group's next subscriber, up to
      `max_redeliveries` times; then the message is logged and kept in `dead_letters`.
    - Delivery is asynchronous: `publish` only enqueues, and a task per subscriber runs handlers.
      `await broker.join()` waits until every queued message has been handled (tests use it).
    - `publish` before `start` buffers: the message is queued for the groups subscribed at that
      moment and delivered once the broker starts. A topic no group subscribes to keeps nothing
      (there is no retention, unlike Kafka or Redis Streams). `stop` cancels the delivery tasks;
      messages still queued stay queued and are delivered if the broker is started again.

    Args:
        max_redeliveries: how many times a failed message is delivered again before it is dropped.

    Example:
        ```python
        broker = InMemoryEventBroker()
        broker.subscribe(["orders"], on_order, group="billing")
        await broker.start()
        await broker.publish({"id": 1}, topic="orders")
        await broker.join()  # on_order has run
        ```
    """

    def __init__(self, *, max_redeliveries: int = 3) -> None:
        if max_redeliveries < 0:
            raise ConfigurationError("max_redeliveries must be >= 0")
        self.max_redeliveries = max_redeliveries
        self.dead_letters: list[DeadLetter] = []
        self._topics: dict[str, dict[str, _GroupTopic]] = {}
        self._running = False
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return self._running

    def subscribe(self, topics: list[str], handler: Handler, *, group: str) -> None:
        if not topics:
            raise ConfigurationError("subscribe needs at least one topic")
        if not group:
            raise ConfigurationError("subscribe needs a consumer group name")
        for topic in topics:
            subscriber = _Subscriber(handler)
            self._topics.setdefault(topic, {}).setdefault(group, _GroupTopic()).subscribers.append(
                subscriber
            )
            if self._running:
                # The port only promises subscribe-before-start, but an in-process broker can
                # honour a late subscriber at no cost.
                subscriber.task = asyncio.create_task(self._serve(subscriber))

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        # asyncio primitives bind to the loop that first waits on them; rebuilding them here lets
        # one broker be stopped in one event loop and started in another (a test per loop).
        self._idle = asyncio.Event()
        if self._pending == 0:
            self._idle.set()
        for subscriber in self._subscribers():
            queue: asyncio.Queue[_Delivery] = asyncio.Queue()
            while not subscriber.queue.empty():
                queue.put_nowait(subscriber.queue.get_nowait())
            subscriber.queue = queue
            subscriber.task = asyncio.create_task(
                self._serve(subscriber), name=f"core-broker-memory-{id(subscriber)}"
            )

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        tasks = [s.task for s in self._subscribers() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subscriber in self._subscribers():
            subscriber.task = None

    async def publish(
        self,
        message: Message,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        await self.publish_body(
            json.dumps(dict(message), separators=(",", ":")).encode(),
            topic=topic,
            key=key,
            headers=headers,
        )

    async def publish_body(
        self,
        body: bytes,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        for group, members in self._topics.get(topic, {}).items():
            self._enqueue(
                members.next_subscriber(),
                _Delivery(topic, group, body, key, dict(headers or {})),
            )

    async def join(self) -> None:
        """Wait until every message published so far has been handled (or dead-lettered).

        Raises:
            RuntimeError: the broker is not running and messages are waiting, so it would never
                return.
        """
        if self._pending and not self._running:
            raise RuntimeError("InMemoryEventBroker.join() needs a started broker")
        await self._idle.wait()

    def _subscribers(self) -> list[_Subscriber]:
        return [
            s for groups in self._topics.values() for gt in groups.values() for s in gt.subscribers
        ]

    def _enqueue(self, subscriber: _Subscriber, delivery: _Delivery) -> None:
        self._pending += 1
        self._idle.clear()
        subscriber.queue.put_nowait(delivery)

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _serve(self, subscriber: _Subscriber) -> None:
        while True:
            delivery = await subscriber.queue.get()
            try:
                await subscriber.handler(json.loads(delivery.body))
            except asyncio.CancelledError:
                # Stopped mid-handler: put the message back so a restart delivers it again,
                # as an unacknowledged message would be on a real broker.
                subscriber.queue.put_nowait(delivery)
                raise
            except Exception as exc:
                self._retry_or_drop(delivery, exc)
            self._done()

    def _retry_or_drop(self, delivery: _Delivery, error: Exception) -> None:
        if delivery.attempt <= self.max_redeliveries:
            members = self._topics[delivery.topic][delivery.group]
            delivery.attempt += 1
            self._enqueue(members.next_subscriber(), delivery)
            return
        logger.exception(
            "Handler of group %r failed %d times on a message of topic %r; dropping it",
            delivery.group,
            delivery.attempt,
            delivery.topic,
            exc_info=error,
        )
        self.dead_letters.append(
            DeadLetter(
                delivery.topic,
                delivery.group,
                json.loads(delivery.body),
                delivery.key,
                delivery.headers,
                delivery.attempt,
                error,
            )
        )
