"""SqlAlchemyTokenStore: token state in the app's own database (AUTH_TOKEN_STORE=database).

Every replica sharing the database shares it, with no extra server. Its table, `core_auth_tokens`
(`core.auth.models.TokenRecord`), comes from the project's migrations like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from sqlalchemy import Table, and_, case, delete, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.auth.models import TokenRecord
from core.errors import ConfigurationError, TokenStoreUnavailableError

# Expired rows are deleted at most this often (seconds), by whichever write comes next.
_SWEEP_EVERY = 60.0


class SqlAlchemyTokenStore:
    """The TokenStore port on one table of the app's database (PostgreSQL or SQLite).

    Each operation is one short transaction of its own, apart from the request's unit of work:
    a logout or a revocation holds even when the request later fails. `spend` inserts the
    spent token and its successor in one transaction; a concurrent `spend` of the same token
    waits on the primary key, then reads the successor.

    Args:
        engine: the app's async engine.
        clock: epoch seconds; tests pass a fake one.

    Example:
        >>> store = SqlAlchemyTokenStore(app.container.database.database().engine)  # doctest: +SKIP
        >>> await store.mark_used("4f1c...", ttl=604800)  # doctest: +SKIP
        True
    """

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ConfigurationError(
                f"AUTH_TOKEN_STORE=database supports PostgreSQL and SQLite, not {dialect}."
            )
        self._engine = engine
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._clock = clock
        self._table: Table = TokenRecord.__table__  # type: ignore[assignment]
        self._swept = clock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self._table.name!r})"

    async def mark_used(self, jti: str, ttl: float) -> bool:
        async with self._transaction() as connection:
            return await self._claim(connection, f"used:{jti}", None, ttl)

    async def spend(
        self, jti: str, ttl: float, successor: Mapping[str, str], grace: float
    ) -> Mapping[str, str] | None:
        async with self._transaction() as connection:
            if await self._claim(connection, f"used:{jti}", None, ttl):
                if grace > 0:
                    await self._upsert(
                        connection, f"next:{jti}", json.dumps(dict(successor)), grace
                    )
                return successor
            earlier = await self._value(connection, f"next:{jti}")
        return json.loads(earlier) if earlier is not None else None

    async def revoke_family(self, family: str, ttl: float) -> None:
        async with self._transaction() as connection:
            await self._upsert(connection, f"family:{family}", None, ttl)

    async def is_revoked(self, family: str) -> bool:
        async with self._transaction() as connection:
            return bool(await self._alive(connection, [f"family:{family}"]))

    async def revoke_token(self, jti: str, ttl: float) -> None:
        async with self._transaction() as connection:
            await self._upsert(connection, f"revoked:{jti}", None, ttl)

    async def access_state(self, jti: str, family: str | None, subject: str) -> tuple[bool, int]:
        keys = [f"revoked:{jti}", f"version:{subject}"]
        if family is not None:
            keys.append(f"family:{family}")
        async with self._transaction() as connection:
            rows = await self._alive(connection, keys)
        version = rows.pop(f"version:{subject}", 0)
        return bool(rows), version

    async def session_version(self, subject: str) -> int:
        async with self._transaction() as connection:
            return (await self._alive(connection, [f"version:{subject}"])).get(
                f"version:{subject}", 0
            )

    async def bump_session_version(self, subject: str) -> int:
        table = self._table
        statement = (
            self._insert(table)
            .values(key=f"version:{subject}", number=1)
            .on_conflict_do_update(
                index_elements=[table.c.key], set_={"number": table.c.number + 1}
            )
            .returning(table.c.number)
        )
        async with self._transaction() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): `SELECT 1` on the token table's engine."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        # The engine is the app's: the database container disposes of it.
        return None

    # -- helpers ------------------------------------------------------------------------------
    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as connection:
                yield connection
                await self._maybe_sweep(connection)
        except (DBAPIError, OSError) as exc:
            raise TokenStoreUnavailableError(f"Database token store: {exc}") from exc

    async def _claim(
        self, connection: AsyncConnection, key: str, value: str | None, ttl: float
    ) -> bool:
        """Insert `key` unless a live row has it; whether this call inserted it."""
        now = self._clock()
        table = self._table
        # An expired row of the same key is taken over, as if it were gone.
        statement = (
            self._insert(table)
            .values(key=key, value=value, number=0, expires_at=now + ttl)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"value": value, "number": 0, "expires_at": now + ttl},
                where=table.c.expires_at <= now,
            )
            .returning(table.c.key)
        )
        return (await connection.execute(statement)).first() is not None

    async def _upsert(
        self, connection: AsyncConnection, key: str, value: str | None, ttl: float
    ) -> None:
        """Set `key` to expire in `ttl` seconds, never earlier than it already does."""
        now = self._clock()
        table = self._table
        expires = now + ttl
        statement = (
            self._insert(table)
            .values(key=key, value=value, number=0, expires_at=expires)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "value": value,
                    "expires_at": case(
                        (table.c.expires_at > expires, table.c.expires_at), else_=expires
                    ),
                },
            )
        )
        await connection.execute(statement)

    async def _value(self, connection: AsyncConnection, key: str) -> str | None:
        table = self._table
        statement = select(table.c.value).where(
            table.c.key == key, table.c.expires_at > self._clock()
        )
        return (await connection.execute(statement)).scalar_one_or_none()

    async def _alive(self, connection: AsyncConnection, keys: list[str]) -> dict[str, int]:
        """The live rows among `keys`: key -> number."""
        table = self._table
        statement = select(table.c.key, table.c.number).where(
            table.c.key.in_(keys),
            or_(table.c.expires_at.is_(None), table.c.expires_at > self._clock()),
        )
        return {key: number for key, number in (await connection.execute(statement)).all()}

    async def _maybe_sweep(self, connection: AsyncConnection) -> None:
        now = self._clock()
        if now - self._swept < _SWEEP_EVERY:
            return
        self._swept = now
        table = self._table
        await connection.execute(
            delete(table).where(and_(table.c.expires_at.is_not(None), table.c.expires_at <= now))
        )
