"""Consuming: `@consumer` classes with `@on_event` handlers, and how they run per message.

Declarations are process-wide (like Celery's task registry, in `core.declarations`);
`MessagingRuntime` binds the selected ones to its container's broker when an app or
`core consumer` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from core.context import use_container
from core.declarations import Declarations, declarations
from core.errors import ConfigurationError
from core.messaging.events import Event, handling, use_correlation_id
from core.models.session import unit_of_work
from core.ports.broker import EventBroker, Message
from core.ports.metrics import NO_METRICS, Metrics

if TYPE_CHECKING:
    from core.containers.core import CoreContainer
    from core.tracing import Tracing

__all__ = (
    "ConsumerDeclaration",
    "ConsumerSelection",
    "consumer",
    "current_group",
    "declared_consumers",
    "on_event",
)

logger = logging.getLogger("core.messaging.consumer")

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_HANDLES = "__core_handles__"
DEAD_LETTER_PREFIX = "dead_letter_"

_group: ContextVar[str | None] = ContextVar("core_consumer_group", default=None)


def current_group() -> str | None:
    """The consumer group whose handler is running, or None outside a consumer.

    Example:
        >>> current_group()  # inside a handler of @consumer("billing", ...)  # doctest: +SKIP
        'billing'
    """
    return _group.get()


@dataclass(frozen=True)
class ConsumerDeclaration:
    """What `@consumer` declared: a class, its group, its topics and its handlers by event name."""

    cls: type
    group: str
    topics: tuple[str, ...]
    handlers: Mapping[str, str]  # event name -> method name
    max_retries: int | None = None

    @property
    def name(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


def declared_consumers(declared: Declarations | None = None) -> list[ConsumerDeclaration]:
    """Every `@consumer` class declared (in the process's `Declarations` by default), in
    declaration order.

    Example:
        >>> [(d.group, d.topics) for d in declared_consumers()]  # doctest: +SKIP
        [('notification-service', ('user-events', 'order-events'))]
    """
    return list((declared or declarations()).consumers.values())


def on_event(name: str) -> Callable[[F], F]:
    """Mark a method of a `@consumer` class as the handler of the events named `name`.

    The handler is `async def handler(self, event, db)`: `event` is the `Event` (its payload in
    `event.data`), `db` the unit of work opened for this message, committed when the handler
    returns and rolled back when it raises. Stack several `@on_event` to handle several names.

    Example:
        >>> @consumer("notification-service", topics=["user-events"])  # doctest: +SKIP
        ... class NotificationConsumer:
        ...     @on_event("user.created")
        ...     async def on_user_created(self, event, db):
        ...         await send_welcome_email(event.data["email"])
    """
    if not name:
        raise ConfigurationError("on_event needs an event name")

    def mark(function: F) -> F:
        _require_coroutine(function, f"@on_event({name!r})")
        names: tuple[str, ...] = getattr(function, _HANDLES, ())
        setattr(function, _HANDLES, (*names, name))
        return function

    return mark


def _require_coroutine(function: Callable[..., Any], decorator: str) -> None:
    if not inspect.iscoroutinefunction(function):
        raise ConfigurationError(
            f"{decorator} decorates coroutine functions; {function.__qualname__} is not"
        )


def consumer(
    group: str, *, topics: Sequence[str], max_retries: int | None = None
) -> Callable[[C], C]:
    """Declare a class whose `@on_event` methods handle the events of `topics` for `group`.

    Every group gets every event of its topics; the processes running one group (one service's
    `core consumer` replicas) share them, each event handled once per group. Delivery is
    at-least-once: make handlers idempotent (`@idempotent`). A handler that raises is retried
    with backoff (`CONSUMER_MAX_RETRIES`, `CONSUMER_RETRY_BACKOFF`), then the event goes to the
    dead-letter topic `<topic>.dlq` with the error in its headers. A message that is not an
    event (undecodable, not an envelope) and an event no handler of the group names go there
    at once (`CONSUMER_UNHANDLED_EVENTS=skip` acknowledges and skips the latter instead).

    Args:
        group: the consumer group, usually the service's name.
        topics: the topics to read.
        max_retries: retries of a failing handler; `CONSUMER_MAX_RETRIES` when None.

    Raises:
        ConfigurationError: no topics, or a class without `@on_event` methods.

    Example:
        >>> @consumer("notifications", topics=["user-events", "order-events"])  # doctest: +SKIP
        ... class NotificationConsumer:
        ...     @on_event("order.created")
        ...     async def on_order_created(self, event, db):
        ...         await send_order_confirmation(event.data["user_id"], event.data["id"])
    """
    if not group:
        raise ConfigurationError("@consumer needs a group name")
    if isinstance(topics, str) or not topics or not all(topics):
        raise ConfigurationError(f"@consumer({group!r}) needs a list of topic names")
    if max_retries is not None and max_retries < 0:
        raise ConfigurationError(f"@consumer({group!r}): max_retries must be >= 0")

    def declare(cls: C) -> C:
        handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                for name in getattr(value, _HANDLES, ()):
                    handlers[name] = attribute
        if not handlers:
            raise ConfigurationError(
                f"@consumer({group!r}) class {cls.__qualname__} has no @on_event method"
            )
        declaration = ConsumerDeclaration(cls, group, tuple(topics), handlers, max_retries)
        # Keyed by the class's dotted name: re-running a module (a reload, a test) replaces it.
        declarations().consumers[declaration.name] = declaration
        cls.__core_consumer__ = declaration  # type: ignore[attr-defined]
        return cls

    return declare


@dataclass(frozen=True)
class ConsumerSelection:
    """Which declared consumers a process runs: some groups, some topics, or (None) all.

    Example:
        >>> ConsumerSelection(groups=frozenset({"notification-service"}))  # doctest: +SKIP
    """

    groups: frozenset[str] | None = None
    topics: frozenset[str] | None = None

    def apply(
        self, declarations: Iterable[ConsumerDeclaration]
    ) -> list[tuple[ConsumerDeclaration, tuple[str, ...]]]:
        """The selected declarations, each with the topics it runs on.

        Raises:
            ConfigurationError: a named group or topic that no declaration matches.
        """
        declarations = list(declarations)
        chosen = [d for d in declarations if self.groups is None or d.group in self.groups]
        if self.groups is not None:
            missing = self.groups - {d.group for d in chosen}
            if missing:
                known = ", ".join(sorted({d.group for d in declarations})) or "none"
                raise ConfigurationError(
                    f"No @consumer declares group {', '.join(sorted(missing))} "
                    f"(declared groups: {known})"
                )
        selected = []
        for declaration in chosen:
            topics = tuple(t for t in declaration.topics if self.topics is None or t in self.topics)
            if topics:
                selected.append((declaration, topics))
        if self.topics is not None:
            read = {t for _, topics in selected for t in topics}
            if missing := self.topics - read:
                raise ConfigurationError(
                    f"No selected @consumer reads topic {', '.join(sorted(missing))}"
                )
        return selected


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing handler is retried before its event is dead-lettered."""

    max_retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    dead_letter_suffix: str = ".dlq"
    # What an event no handler of the group names gets: "dead_letter" or "skip".
    unhandled: str = "dead_letter"

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.backoff * 2.0 ** (attempt - 1), self.backoff_max)


Handler = Callable[[Event, Any], Awaitable[Any]]


def _describe_span(span: Any, run: Mapping[str, Any], outcome: str) -> None:
    for attribute, value in (
        ("core.event.name", run["event"]),
        ("core.event.id", run["event_id"]),
        ("core.consumer.attempt", run["attempt"]),
        ("core.consumer.outcome", outcome),
    ):
        if value is not None:
            span.set_attribute(attribute, value)
    if outcome in ("failed", "dead_lettered"):
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR, f"event {outcome.replace('_', '-')}")


class Dispatcher:
    """The broker handler of one (group, topic): runs each event's handler in a unit of work.

    A message that cannot be decoded (`dead_letter_body`, which the broker adapters call with
    the raw body), one that is not an event envelope, an event no handler names (unless the
    policy says skip) and an event whose handler keeps failing go to the dead-letter topic, the
    reason in their headers. It returns normally in every case, so the broker acknowledges; it
    raises only when the dead-letter topic cannot be reached, leaving the message to the
    broker's own redelivery.

    Args:
        container: the app container a message's handling runs in (made ambient; its
            database gives the unit of work; handlers reach it as `self.container`).
        broker: gives the broker dead letters are published to.
        metrics: what each message's outcome and duration are recorded to.
        tracing: Core's tracer (TRACING_ENABLED): each message is a consumer span, the child
            of the broker's own span when its middleware opened one, else of the span whose
            context the event's headers carry.
    """

    def __init__(
        self,
        container: CoreContainer,
        group: str,
        topic: str,
        handlers: Mapping[str, Handler],
        policy: RetryPolicy,
        *,
        broker: Callable[[], EventBroker],
        metrics: Metrics = NO_METRICS,
        tracing: Tracing | None = None,
    ) -> None:
        self.container = container
        self.broker = broker
        self.metrics = metrics
        self.tracing = tracing
        self.group = group
        self.topic = topic
        self.handlers = dict(handlers)
        self.policy = policy
        self.dead_letter_topic = topic + policy.dead_letter_suffix
        self._ignored: set[str] = set()

    async def __call__(self, message: Message) -> None:
        if self.tracing is None:
            await self._handle(message, None)
            return
        headers = message.get("headers")
        with self.tracing.span(
            f"consume {self.topic}",
            kind="consumer",
            # FastStream's middleware made the span of the received message current; without
            # one (the in-memory broker), the event's headers say where it comes from.
            parent=None
            if self.tracing.has_current_span() or not isinstance(headers, Mapping)
            else headers,
            attributes={
                "messaging.destination.name": self.topic,
                "messaging.consumer.group.name": self.group,
            },
        ) as span:
            await self._handle(message, span)

    async def _handle(self, message: Message, span: Any) -> None:
        with use_container(self.container):
            token = _group.set(self.group)
            started = time.perf_counter()
            # What the line after the message says; `_dispatch` fills it in as it goes.
            run: dict[str, Any] = {"event": None, "event_id": None, "attempt": 1}
            outcome = "failed"
            # Once decoded, the event's correlation id tags every line about it, this one too.
            with contextlib.ExitStack() as correlated:
                try:
                    outcome = await self._dispatch(message, run, correlated)
                finally:
                    _group.reset(token)
                    seconds = time.perf_counter() - started
                    self.metrics.event_processed(self.topic, self.group, outcome, seconds)
                    self._log_run(run, outcome, seconds)
                    if span is not None:
                        _describe_span(span, run, outcome)

    def _log_run(self, run: dict[str, Any], outcome: str, seconds: float) -> None:
        duration_ms = round(seconds * 1000, 3)
        # An event of no interest to the group is said once by `_ignore`, not per event.
        logger.log(
            logging.DEBUG if outcome == "skipped" else logging.INFO,
            "Event %s %s on %s/%s: %s (attempt %d) in %.1fms",
            run["event"] or "-",
            run["event_id"] or "-",
            self.topic,
            self.group,
            outcome,
            run["attempt"],
            duration_ms,
            extra={
                **run,
                "topic": self.topic,
                "group": self.group,
                "duration_ms": duration_ms,
                "outcome": outcome,
            },
        )

    async def _dispatch(
        self, message: Message, run: dict[str, Any], correlated: contextlib.ExitStack
    ) -> str:
        try:
            event = Event.from_message(message)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3]
            )
            error = ValueError(f"not an event envelope ({problems or exc})")
            logger.error(
                "%s/%s: %s; dead-lettering it to %r",
                self.topic,
                self.group,
                error,
                self.dead_letter_topic,
            )
            await self._dead_letter(dict(message), None, error, attempts=1)
            return "dead_lettered"
        run.update(event=event.name, event_id=str(event.id))
        correlated.enter_context(use_correlation_id(event.correlation_id))
        handler = self.handlers.get(event.name)
        if handler is None:
            if self.policy.unhandled == "skip":
                self._ignore(event)
                return "skipped"
            unhandled = LookupError(
                f"no handler for event {event.name!r} in group {self.group!r} "
                f"(handled: {', '.join(sorted(self.handlers))})"
            )
            logger.error(
                "%s/%s: %s; dead-lettering event %s to %r",
                self.topic,
                self.group,
                unhandled,
                event.id,
                self.dead_letter_topic,
            )
            await self._dead_letter(event.to_message(), event, unhandled, attempts=1)
            return "dead_lettered"
        attempt = 0
        while True:
            attempt += 1
            run["attempt"] = attempt
            try:
                with handling(event):
                    async with unit_of_work(self.container) as db:
                        await handler(event, db)
                return "handled"
            except Exception as exc:
                self.metrics.event_attempt_failed(self.topic, self.group)
                if attempt > self.policy.max_retries:
                    logger.error(
                        "%s/%s: handler of %r failed %d time(s); dead-lettering event %s to %r",
                        self.topic,
                        self.group,
                        event.name,
                        attempt,
                        event.id,
                        self.dead_letter_topic,
                        exc_info=exc,
                    )
                    await self._dead_letter(event.to_message(), event, exc, attempts=attempt)
                    return "dead_lettered"
                delay = self.policy.delay(attempt)
                logger.warning(
                    "%s/%s: handler of %r failed (attempt %d of %d), retrying in %.2fs: %s",
                    self.topic,
                    self.group,
                    event.name,
                    attempt,
                    self.policy.max_retries + 1,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)

    def _ignore(self, event: Event) -> None:
        # A group usually reads topics shared with events it does not care about: say so once
        # per name, then only at DEBUG.
        level = logging.DEBUG if event.name in self._ignored else logging.INFO
        self._ignored.add(event.name)
        logger.log(
            level,
            "%s/%s: no handler for event %r; acknowledged and skipped",
            self.topic,
            self.group,
            event.name,
        )

    async def dead_letter_body(self, body: bytes, error: BaseException) -> None:
        """Send a body that could not be decoded to the dead-letter topic, as it came.

        Raises:
            BrokerUnavailableError: the dead-letter topic cannot be reached.
        """
        logger.error(
            "%s/%s: a message cannot be decoded; dead-lettering it to %r: %s",
            self.topic,
            self.group,
            self.dead_letter_topic,
            _reason(error),
        )
        headers = self._reason_headers(error, attempts=1)
        broker = self.broker()
        publish_body = getattr(broker, "publish_body", None)
        if publish_body is not None:
            await publish_body(body, topic=self.dead_letter_topic, headers=headers)
        else:
            text = body.decode("utf-8", errors="replace")
            await broker.publish({"body": text}, topic=self.dead_letter_topic, headers=headers)

    def _reason_headers(self, error: BaseException, *, attempts: int) -> dict[str, str]:
        return {
            f"{DEAD_LETTER_PREFIX}error": _reason(error),
            f"{DEAD_LETTER_PREFIX}error_type": type(error).__qualname__,
            f"{DEAD_LETTER_PREFIX}topic": self.topic,
            f"{DEAD_LETTER_PREFIX}group": self.group,
            f"{DEAD_LETTER_PREFIX}attempts": str(attempts),
        }

    async def _dead_letter(
        self, body: dict[str, Any], event: Event | None, error: BaseException, *, attempts: int
    ) -> None:
        reason = self._reason_headers(error, attempts=attempts)
        transport = dict(reason)
        if event is not None:
            # The error travels in the envelope too, so a consumer of the dead-letter topic
            # sees it in `event.headers`.
            body = {**body, "headers": {**event.headers, **reason}}
            transport.update(event=event.name, event_id=str(event.id))
        broker = self.broker()
        await broker.publish(body, topic=self.dead_letter_topic, headers=transport)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2_000]


def bound_handlers(
    declaration: ConsumerDeclaration, container: CoreContainer
) -> dict[str, Handler]:
    """An instance of the declared class, and its handlers by event name as `(event, db)` calls."""
    instance = declaration.cls()
    # Like a ViewSet's, so a handler can reach `self.container.<area>.<provider>()`; a class
    # with __slots__ does without.
    with contextlib.suppress(AttributeError):
        instance.container = container
    handlers: dict[str, Handler] = {}
    for name, attribute in declaration.handlers.items():
        method = getattr(instance, attribute)
        handlers[name] = _as_handler(method)
    return handlers


def _as_handler(method: Callable[..., Awaitable[Any]]) -> Handler:
    parameters = [
        p
        for p in inspect.signature(method).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) >= 2:
        return method
    if len(parameters) == 1:
        # `async def handler(self, event)`: a handler that needs no database.
        async def without_db(event: Event, db: Any) -> Any:
            return await method(event)

        return without_db
    raise ConfigurationError(
        f"{getattr(method, '__qualname__', method)} must take (self, event, db) or (self, event)"
    )
