"""What the outbox relay needs to know about SQL sessions: the only SQLAlchemy code of messaging.

Everything else in `core.messaging` goes through `Model.objects` (the Repository port), so it runs
unchanged on the in-memory database.
"""

from __future__ import annotations

import zlib
from typing import Any

# The advisory lock relays take turns on: one number per database, the same in every process.
RELAY_LOCK = zlib.crc32(b"core_outbox relay")


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


async def take_turn(session: Any) -> None:
    """Wait until no other relay of this database is in a pass, then hold the turn (PostgreSQL).

    A transaction-scoped advisory lock: it is released when the pass commits or rolls back,
    and by the server when the relay's connection dies, so a killed relay hands over at once.
    One pass at a time across every process is what keeps a key's events in order: a relay
    never publishes a row while another may still be publishing (or retrying) an older one.
    """
    from sqlalchemy import text

    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK})
