"""Publishing: `publish_event` and the `@event` decorator, through the outbox or straight out."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from core.context import ambient_session, current_container, is_running
from core.declarations import Declarations, declarations
from core.errors import ConfigurationError, NotRunningError
from core.messaging.events import Event, use_correlation_id
from core.ports.broker import EncodedEventBroker

__all__ = ("EventDeclaration", "declared_events", "event", "publish_event")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
KeySpec = str | Callable[[Any], Any] | None

CORRELATION_HEADER = "x-correlation-id"


@dataclass(frozen=True)
class EventDeclaration:
    """What `@event` declared: an event name, its topic and the function that emits it."""

    name: str
    topic: str
    emitter: str
    key: str | None = None
    schema: Any = None
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def data_schema(self) -> Any:
        """The declared data type: `schema=`, else the emitter's return annotation, else None."""
        if self.schema is not None:
            return self.schema
        return _return_schema(self.function) if self.function is not None else None


def declared_events(declared: Declarations | None = None) -> list[EventDeclaration]:
    """Every `@event` declared (in the process's `Declarations` by default), in declaration
    order (AsyncAPI reads them).

    Example:
        >>> [(d.name, d.topic) for d in declared_events()]  # doctest: +SKIP
        [('order.created', 'order-events')]
    """
    return list((declared or declarations()).events.values())


async def publish_event(
    name: str,
    data: Any = None,
    *,
    topic: str,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Event:
    """Publish an event: after commit when inside a unit of work, at once otherwise.

    Inside a request, consumer message or task (any code with an ambient database session) the
    event is written to the outbox in that session's transaction and relayed once it commits:
    it is sent if and only if the data is committed, and a broker outage only delays it.
    Outside one, it goes straight to the broker. The container is the one `current_container()`
    finds: a script publishes through the process default, to a real broker
    (`MESSAGE_BROKER=kafka|redis|rabbitmq`) that `core consumer` processes read.

    Args:
        name: what happened, e.g. `"user.updated"`.
        data: the payload: a JSON value, a pydantic model, a dataclass or a Model instance.
        topic: where it goes.
        key: the message key: one key's events keep their order (Kafka partitions by it).
        headers: extra string metadata, in the envelope and beside it on the wire.

    Returns:
        The event as published (its `id` identifies it to consumers).

    Raises:
        NotRunningError: the broker is the in-memory one and its app is not running here, so
            no consumer would ever receive the event.
        BrokerUnavailableError: outside a unit of work, the broker could not be reached.
        TypeError: `data` holds a value JSON cannot carry.

    Example:
        >>> await publish_event(  # doctest: +SKIP
        ...     "user.updated",
        ...     data={"id": 1, "email": "new@example.com"},
        ...     topic="user-events",
        ... )
    """
    if not name:
        raise ConfigurationError("publish_event needs an event name")
    if not topic:
        raise ConfigurationError(f"publish_event({name!r}) needs a topic")
    # `messaging.container.runtime` is the provider `messaging.runtime` gives (overrides
    # included), found without the nested-container proxy's name checks: 0.4 µs less per event.
    container = current_container()
    runtime = container.messaging.container.runtime()
    if not is_running(container) and container.settings().message_broker == "memory":
        raise NotRunningError(
            f"Event {name!r} was not published: MESSAGE_BROKER=memory delivers events inside a "
            "running app, and this one is not running (a mounted CoreApp needs "
            "`core_app.attach(host)`). Set MESSAGE_BROKER=kafka, redis or rabbitmq and run "
            "`core consumer`, or publish inside `async with app.lifespan():`."
        )
    session = ambient_session()
    if session is not None:
        event = Event._new(name, data, runtime.source, headers)[0]
        await runtime.outbox.add(
            session, event, topic=topic, key=key, headers=_transport(name, event.headers)
        )
        return event
    broker = runtime.broker()
    tracing = runtime.tracing
    if tracing is not None:
        with tracing.span(
            f"publish {topic}",
            kind="producer",
            attributes={"messaging.destination.name": topic, "core.event.name": name},
        ):
            # The event's headers carry this span's context to the consumers.
            traced = tracing.inject(dict(headers or {}))
            return await _publish_now(runtime, broker, name, data, topic, key, traced)
    return await _publish_now(runtime, broker, name, data, topic, key, headers)


async def _publish_now(
    runtime: Any,
    broker: Any,
    name: str,
    data: Any,
    topic: str,
    key: str | None,
    headers: Mapping[str, str] | None,
) -> Event:
    # A capability of the broker's class (see EncodedEventBroker), not of its instance.
    if getattr(type(broker), "publish_body", None) is not None:
        # Encoded once, from the parts; the broker sends the bytes as they are. A value JSON
        # cannot carry raises TypeError here, before anything is sent.
        body, data, number, occurred_at, stamped = Event._encode(
            name, data, runtime.source, headers
        )
        # The transport headers, as `_transport` makes them (inlined: this runs per event).
        await cast("EncodedEventBroker", broker).publish_body(
            body, topic=topic, key=key, headers={**stamped, "event": name}
        )
        # Made once sent: while in flight, the publish holds no Event and no UUID (see _encode).
        return Event._assemble(name, data, number, occurred_at, runtime.source, stamped)
    event, id_text = Event._new(name, data, runtime.source, headers)
    transport = _transport(name, event.headers)
    try:
        # The data as given: converting it first (pydantic) costs more than the encoding, and
        # plain JSON data, the common case, needs none.
        await broker.publish(
            event._message(id_text, convert=False), topic=topic, key=key, headers=transport
        )
    except TypeError:
        # Something JSON cannot carry as is (a datetime, a UUID, a pydantic model...), refused
        # before anything was sent: convert it, as the outbox always does, and publish that.
        await broker.publish(event._message(id_text), topic=topic, key=key, headers=transport)
    return event


def _transport(name: str, headers: Mapping[str, str]) -> dict[str, str]:
    # Beside the body travel the event's name (so brokers' tools, routing and filters see what a
    # message is without decoding it) and its headers: the correlation id, which the adapters
    # also give the broker as the message's own correlation id, and the caller's.
    return {**headers, "event": name}


def event(name: str, *, topic: str, key: KeySpec = None, schema: Any = None) -> Callable[[F], F]:
    """Publish the decorated coroutine's return value as an event, once it has succeeded.

    On a ViewSet action the event goes through the request's unit of work: it is relayed after
    the response's data commits, and never if the request fails. Stacks with `@action` in
    either order. A request's `X-Correlation-ID` header becomes the event's correlation id.

    Args:
        name: the event name, e.g. `"order.created"`.
        topic: the topic it is published to.
        key: the message key: the name of a field of the returned data (`"user_id"`), or a
            function of the data; None for no key.
        schema: the type of the data (a pydantic model...), for the AsyncAPI document; the
            return annotation is used when it is one.

    Example:
        >>> class OrderViewSet(ModelViewSet):  # doctest: +SKIP
        ...     model = Order
        ...
        ...     @action(methods=["POST"], detail=False)
        ...     @event("order.created", topic="order-events")
        ...     async def create_order(self, request, db, **kwargs):
        ...         body = await request.json()
        ...         order = await Order.objects.create(**body, db=db)
        ...         return OrderOutput.model_validate(order).model_dump()
    """

    def decorate(function: F) -> F:
        if not inspect.iscoroutinefunction(function):
            raise ConfigurationError(
                f"@event({name!r}) decorates coroutine functions; {function.__qualname__} is not"
            )
        # Process-wide, like a Celery task registry: declarations only, bound to nothing.
        declarations().events[(name, topic, function.__qualname__)] = EventDeclaration(
            name=name,
            topic=topic,
            emitter=f"{function.__module__}.{function.__qualname__}",
            key=key if isinstance(key, str) else None,
            schema=schema,
            function=function,
        )

        @functools.wraps(function)
        async def emitting(*args: Any, **kwargs: Any) -> Any:
            result = await function(*args, **kwargs)
            data = _data_of(name, result)
            with use_correlation_id(_request_correlation_id(args)):
                await publish_event(name, data, topic=topic, key=_key_of(name, key, data))
            return result

        return cast(F, emitting)

    return decorate


def _data_of(name: str, result: Any) -> Any:
    from starlette.responses import Response

    if isinstance(result, Response):
        raise TypeError(
            f"@event({name!r}): the function returned a Response; return the event's data "
            "(a dict, a pydantic model or a Model instance) and let the framework render it"
        )
    return result


def _key_of(name: str, key: KeySpec, data: Any) -> str | None:
    if key is None:
        return None
    if callable(key):
        value = key(data)
    elif isinstance(data, Mapping) and key in data:
        value = data[key]
    elif not isinstance(data, Mapping) and hasattr(data, key):
        value = getattr(data, key)
    else:
        raise ConfigurationError(f"@event({name!r}, key={key!r}): the data has no {key!r}")
    return None if value is None else str(value)


def _request_correlation_id(args: tuple[Any, ...]) -> str | None:
    from starlette.requests import Request

    from core.logs import valid_request_id

    for arg in args[:3]:  # (self, request, ...) on an action; (request, ...) on a function
        if isinstance(arg, Request):
            # The same check as the request-id middleware's: a header is never trusted as is.
            return valid_request_id(arg.headers.get(CORRELATION_HEADER))
    return None


def _return_schema(function: Callable[..., Any]) -> Any:
    try:
        annotation = inspect.signature(function, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        # A forward reference that is not resolvable yet: the schema is documentation only.
        return None
    if annotation is inspect.Signature.empty or annotation in (Any, None, dict):
        return None
    return annotation
