"""SqlAlchemyIdempotencyStore: idempotency keys in the app's own database, written in the
request's transaction (IDEMPOTENCY_STORE=database, the default).

Its table, `core_idempotency_keys` (`core.idempotency.models.IdempotencyRecord`), comes from the
project's migrations like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.adapters.sqlalchemy.errors import unavailable_as_503
from core.errors import (
    ConfigurationError,
    IdempotencyKeyInUseError,
    IdempotencyKeyMismatchError,
)
from core.idempotency.models import IdempotencyRecord
from core.ports.idempotency import StoredResponse

logger = logging.getLogger("core.idempotency")

# Expired rows are deleted at most this often (seconds), in a transaction of their own.
_PURGE_EVERY = 300.0
# PostgreSQL's `lock_not_available`: lock_timeout ran out waiting for the other request.
_LOCK_NOT_AVAILABLE = "55P03"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlAlchemyIdempotencyStore:
    """The IdempotencyStore port on one table of the app's database (PostgreSQL or SQLite).

    Transactional: `claim` inserts the key's row in the request's own transaction (as its
    first write), `save` fills in the response in that same transaction, so the key, the data
    and the outbox rows commit together, and a rollback leaves no trace of the key.

    A concurrent request with the same key blocks on the row's primary key until the first
    commits (then finds its response) or rolls back (then owns the key); the wait is bounded
    by `wait` (PostgreSQL `lock_timeout`, SQLite `busy_timeout`, for that one statement),
    past which it answers 409. SQLite has one writer at a time: a duplicate that already read
    in its transaction may get its 409 at once rather than wait.

    Args:
        engine: the app's async engine (for `check` and the purge).
        clock: the current UTC time; tests pass a fake one.
    """

    transactional = True

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = _utcnow) -> None:
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ConfigurationError(
                f"IDEMPOTENCY_STORE=database supports PostgreSQL and SQLite, not {dialect}."
            )
        self._engine = engine
        self._postgres = dialect == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert
        self._clock = clock
        self._table: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
        self._purged = time.monotonic()
        self._purging: asyncio.Task[int] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self._table.name!r})"

    async def claim(
        self, session: Any, key: str, fingerprint: str, *, ttl: float, wait: float
    ) -> StoredResponse | None:
        self._maybe_purge()
        now = self._clock()
        table = self._table
        expires = now + timedelta(seconds=ttl)
        values = {
            "id": key,
            "fingerprint": fingerprint,
            "status_code": None,
            "headers": None,
            "body": None,
            "expires_at": expires,
        }
        # An expired row of the same key is taken over, as if it were gone.
        statement = (
            self._insert(table)
            .values(created_at=now, **values)
            .on_conflict_do_update(
                index_elements=[table.c.id],
                set_={**values, "created_at": now},
                where=table.c.expires_at <= now,
            )
            .returning(table.c.id)
        )
        async with unavailable_as_503(session.bind):
            try:
                await self._bound_wait(session, wait)
                owned = (await session.execute(statement)).first() is not None
                await self._bound_wait(session, None)
            except DBAPIError as exc:
                if self._lock_timeout(exc):
                    raise IdempotencyKeyInUseError(retry_after=max(wait, 1.0)) from exc
                raise
            if owned:
                return None
            row = (
                await session.execute(
                    select(
                        table.c.fingerprint, table.c.status_code, table.c.headers, table.c.body
                    ).where(table.c.id == key)
                )
            ).first()
        if row is None:  # deleted by a purge in between: the key is free
            return await self.claim(session, key, fingerprint, ttl=ttl, wait=wait)
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyMismatchError()
        if row.status_code is None:  # only seen by the request that claimed it
            raise IdempotencyKeyInUseError(retry_after=max(wait, 1.0))
        return StoredResponse(
            row.status_code,
            tuple((str(name), str(value)) for name, value in row.headers or ()),
            bytes(row.body or b""),
        )

    async def save(self, session: Any, key: str, response: StoredResponse, *, ttl: float) -> None:
        table = self._table
        async with unavailable_as_503(session.bind):
            await session.execute(
                update(table)
                .where(table.c.id == key)
                .values(
                    status_code=response.status_code,
                    headers=[list(pair) for pair in response.headers],
                    body=response.body,
                )
            )

    async def release(self, session: Any, key: str) -> None:
        """Take the claim back out of `session`'s unit of work (a request that failed needs
        no call: its rollback takes the claim away)."""
        if session is None:
            return
        table = self._table
        async with unavailable_as_503(session.bind):
            await session.execute(
                delete(table).where(table.c.id == key, table.c.status_code.is_(None))
            )

    async def purge(self) -> int:
        """Delete the rows past `expires_at`, in a transaction of their own."""
        table = self._table
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(table).where(table.c.expires_at <= self._clock())
            )
        return int(result.rowcount or 0)

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): `SELECT 1` on the app's engine."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        purging, self._purging = self._purging, None
        if purging is not None and not purging.done():
            purging.cancel()
            await asyncio.gather(purging, return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------
    async def _bound_wait(self, session: Any, wait: float | None) -> None:
        """Bound how long the next statement waits for another transaction's lock to `wait`
        seconds; None puts the connection's own limit back."""
        if self._postgres:
            if wait is None:
                await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
            else:
                milliseconds = max(1, int(wait * 1000))
                await session.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))
        else:
            # The engine's own busy timeout (5 s) is set for every connection it opens.
            milliseconds = 5000 if wait is None else max(1, int(wait * 1000))
            await session.execute(text(f"PRAGMA busy_timeout = {milliseconds}"))

    @staticmethod
    def _lock_timeout(exc: DBAPIError) -> bool:
        orig = exc.orig
        if str(getattr(orig, "sqlstate", "") or "") == _LOCK_NOT_AVAILABLE:
            return True
        cause = getattr(orig, "__cause__", None)
        if str(getattr(cause, "sqlstate", "") or "") == _LOCK_NOT_AVAILABLE:
            return True
        # SQLite: another connection holds the write lock past the wait.
        return "database is locked" in str(orig).lower()

    def _maybe_purge(self) -> None:
        # Expired rows never count (the claim takes them over), so deleting them is
        # housekeeping: at most every few minutes, in the background, never in a request's
        # transaction.
        now = time.monotonic()
        if now - self._purged < _PURGE_EVERY or (
            self._purging is not None and not self._purging.done()
        ):
            return
        self._purged = now
        self._purging = asyncio.create_task(self._purge_quietly(), name="core-idempotency-purge")

    async def _purge_quietly(self) -> int:
        try:
            return await self.purge()
        except Exception:
            logger.warning("Purging expired idempotency keys failed; retrying later", exc_info=True)
            return 0
