"""Database errors, translated once at the adapter's edge into the framework's own.

`translated(...)` wraps every statement the repository runs (on SQLAlchemy or on the driver):
constraint violations become `UniqueViolationError` and friends (400), values a column cannot
hold `ValidationFailedError` (400), and an unreachable database `DatabaseUnavailableError` (503
with `Retry-After`). An outage is logged once, with its cause, when it starts, and once when the
database answers again; the pool is emptied at its start so recovery needs no restart.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.errors import (
    DatabaseUnavailableError,
    ForeignKeyViolationError,
    IntegrityViolationError,
    NotNullViolationError,
    UniqueViolationError,
)
from core.models import lookups

logger = logging.getLogger("core.database")

# PostgreSQL SQLSTATEs of a server that cannot serve: class 08 (connection exception), shutdown
# and start-up (57P01-57P03), too many connections (53300).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite's transient refusals: another process holds the lock, or the file is unusable.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the DBAPI error SQLAlchemy wraps, and the driver's own error behind it."""
    found = [exc]
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        found.append(orig)
    cause = getattr(found[-1], "__cause__", None)
    if isinstance(cause, BaseException):
        found.append(cause)
    return found


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or cannot serve now (as opposed to a
    statement it refused)."""
    if isinstance(exc, DatabaseUnavailableError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for error in _chain(exc):
        if isinstance(error, OSError):  # refused, reset, unreachable host, timed out
            return True
        sqlstate = str(getattr(error, "sqlstate", "") or "")
        if sqlstate.startswith(_UNAVAILABLE_STATES):
            return True
        kind = type(error)
        if kind.__module__.startswith("asyncpg") and kind.__name__ == "InterfaceError":
            # asyncpg's own "connection is closed" / "connection was closed in the middle of
            # operation" carry no SQLSTATE.
            return "closed" in str(error)
        if isinstance(error, sqlite3.OperationalError):
            return str(error).lower().startswith(_SQLITE_UNAVAILABLE)
    return False


def is_integrity_error(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError | sqlite3.IntegrityError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg's own exceptions
    return bool(sqlstate and str(sqlstate).startswith("23"))


def is_data_error(exc: BaseException) -> bool:
    """Constraint violations, and values the database cannot store (out of range, too long).

    `exc` is SQLAlchemy's wrapper, or the driver's own exception for statements run on the
    driver.
    """
    if isinstance(exc, DataError | OverflowError | sqlite3.DataError) or is_integrity_error(exc):
        return True
    # PostgreSQL's class 22 is "data exception" (e.g. 22021, a NUL byte in text), whatever
    # DBAPI class the driver maps it to; asyncpg also refuses some values before sending them
    # (an int beyond int64).
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None)
    sqlstate = (
        getattr(exc, "sqlstate", None)
        or getattr(orig, "sqlstate", None)
        or getattr(cause, "sqlstate", None)
    )
    if sqlstate and str(sqlstate).startswith("22"):
        return True
    return "invalid input for query argument" in str(exc)


_SQLITE = re.compile(r"(UNIQUE|NOT NULL|FOREIGN KEY) constraint failed(?::\s*(?P<cols>[\w., ]+))?")
_PG_KEY = re.compile(r"Key \((?P<cols>[^)]+)\)=")


def translate_integrity_error(model: type[Any], exc: Exception) -> IntegrityViolationError:
    """One error type per constraint kind, naming the field, whichever database answered.

    `exc` is SQLAlchemy's IntegrityError or the driver's own exception.
    """
    orig = getattr(exc, "orig", None) or exc
    cause = getattr(orig, "__cause__", None) or orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    message = str(orig)
    kind: type[IntegrityViolationError] = IntegrityViolationError
    field: str | None = None
    if sqlstate:  # PostgreSQL
        kind = {
            "23505": UniqueViolationError,
            "23503": ForeignKeyViolationError,
            "23502": NotNullViolationError,
        }.get(sqlstate, IntegrityViolationError)
        detail = getattr(cause, "detail", None) or ""
        match = _PG_KEY.search(detail)
        field = (
            match["cols"].split(",")[0].strip() if match else getattr(cause, "column_name", None)
        )
    elif match := _SQLITE.search(message):  # SQLite
        kind = {
            "UNIQUE": UniqueViolationError,
            "NOT NULL": NotNullViolationError,
            "FOREIGN KEY": ForeignKeyViolationError,
        }[match[1]]
        if match["cols"]:
            field = match["cols"].split(",")[0].strip().split(".")[-1]
    field = _attribute_for(model, field)
    what = {
        UniqueViolationError: "already exists",
        ForeignKeyViolationError: "refers to a missing row",
        NotNullViolationError: "is required",
    }.get(kind, "breaks a constraint")
    subject = (
        f"{model.__name__} with this {field}"
        if kind is UniqueViolationError and field
        else (f"{model.__name__}.{field}" if field else model.__name__)
    )
    return kind(f"{subject} {what}.", field=field)


def _attribute_for(model: type[Any], column_name: str | None) -> str | None:
    if column_name is None:
        return None
    mapper = lookups.mapper_of(model)
    for attr in mapper.column_attrs:
        if attr.columns[0].name == column_name:
            return attr.key
    return column_name


class _Outages:
    """Which databases (engines) are down, so an outage is reported once, not per request."""

    def __init__(self) -> None:
        # Weakly keyed by engine: an engine gone with its outage takes the mark along (an id
        # could be reused by the next engine).
        self._down: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        # Engines whose pool ran out of connections, reported once until a statement runs.
        self._busy: weakref.WeakSet[Any] = weakref.WeakSet()

    async def failed(self, bind: Any, exc: BaseException) -> DatabaseUnavailableError:
        key = bind if bind is not None else _NO_BIND
        if isinstance(exc, PoolTimeoutError):
            return self._pool_exhausted(key, bind, exc)
        driver_error = _chain(exc)[-1]
        cause = str(driver_error).splitlines()[0] if str(driver_error) else ""
        error = DatabaseUnavailableError(cause or type(driver_error).__name__)
        if key not in self._down:
            name = _name(bind)
            self._down[key] = name
            error.outage = (
                f"Database {name} is unavailable ({type(driver_error).__name__}: {cause})"
            )
            # Once per outage, with its cause. (A one-shot command reporting the error itself,
            # like `core createsuperuser`, turns this logger off.)
            logger.error("%s; requests answer 503 until it is back.", error.outage)
            await _empty_pool(bind)
        return error

    def _pool_exhausted(self, key: Any, bind: Any, exc: BaseException) -> DatabaseUnavailableError:
        # The database answers: every connection of this process's pool stayed busy for the
        # pool's timeout. The request's work was not done, so it is a 503 all the same, but no
        # outage: emptying the pool would make the next requests connect afresh, under the very
        # load that exhausted it.
        error = DatabaseUnavailableError(str(exc).splitlines()[0])
        if key not in self._busy:
            self._busy.add(key)
            logger.warning(
                "Every connection of the pool to database %s stayed busy for the pool's timeout"
                " (%s); requests that find none answer 503. DATABASE_POOL_SIZE and"
                " DATABASE_POOL_TIMEOUT set the pool.",
                _name(bind),
                error.args[0],
            )
        return error

    def answered(self, bind: Any) -> None:
        if self._down:
            name = self._down.pop(bind if bind is not None else _NO_BIND, None)
            if name is not None:
                logger.warning("Database %s is available again.", name)
        if self._busy:
            self._busy.discard(bind if bind is not None else _NO_BIND)


class _NoBind:
    """The key of sessions bound to no engine of their own."""


_NO_BIND = _NoBind()
outages = _Outages()


def _name(bind: Any) -> str:
    url = getattr(bind, "url", None)
    if url is None:
        return "database"
    try:
        return str(url.render_as_string(hide_password=True))
    except AttributeError:
        return str(url)


async def _empty_pool(bind: Any) -> None:
    # Every pooled connection died with the server: drop them all now, so that when it is back
    # the next requests connect afresh instead of each failing once on a dead connection. Not
    # for SQLite, whose in-memory database lives in its one pooled connection.
    dispose = getattr(bind, "dispose", None)
    if dispose is None or bind.dialect.name == "sqlite":
        return
    try:
        await dispose()
    except Exception:  # closing dead connections may fail too; they are dropped anyway
        logger.debug("Emptying the pool of %s failed", _name(bind), exc_info=True)


@asynccontextmanager
async def unavailable_as_503(bind: Any, *, answered: bool = True) -> AsyncIterator[None]:
    """Turn an unreachable database into `DatabaseUnavailableError` (503), logging the start
    of an outage once; and its end, when `answered` (the block talked to the database: a
    rollback or a close need not)."""
    try:
        yield
    except DatabaseUnavailableError:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise await outages.failed(bind, exc) from exc
        raise
    if answered:
        outages.answered(bind)
