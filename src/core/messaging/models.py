"""The framework's messaging tables: the transactional outbox and the idempotency records.

They are ordinary `Model`s, declared when `core.messaging` is imported, so `core makemigrations`
adds them to a project that uses events like any table of its own.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.orm import Mapped

from core.models import Field, Model

__all__ = ("OutboxMessage", "ProcessedEvent")

PENDING = "pending"
SENT = "sent"
FAILED = "failed"


class OutboxMessage(Model):
    """An event waiting to be relayed to the broker (`pending`), relayed (`sent`), or given up
    after `OUTBOX_MAX_ATTEMPTS` failed publishes (`failed`, until `core outbox requeue`).

    `publish_event` inside a unit of work writes one in the same transaction as the data, so the
    event exists if and only if the data was committed; the relay publishes pending rows that are
    due (`next_attempt_at` unset or past) in `id` order and marks them sent, and deletes sent rows
    after `OUTBOX_RETENTION` seconds. A failed publish counts in `attempts`, keeps its error in
    `last_error` and moves `next_attempt_at` on by the row's backoff.

    Example:
        >>> await OutboxMessage.objects.using(db).filter(status="pending").count()  # doctest: +SKIP
        0
    """

    __tablename__ = "core_outbox"
    __table_args__ = (Index("ix_core_outbox_status_id", "status", "id"),)

    id: Mapped[int] = Field.pk()
    event_id: Mapped[uuid.UUID] = Field.uuid(index=True)
    name: Mapped[str] = Field.string(max_length=255)
    topic: Mapped[str] = Field.string(max_length=255)
    key: Mapped[str | None] = Field.text()
    headers: Mapped[dict[str, Any]] = Field.json()
    payload: Mapped[dict[str, Any]] = Field.json()
    status: Mapped[str] = Field.string(max_length=16, default=PENDING)
    attempts: Mapped[int] = Field.integer(default=0)
    last_error: Mapped[str | None] = Field.text()
    next_attempt_at: Mapped[datetime.datetime | None] = Field.datetime()
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
    sent_at: Mapped[datetime.datetime | None] = Field.datetime(index=True)


class ProcessedEvent(Model):
    """An event a consumer group has handled: what `already_processed` / `@idempotent` check.

    Written in the handler's own transaction, so it exists if and only if the handler's work was
    committed. Deleted after `PROCESSED_EVENTS_RETENTION` seconds.

    Example:
        >>> await ProcessedEvent.objects.using(db).count()  # doctest: +SKIP
        12
    """

    __tablename__ = "core_processed_events"
    __table_args__ = (
        UniqueConstraint("consumer_group", "event_id", name="uq_core_processed_events_group_event"),
    )

    id: Mapped[int] = Field.pk()
    consumer_group: Mapped[str] = Field.string(max_length=255)
    event_id: Mapped[uuid.UUID] = Field.uuid(default=None)
    processed_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True, index=True)
