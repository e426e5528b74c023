"""MessagingRuntime: one per container — its outbox, its relay and the consumers it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.declarations import Declarations
from core.errors import BrokerUnavailableError, ConfigurationError
from core.messaging._sql import shares_one_connection
from core.messaging.consumers import (
    ConsumerSelection,
    Dispatcher,
    Handler,
    RetryPolicy,
    bound_handlers,
    declared_consumers,
)
from core.messaging.outbox import Outbox, OutboxRelay
from core.ports.broker import EventBroker
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.repository import Database

if TYPE_CHECKING:
    from core.containers.core import CoreContainer
    from core.tracing import Tracing

__all__ = ("ALL_CONSUMERS", "MessagingRuntime", "flush_events")

logger = logging.getLogger("core.messaging")

ALL_CONSUMERS = ConsumerSelection()
_DEFAULT: Any = object()


class MessagingRuntime:
    """The messaging side of one container: its outbox, its relay, its bound consumers.

    `container.messaging.runtime()` gives it, built from its collaborators (the container's
    `messaging.outbox`, `messaging.relay`, `messaging.broker`, `messaging.retry_policy`, the
    database, the declarations and settings values); `container.messaging.lifecycle` (started
    by the app's lifespan, `core consumer` and `core outbox relay`) runs it:

    - `consumers` (a `ConsumerSelection`, or None for none) says which declared consumers this
      process runs. By default: all of them with `MESSAGE_BROKER=memory` (one process, nothing
      to connect to) or `CONSUMERS_IN_PROCESS=true`, none otherwise (`core consumer` runs them).
    - `run_relay` says whether the outbox relay runs here (`OUTBOX_RELAY_IN_PROCESS` by default).

    Set either before the lifespan starts to change what this process does.

    Example:
        >>> runtime = app.container.messaging.runtime()  # doctest: +SKIP
        >>> runtime.consumers = ConsumerSelection(groups=frozenset({"users"}))  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        container: CoreContainer,
        outbox: Outbox,
        relay: OutboxRelay,
        broker: Callable[[], EventBroker],
        database: Callable[[], Database],
        declarations: Declarations,
        retry_policy: Callable[..., RetryPolicy],
        source: str,
        message_broker: str,
        consumers_in_process: bool,
        run_relay: bool,
        metrics: Metrics = NO_METRICS,
        tracing: Tracing | None = None,
    ) -> None:
        self.container = container
        self.metrics = metrics
        #: Core's tracer (TRACING_ENABLED), or None.
        self.tracing = tracing
        self.source = source
        self.outbox = outbox
        self.relay = relay
        self.declarations = declarations
        self.retry_policy = retry_policy
        self._database = database
        self._broker: EventBroker | None = None
        # The provider object is fixed for the container's life; overriding changes its state.
        self._broker_provider = broker
        self._consume_in_process = message_broker == "memory" or consumers_in_process
        self.consumers: ConsumerSelection | None = _DEFAULT
        self.run_relay: bool = run_relay
        self.dispatchers: list[Dispatcher] = []
        self._bound: list[EventBroker] = []

    def broker(self) -> EventBroker:
        """The container's broker, as `container.messaging.broker()` gives it.

        The selected adapter is a Singleton, so it is resolved once and kept (a Selector
        lookup costs more than the rest of a publish's own work); an override of the provider
        is checked on every call and wins at once, as it would through the container.
        """
        provider = self._broker_provider
        if getattr(provider, "overridden", False):
            return provider()
        if self._broker is None:
            self._broker = provider()
        return self._broker

    def default_consumers(self) -> ConsumerSelection | None:
        """What this process consumes when nobody chose: see the class docstring."""
        return ALL_CONSUMERS if self._consume_in_process else None

    def bind(self, broker: EventBroker, selection: ConsumerSelection) -> list[Dispatcher]:
        """Subscribe the selected consumers to `broker` (before it starts); once per broker.

        Raises:
            ConfigurationError: the selection names an undeclared group or topic, or two
                handlers of one group handle the same event name.
        """
        if any(known is broker for known in self._bound):
            return self.dispatchers
        by_route: dict[tuple[str, str], dict[str, Handler]] = {}
        owners: dict[tuple[str, str], str] = {}
        retries: dict[str, int] = {}
        for declaration, topics in selection.apply(declared_consumers(self.declarations)):
            handlers = bound_handlers(declaration, self.container)
            if declaration.max_retries is not None:
                retries[declaration.group] = declaration.max_retries
            for topic in topics:
                route = by_route.setdefault((declaration.group, topic), {})
                for name, handler in handlers.items():
                    owner = owners.setdefault((declaration.group, name), declaration.name)
                    if owner != declaration.name:
                        raise ConfigurationError(
                            f"Group {declaration.group!r} handles event {name!r} twice: in "
                            f"{owner} and {declaration.name}; one group, one handler per event"
                        )
                    route[name] = handler
        for (group, topic), handlers in by_route.items():
            policy = (
                self.retry_policy(max_retries=retries[group])
                if group in retries
                else self.retry_policy()
            )
            dispatcher = Dispatcher(
                self.container,
                group,
                topic,
                handlers,
                policy,
                broker=self.broker,
                metrics=self.metrics,
                tracing=self.tracing,
            )
            # One subscription per topic, so a failing event is dead-lettered next to its own.
            broker.subscribe([topic], dispatcher, group=group)
            self.dispatchers.append(dispatcher)
        self._bound.append(broker)
        return self.dispatchers

    async def start(self, broker: EventBroker) -> None:
        """Bind the chosen consumers, start the broker, and start the relay."""
        selection = self.default_consumers() if self.consumers is _DEFAULT else self.consumers
        if selection is not None:
            self.bind(broker, selection)
        try:
            await broker.start()
        except BrokerUnavailableError as exc:
            if self.dispatchers:
                raise
            # Nothing to consume here, and publishing goes through the outbox (or connects on
            # first use): an app must serve while its broker is down; events wait meanwhile.
            logger.warning("The event broker is unreachable at start-up: %s", exc)
        if self.run_relay:
            database = self._database()
            if shares_one_connection(database):
                logger.warning(
                    "Outbox relay not started: an in-memory SQLite database shares one "
                    "connection between sessions, so a relay would commit other units of work. "
                    "Use DATABASE_URL=memory:// or a SQLite file."
                )
            else:
                self.relay.start()

    async def stop(self, broker: EventBroker) -> None:
        """Stop the relay, then the broker (which lets in-flight handlers finish)."""
        await self.relay.stop()
        await broker.stop()


async def flush_events(app: Any) -> int:
    """Relay every committed event now and, on the in-memory broker, wait until consumers ran.

    Repeats until nothing is left, so events that handlers publish are delivered too. For
    tests and scripts; a running app relays on its own.

    Args:
        app: a CoreApp or its container.

    Returns:
        How many outbox rows were relayed.

    Example:
        >>> await client.post("/api/v1/orders/create_order/", json=order)  # doctest: +SKIP
        >>> await flush_events(app)  # doctest: +SKIP
        1
    """
    container = getattr(app, "container", app)
    runtime: MessagingRuntime = container.messaging.runtime()
    total = 0
    while True:
        # Handlers of what is already on the broker may publish more: let them run first.
        broker = container.messaging.broker()
        join = getattr(broker, "join", None)
        if join is not None and getattr(broker, "running", False):
            await join()
        sent = await runtime.relay.flush()
        total += sent
        if sent == 0:
            return total
