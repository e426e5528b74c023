"""The database idempotency store's table, `core_idempotency_keys`.

Declared when a route that accepts `Idempotency-Key` is built (every ModelViewSet's create and
partial_update), so `core makemigrations` adds it to a project like any table of its own.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Field, Model

__all__ = ("IdempotencyRecord",)


class IdempotencyRecord(Model):
    """One `Idempotency-Key` and what its request answered (IDEMPOTENCY_STORE=database).

    Written in the request's own transaction: the row exists if and only if the request's
    data and outbox rows were committed. `id` is a digest of the caller's identity and the key
    (two users' keys never meet); `fingerprint` a digest of the method, path, query, identity
    and body; `status_code`, `headers` and `body` the response a retry gets back. Rows past
    `expires_at` no longer count and are deleted by the store's purge.
    """

    __tablename__ = "core_idempotency_keys"

    id: Mapped[str] = Field.string(max_length=64, primary_key=True)
    fingerprint: Mapped[str] = Field.string(max_length=64)
    status_code: Mapped[int | None] = Field.integer(nullable=True)
    headers: Mapped[list[Any] | None] = Field.json(nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
    expires_at: Mapped[datetime.datetime] = Field.datetime(index=True)
