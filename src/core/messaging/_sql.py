"""What the outbox relay needs to know about SQL sessions: the only SQLAlchemy code of messaging.

Everything else in `core.messaging` goes through `Model.objects` (the Repository port), so it runs
unchanged on the in-memory database.
"""

from __future__ import annotations

from typing import Any

from core.messaging.models import PENDING, OutboxMessage


def dialect_of(session: Any) -> str | None:
    """`postgresql`, `sqlite`... for a SQLAlchemy session; None for any other unit of work."""
    dialect = getattr(getattr(session, "bind", None), "dialect", None)
    return getattr(dialect, "name", None)


def shares_one_connection(database: Any) -> bool:
    """True for an in-memory SQLite database, whose every session runs on one connection.

    A relay running beside the app's requests there would commit or roll back their
    transactions along with its own.
    """
    from sqlalchemy.pool import StaticPool

    engine = getattr(database, "engine", None)
    return engine is not None and isinstance(engine.pool, StaticPool)


async def claim_skip_locked(session: Any, limit: int) -> list[OutboxMessage]:
    """Lock up to `limit` pending rows no other relay holds, oldest first (PostgreSQL).

    `FOR UPDATE SKIP LOCKED`: concurrent relays each take different rows, so none is sent twice;
    the locks last until the relay's transaction marks the rows sent and commits.
    """
    from sqlalchemy import select

    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == PENDING)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(statement)).scalars().all())
