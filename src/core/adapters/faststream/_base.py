"""What the FastStream adapters share: JSON bodies, the start/stop cycle, acknowledgement policy."""

from __future__ import annotations

import asyncio
import functools
import json
import json.encoder
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from core.errors import BrokerUnavailableError, ConfigurationError
from core.ports.broker import Handler, Message

logger = logging.getLogger("core.broker")
# FastStream's own lines (start, stop, per-message access at DEBUG) go through this logger, and
# so through Core's log handler, instead of FastStream's coloured stdout handler.
BROKER_LOGGER = logging.getLogger("core.broker.faststream")

CONTENT_TYPE = "application/json"
# A transport header of this name becomes the broker message's own correlation id.
CORRELATION_ID = "correlation_id"

Action = Callable[[], Awaitable[None]]


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# `json.dumps` builds a new encoder on every call, about a third of the time it takes to encode a
# small message; this one is built once. Same output as `json.dumps(message, separators=(",",
# ":"), ensure_ascii=False, check_circular=False)`: a message that contains itself fails with
# RecursionError. (`c_make_encoder` is None where json has no C accelerator, e.g. on PyPy.)
_encoder = getattr(json.encoder, "c_make_encoder", None)
_ENCODE: Callable[[Any, int], Any] | None = (
    _encoder(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _encoder is not None
    else None
)
_FALLBACK = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def encode_body(message: Message) -> bytes:
    """The wire form of a message: compact UTF-8 JSON, the same on every broker.

    Raises:
        TypeError: a value JSON cannot carry (datetime, Decimal...): convert it before publishing.
    """
    value = message if type(message) is dict else dict(message)
    if _ENCODE is None:
        return _FALLBACK.encode(value).encode()
    return "".join(_ENCODE(value, 0)).encode()


def decode_body(body: bytes) -> dict[str, Any]:
    """A fresh dict from a message body.

    Raises:
        ValueError: the body is not a JSON object (a foreign producer wrote to the topic):
            invalid JSON or UTF-8, JSON of another type.
        RecursionError: the JSON nests deeper than the interpreter's recursion limit.
    """
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object (got a JSON {type(value).__name__})")
    return value


async def raw_body(message: Any) -> Any:
    """The FastStream decoder of every subscriber here: the body's bytes, as they came.

    FastStream decodes a body before calling the subscriber; a body nested too deeply raised
    RecursionError there, out of reach of the subscriber, and the message stayed unsettled
    (holding a RabbitMQ prefetch slot, pending on Redis). `deliver` decodes it instead.
    """
    return message.body


class AttemptCounter:
    """Failed attempts per message, for brokers that do not count deliveries themselves.

    Bounded (least recently failed entries go first) so that messages which failed here and were
    then handled by another process cannot grow it without limit.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._failures: OrderedDict[Hashable, int] = OrderedDict()

    def failed(self, key: Hashable) -> int:
        """Record a failed attempt; return how many attempts failed so far."""
        count = self._failures.pop(key, 0) + 1
        self._failures[key] = count
        while len(self._failures) > self._limit:
            self._failures.popitem(last=False)
        return count

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True)
class Subscription:
    topics: tuple[str, ...]
    handler: Handler
    group: str
    index: int  # the n-th subscription of this adapter: names a consumer where one is needed


class _FastStreamBroker(Protocol):
    """The part of a FastStream broker the base class drives."""

    async def connect(self) -> Any: ...
    async def ping(self, timeout: float | None) -> bool: ...  # noqa: ASYNC109 (FastStream API)
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


BrokerT = TypeVar("BrokerT", bound=_FastStreamBroker)


class FastStreamEventBroker(ABC, Generic[BrokerT]):
    """An EventBroker over one FastStream broker, created per start/stop cycle.

    - `subscribe` records subscriptions; `start` connects, then creates one FastStream subscriber
      per subscription and starts them concurrently (Kafka group joins take seconds each, and
      concurrent joins of one group settle in one rebalance instead of one per member).
    - `publish` before `start` connects on first use, so a process that only publishes needs no
      `start`; `stop` closes whatever is open and a later `publish` or `start` reconnects.
    - Handlers run with manual acknowledgement: acknowledged after success; after a failure the
      message is left for redelivery, and after `max_redeliveries` redeliveries it is logged and
      given up (acknowledged, or rejected to a dead-letter exchange where one exists).
    - A body that is not a JSON object (invalid JSON or UTF-8, nested too deeply, another JSON
      type) goes to the handler's `dead_letter_body(body, error)` when it has one (the
      messaging layer's dispatcher sends it to `<topic>.dlq`) and is acknowledged; without one
      it is logged and given up. Every message is settled, so none holds a prefetch slot or a
      partition.
    """

    technology: ClassVar[str]
    driver_errors: ClassVar[tuple[type[BaseException], ...]]

    def __init__(self, *, max_redeliveries: int = 3, connect_timeout: float = 5.0) -> None:
        if max_redeliveries < 0:
            raise ConfigurationError("max_redeliveries must be >= 0")
        self.max_redeliveries = max_redeliveries
        self.connect_timeout = connect_timeout
        self._subscriptions: list[Subscription] = []
        self._broker: BrokerT | None = None
        self._running = False
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return self._running

    def subscribe(self, topics: list[str], handler: Handler, *, group: str) -> None:
        if self._running:
            raise ConfigurationError(
                f"{type(self).__name__}.subscribe() must be called before start()"
            )
        if not topics:
            raise ConfigurationError("subscribe needs at least one topic")
        if not group:
            raise ConfigurationError("subscribe needs a consumer group name")
        self._subscriptions.append(
            Subscription(tuple(topics), handler, group, len(self._subscriptions))
        )

    async def start(self) -> None:
        async with self._lock:
            if self._running:
                return
            try:
                broker = await self._connected()
                await broker.start()
                # Some clients connect lazily (redis-py): make an unreachable server fail here,
                # at start-up, rather than at the first message.
                if not await broker.ping(timeout=self.connect_timeout):
                    raise BrokerUnavailableError(
                        f"{self.technology} did not answer within {self.connect_timeout}s"
                    )
                subscribers = [
                    s for sub in self._subscriptions for s in self._subscribe(broker, sub)
                ]
                await asyncio.gather(*(subscriber.start() for subscriber in subscribers))
            except BaseException as exc:
                await _quietly(self._close)
                if isinstance(exc, self.driver_errors) and not isinstance(
                    exc, BrokerUnavailableError
                ):
                    raise BrokerUnavailableError(
                        f"{self.technology} is unreachable; the broker did not start ({exc})"
                    ) from exc
                raise
            self._running = True

    async def stop(self) -> None:
        async with self._lock:
            await self._close()

    async def ping(self) -> None:
        """Raise BrokerUnavailableError unless the broker answers (GET /health/ready)."""
        try:
            broker = self._broker or await self._connect_once()
            answered = await broker.ping(timeout=self.connect_timeout)
        except self.driver_errors as exc:
            raise BrokerUnavailableError(f"{self.technology} is unreachable ({exc})") from exc
        if not answered:
            raise BrokerUnavailableError(
                f"{self.technology} did not answer within {self.connect_timeout}s"
            )

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): the broker's connection answers a ping."""
        await self.ping()

    async def publish(
        self,
        message: Message,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = encode_body(message)
        del message  # encoded: let it go while the publish is in flight
        # `publish_body` may add to the headers it gets; these are the caller's: copy them.
        await self.publish_body(body, topic=topic, key=key, headers=dict(headers or ()))

    async def publish_body(
        self,
        body: bytes,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # The headers are ours to keep and extend (the port says so): no copy per message.
        transport = headers if type(headers) is dict else dict(headers or ())
        broker = self._broker
        try:
            if broker is None:
                broker = await self._connect_once()
            await self._publish(
                broker,
                body,
                topic=topic,
                key=key,
                headers=transport,
                correlation_id=transport.get(CORRELATION_ID),
            )
        except self.driver_errors as exc:
            # One error type for callers whatever the broker; the cause stays for the logs.
            raise BrokerUnavailableError(
                f"{self.technology}: could not publish to {topic!r} ({exc})"
            ) from exc

    async def _connect_once(self) -> BrokerT:
        async with self._lock:
            return await self._connected()

    async def _connected(self) -> BrokerT:
        if self._broker is None:
            broker = self._create_broker()
            try:
                await broker.connect()
            except BaseException:
                await _quietly(broker.stop)
                raise
            self._broker = broker
        return self._broker

    async def _close(self) -> None:
        broker, self._broker, self._running = self._broker, None, False
        if broker is not None:
            await broker.stop()

    async def deliver(
        self,
        handler: Handler,
        body: bytes,
        *,
        where: str,
        ack: Action,
        retry: Action,
        give_up: Action,
        failed_attempts: Callable[[], Awaitable[int]],
    ) -> None:
        """Run `handler` on one received body and settle the message.

        Args:
            where: "topic/group", for the logs.
            ack: acknowledge (success).
            retry: leave the message for redelivery (nack, seek back, or leave it pending).
            give_up: drop the message for good (ack it, or reject it to a dead-letter exchange).
            failed_attempts: called once the handler failed; how many deliveries have failed.
        """
        call: Callable[[], Awaitable[Any]]
        try:
            message = decode_body(body)
        except (ValueError, RecursionError) as exc:
            # Not ours (or corrupt): no number of retries can make it JSON.
            reject = getattr(handler, "dead_letter_body", None)
            if reject is None:
                logger.error(
                    "%s: %s message is not a JSON object; dropping it: %s",
                    where,
                    self.technology,
                    exc,
                )
                await give_up()
                return
            call = functools.partial(reject, body, exc)
        else:
            call = functools.partial(handler, message)
        try:
            await call()
        except Exception as exc:
            attempts = await failed_attempts()
            if attempts > self.max_redeliveries:
                logger.error(
                    "%s: handler failed %d times; giving the message up",
                    where,
                    attempts,
                    exc_info=exc,
                )
                await give_up()
            else:
                logger.warning(
                    "%s: handler failed (attempt %d of %d); the message will be redelivered",
                    where,
                    attempts,
                    self.max_redeliveries + 1,
                    exc_info=exc,
                )
                await retry()
            return
        await ack()

    @abstractmethod
    def _create_broker(self) -> BrokerT: ...

    @abstractmethod
    def _publish(
        self,
        broker: BrokerT,
        body: bytes,
        *,
        topic: str,
        key: str | None,
        headers: dict[str, str],
        correlation_id: str | None,
    ) -> Awaitable[Any]:
        """Send one encoded body. It runs per message: keep it lean.

        Args:
            headers: the transport headers, a dict made for this message: add to it in place
                (content type, key...) rather than copying it.
            correlation_id: the broker message's correlation id (None: FastStream makes one).
        """

    @abstractmethod
    def _subscribe(self, broker: BrokerT, subscription: Subscription) -> list[Any]:
        """Register FastStream subscribers for one subscription on a started broker."""


async def _quietly(action: Callable[[], Awaitable[None]]) -> None:
    try:
        await action()
    except Exception:
        logger.debug("ignored error while closing a half-open connection", exc_info=True)
