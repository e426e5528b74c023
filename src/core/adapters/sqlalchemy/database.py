"""SqlAlchemyDatabase: an async engine and session factory for SQLite (aiosqlite) and PostgreSQL
(asyncpg)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from core.adapters.sqlalchemy import driver
from core.adapters.sqlalchemy.errors import unavailable_as_503
from core.errors import ConfigurationError, MissingDependencyError

_DRIVER_EXTRAS = {"asyncpg": "postgres", "aiosqlite": "sqlite"}


class SqlAlchemyDatabase:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 20,
        max_overflow: int = 0,
        pool_timeout: float = 30.0,
        pool_recycle: int = 1800,
        pool_pre_ping: bool = False,
    ) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigurationError(f"DATABASE_URL is not a valid database URL: {url!r}.") from exc
        options: dict[str, Any] = {"echo": echo}
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database in (None, "", ":memory:"):
            # One shared connection, or every session would see its own empty database.
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        elif self.is_sqlite:
            # A file: keep every connection the pool may open. A pool closes connections over
            # `pool_size` as they come back, and an aiosqlite connection is a thread: under
            # concurrent requests threads would start and stop all the time. An idle SQLite
            # connection costs no server anything.
            options.update(
                pool_size=pool_size + max_overflow,
                max_overflow=0,
                pool_timeout=pool_timeout,
                # No ROLLBACK when a connection goes back to the pool: sessions and Connections
                # end their own transactions before they return one, and a connection borrowed
                # for a read on the driver (adapters/sqlalchemy/driver.py) has none to end
                # (SQLite opens a transaction on the first write only). On aiosqlite that
                # ROLLBACK would be one more trip to the connection's thread per read.
                pool_reset_on_return=None,
            )
        else:
            options.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                pool_recycle=pool_recycle,
                pool_pre_ping=pool_pre_ping,
            )
        try:
            self.engine = create_async_engine(parsed, **options)
        except ModuleNotFoundError as exc:
            driver = parsed.get_driver_name()
            raise MissingDependencyError(driver, _DRIVER_EXTRAS.get(driver, "all")) from exc
        except Exception as exc:
            raise ConfigurationError(f"DATABASE_URL {url!r} cannot be used: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(
            self.engine, class_=_Session, expire_on_commit=False, autoflush=False
        )

    def trace(self, tracing: Any) -> None:
        """Trace every statement of this engine: SQLAlchemy's own execution through
        OpenTelemetry's SQLAlchemy instrumentation, reads and inserts run on the driver
        (`driver.run`) by the same span shape."""
        tracing.instrument_engine(self.engine)
        driver.trace(self.engine, tracing)

    def session(self) -> AsyncSession:
        return self._sessions()

    async def create_all(self, metadata: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def drop_all(self, metadata: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError) as exc:
            raise ConnectionError(f"Database at {self.engine.url!r} is unreachable: {exc}") from exc

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): `SELECT 1` on a pooled connection."""
        await self.ping()

    async def dispose(self) -> None:
        await self.engine.dispose()


class _Session(AsyncSession):
    """An AsyncSession whose commit and rollback answer an unreachable database with
    `DatabaseUnavailableError` (503) like the repository's statements do."""

    async def commit(self) -> None:
        async with unavailable_as_503(self.bind):
            await super().commit()

    async def rollback(self) -> None:
        async with unavailable_as_503(self.bind, answered=False):
            await super().rollback()

    async def close(self) -> None:
        async with unavailable_as_503(self.bind, answered=False):
            await super().close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys unless asked, and its LIKE folds ASCII case, which would make
    # `contains` behave like `icontains` here and not on PostgreSQL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
