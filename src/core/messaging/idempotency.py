"""Idempotent consumers: remember which events a group has handled, in the handler's transaction."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from core.context import ambient_session
from core.errors import ConfigurationError, NoActiveContextError, UniqueViolationError
from core.messaging.consumers import current_group
from core.messaging.events import Event
from core.messaging.models import ProcessedEvent

__all__ = ("already_processed", "idempotent")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


async def already_processed(event: Event, db: Any = None, *, group: str | None = None) -> bool:
    """True if `group` already handled `event`; else record it as handled and return False.

    The record is written in `db`'s transaction, so it is kept exactly when the handler's own
    work commits: a handler that fails and is retried is not taken for a duplicate. Call it
    first in the handler. Records are deleted after `PROCESSED_EVENTS_RETENTION` seconds.

    Args:
        event: the event being handled.
        db: the handler's unit of work (the ambient one when None).
        group: the consumer group; the running consumer's when None.

    Raises:
        ConfigurationError: no group given outside a consumer.
        NoActiveContextError: no session given and none is ambient.

    Example:
        >>> @on_event("order.created")  # doctest: +SKIP
        ... async def on_order_created(self, event, db):
        ...     if await already_processed(event, db):
        ...         return
        ...     await charge(event.data["id"])
    """
    group = group or current_group()
    if not group:
        raise ConfigurationError("already_processed() outside a consumer needs group=")
    db = db if db is not None else ambient_session()
    if db is None:
        raise NoActiveContextError("already_processed() needs a database session (db)")
    processed = ProcessedEvent.objects.using(db)
    if await processed.filter(consumer_group=group, event_id=event.id).exists():
        return True
    try:
        await processed.create(consumer_group=group, event_id=event.id)
    except UniqueViolationError:
        # A concurrent delivery of the same event recorded it first.
        return True
    return False


def idempotent(handler: F) -> F:
    """Skip events the consumer group has already handled (see `already_processed`).

    Example:
        >>> @consumer("user-service", topics=["order-events"])  # doctest: +SKIP
        ... class OrderEventsConsumer:
        ...     @on_event("order.created")
        ...     @idempotent
        ...     async def on_order_created(self, event, db):
        ...         user = await User.objects.using(db).get(id=event.data["user_id"])
        ...         user.order_count += 1
        ...         await user.save(db)
    """

    @functools.wraps(handler)
    async def once(*args: Any, **kwargs: Any) -> Any:
        position = next((i for i, a in enumerate(args) if isinstance(a, Event)), None)
        if position is None:
            raise ConfigurationError(f"@idempotent {handler.__qualname__} got no Event argument")
        db = kwargs.get("db", args[position + 1] if len(args) > position + 1 else None)
        if await already_processed(args[position], db):
            return None
        return await handler(*args, **kwargs)

    return cast(F, once)
