"""Messaging: publish events (`publish_event`, `@event`), consume them (`@consumer`, `@on_event`).

Events published inside a unit of work go through a transactional outbox (`core_outbox`) and are
relayed after commit; consumers get at-least-once delivery, retries, a dead-letter topic and an
idempotency helper. Importing this package declares the outbox tables on `Model.metadata`.
"""

from core.messaging.consumers import (
    ConsumerDeclaration,
    ConsumerSelection,
    consumer,
    current_group,
    declared_consumers,
    on_event,
)
from core.messaging.events import Event, current_event, use_correlation_id
from core.messaging.idempotency import already_processed, idempotent
from core.messaging.models import OutboxMessage, ProcessedEvent
from core.messaging.outbox import Outbox, OutboxRelay, RelayError
from core.messaging.producer import EventDeclaration, declared_events, event, publish_event
from core.messaging.runtime import MessagingRuntime, flush_events

__all__ = (
    "ConsumerDeclaration",
    "ConsumerSelection",
    "Event",
    "EventDeclaration",
    "MessagingRuntime",
    "Outbox",
    "OutboxMessage",
    "OutboxRelay",
    "ProcessedEvent",
    "RelayError",
    "already_processed",
    "consumer",
    "current_event",
    "current_group",
    "declared_consumers",
    "declared_events",
    "event",
    "flush_events",
    "idempotent",
    "on_event",
    "publish_event",
    "use_correlation_id",
)
