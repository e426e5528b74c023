"""The migration lock: `core migrate`s started at once on one PostgreSQL database take turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ("MIGRATION_LOCK_KEY", "exclusive")

# The PostgreSQL advisory lock `migrate` and `rollback` hold: any 64-bit number no other tool
# on the database locks; this one spells "core_mig".
MIGRATION_LOCK_KEY = 0x636F72655F6D6967

logger = logging.getLogger("core.migrations")


@contextmanager
def exclusive(database_url: str) -> Iterator[None]:
    """Hold the database's migration lock for the block (PostgreSQL; elsewhere a no-op).

    `core migrate`s started at once, one per pod's init container say, then run one after
    the other, and the later ones read where the database stands only once the earlier
    are done, so they find nothing left to apply. The lock is a session-level advisory
    lock on a connection of its own; it goes when that connection does, even if this
    process is killed.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield
        return
    # Alembic runs env.py with asyncio.run between the two runner.run calls: that is
    # allowed, the runner's loop is not running then, and the connection just waits.
    with asyncio.Runner() as runner:
        engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            connection = runner.run(_lock(engine))
            try:
                yield
            finally:
                runner.run(connection.close())
        finally:
            runner.run(engine.dispose())


async def _lock(engine: AsyncEngine) -> AsyncConnection:
    connection = await engine.connect()
    try:
        key = {"key": MIGRATION_LOCK_KEY}
        if not await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
            logger.warning(
                "Another `core migrate` is running on this database; waiting for it to end."
            )
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
    except BaseException:
        await connection.close()
        raise
    return connection
