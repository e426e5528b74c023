"""Reads that bypass SQLAlchemy's execution layer: SQLAlchemy compiles and pools, the driver runs.

SQLAlchemy's async execution (greenlet bridge, cursor adaptation, result objects) costs several
times what asyncpg or aiosqlite spend on a short query (bench/http/README.md measures it). For
reads whose rows go straight to a response, and for single-row inserts, the repository compiles
a statement once per shape with named binds (the `shape` is the repository's: columns, and
conditions without their values), binds each call's values with SQLAlchemy's bind processors,
runs the SQL on a pooled connection's driver and applies SQLAlchemy's result processors to the
rows. The SQL text, the parameter conversion and the value conversion are SQLAlchemy's, so the
rows equal what `session.execute` would return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Float, Insert, Numeric, Select, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlalchemy.util import LRUCache
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from core.adapters.sqlalchemy.errors import is_unavailable

# Per traced engine (`trace`), what opens a span around each statement run here.
_TRACED: WeakKeyDictionary[Any, Callable[[str], Any]] = WeakKeyDictionary()

# Compiled plans per dialect, keyed by shape: as many as SQLAlchemy's own compiled cache keeps.
_PLANS: WeakKeyDictionary[Dialect, LRUCache[Any, Plan]] = WeakKeyDictionary()
_CACHE_SIZE = 500
_DRIVERS = frozenset({"asyncpg", "aiosqlite"})  # the drivers `fetch` and `write` speak
_PG_FLOAT8, _PG_NUMERIC = 701, 1700  # PostgreSQL type OIDs, as asyncpg reports them

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """A statement compiled for one dialect, with how to bind its values and read its rows."""

    compiled: SQLCompiler
    sql: str
    names: tuple[str, ...]
    bind_processors: dict[str, Processor]
    # Late-rendered parameters (IN lists) change the SQL text with each call's values.
    expanding: bool
    # One per selected column; None when no column needs converting (rows are used as they are).
    result_processors: tuple[Processor | None, ...] | None
    # False for a statement whose columns' conversion needs SQLAlchemy's own result objects
    # (a dialect type this module cannot prepare): the repository executes it the usual way.
    on_driver: bool = True
    # An INSERT's columns whose Python-side default SQLAlchemy would compute: (bind, default).
    prefetch: tuple[tuple[str, Any], ...] = ()
    # The values the statement's binds were compiled with, by name.
    literals: dict[str, Any] = field(default_factory=dict)

    def bind_values(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and positional values for parameters given by bind name (an INSERT
        planned by `insert_plan` binds each column under its key); a bind not given keeps the
        value it was compiled with (a literal such as `LIMIT 1`)."""
        params = {**self.literals, **params}
        if self.prefetch:
            context = _DefaultContext(params)
            for name, default in self.prefetch:
                params[name] = default.arg(context) if default.is_callable else default.arg
        sql, names, processors = self.sql, self.names, self.bind_processors
        values: Mapping[str, Any] = params
        if self.expanding:
            state = self.compiled.construct_expanded_state(params, escape_names=False)
            sql, names, processors, values = (
                state.statement,
                tuple(state.positiontup or ()),
                {**processors, **state.processors},  # the expanded values' own processors
                state.parameters,
            )
        return sql, [
            processors[name](values[name]) if name in processors else values[name] for name in names
        ]

    def convert(self, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        """Rows as SQLAlchemy would return them (booleans and datetimes on SQLite, say)."""
        processors = self.result_processors
        if processors is None:
            return rows
        return [
            tuple(
                value if process is None or value is None else process(value)
                for process, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]


class _DefaultContext:
    """What a context-sensitive column default may ask SQLAlchemy's execution context for."""

    __slots__ = ("current_parameters",)

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.current_parameters = parameters

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.current_parameters


def shaped_plan(dialect: Dialect, shape: Hashable, statement: Callable[[], Select[Any]]) -> Plan:
    """The plan for a statement of this `shape`, built by `statement()` on first use; its
    binds are named, and `Plan.bind_values` takes this call's values by name."""
    plans = _PLANS.get(dialect)
    if plans is None:
        plans = _PLANS[dialect] = LRUCache(_CACHE_SIZE)
    found = plans.get(shape)
    if found is None:
        found = plans[shape] = _compile(dialect, statement())
    return found


def insert_plan(
    dialect: Dialect, table: Table, keys: tuple[str, ...], returning: tuple[str, ...]
) -> Plan:
    """The plan of `INSERT INTO table (keys...) RETURNING returning...`, whose binds are named
    by column key; columns left out get their defaults (`Plan.prefetch`, or the server's)."""
    plans = _PLANS.get(dialect)
    if plans is None:
        plans = _PLANS[dialect] = LRUCache(_CACHE_SIZE)
    shape = ("insert", table, keys, returning)
    found = plans.get(shape)
    if found is None:
        statement = insert(table).returning(*(table.c[name] for name in returning))
        found = plans[shape] = _compile(dialect, statement, column_keys=list(keys))
    return found


def _compile(
    dialect: Dialect, statement: Select[Any] | Insert, column_keys: list[str] | None = None
) -> Plan:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    assert isinstance(compiled, SQLCompiler)
    if dialect.driver not in _DRIVERS:  # another driver (aiomysql, say): SQLAlchemy executes
        return Plan(compiled, compiled.string, (), {}, False, None, on_driver=False)
    try:
        # The selected columns, or an INSERT's RETURNING ones.
        processors = tuple(
            _result_processor(dialect, column.type) for column in statement.exported_columns
        )
    except (TypeError, NotImplementedError, SQLAlchemyError):  # a type this cannot prepare
        return Plan(compiled, compiled.string, (), {}, False, None, on_driver=False)
    prefetch = tuple((column.key, column.default) for column in compiled.insert_prefetch)
    if any(d is None or not (d.is_scalar or d.is_callable) for _, d in prefetch):  # a sequence
        return Plan(compiled, compiled.string, (), {}, False, None, on_driver=False)
    expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
    bind_processors: dict[str, Processor] = {
        name: process
        for name, parameter in compiled.binds.items()
        if (process := parameter.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    }
    return Plan(
        compiled=compiled,
        sql=compiled.string,
        names=tuple(compiled.positiontup or ()),
        bind_processors=bind_processors,
        expanding=expanding,
        result_processors=processors if any(p is not None for p in processors) else None,
        prefetch=prefetch,
        literals={name: bind.effective_value for name, bind in compiled.binds.items()},
    )


def _result_processor(dialect: Dialect, type_: TypeEngine[Any]) -> Processor | None:
    # A dialect may choose a processor by the type code the driver reports for the column
    # (SQLAlchemy's asyncpg dialect does, for numbers); the declared type tells it here.
    base = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    coltype = None
    if dialect.name == "postgresql" and isinstance(base, Numeric | Float):
        coltype = _PG_FLOAT8 if isinstance(base, Float) else _PG_NUMERIC
    return type_.dialect_impl(dialect).result_processor(dialect, coltype)


def trace(engine: AsyncEngine, tracing: Any) -> None:
    """Open a client span around each statement `run` runs on `engine`, shaped as
    OpenTelemetry's SQLAlchemy instrumentation shapes those of SQLAlchemy's own execution."""
    sync = engine.sync_engine
    attributes = {"db.system": sync.dialect.name}
    if sync.url.database:
        attributes["db.name"] = sync.url.database

    def span(sql: str) -> Any:
        if not tracing.instrumenting():  # as the SQLAlchemy instrumentation does
            return contextlib.nullcontext()
        operation = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"
        name = f"{operation} {sync.url.database}" if sync.url.database else operation
        return tracing.span(name, kind="client", attributes={**attributes, "db.statement": sql})

    _TRACED[sync] = span


async def run(
    engine: AsyncEngine,
    statement: Callable[[Any, bool, str, list[Any]], Awaitable[Any]],
    postgres: bool,
    sql: str,
    args: list[Any],
) -> Any:
    """`statement` (`fetch` or `write`) on a connection borrowed from the pool for it alone.

    Checkout, statement and checkin run in one greenlet (the pool's own I/O, a pre-ping or a
    reset, needs one): one switch into it instead of one for the checkout and one for the
    checkin. A connection that fails the way a lost server makes it fail is invalidated rather
    than put back, so the pool never hands it out again (SQLAlchemy does the same on its own
    path).
    """
    span = _TRACED.get(engine.sync_engine) if _TRACED else None
    if span is None:
        return await greenlet_spawn(_run_borrowed, engine, statement, postgres, sql, args)
    with span(sql):
        return await greenlet_spawn(_run_borrowed, engine, statement, postgres, sql, args)


def _run_borrowed(
    engine: AsyncEngine,
    statement: Callable[[Any, bool, str, list[Any]], Awaitable[Any]],
    postgres: bool,
    sql: str,
    args: list[Any],
) -> Any:
    pooled = engine.sync_engine.pool.connect()
    try:
        return await_(statement(pooled.driver_connection, postgres, sql, args))
    except Exception as exc:
        if is_unavailable(exc):
            pooled.invalidate(exc)
        raise
    finally:
        pooled.close()


async def fetch(driver_connection: Any, postgres: bool, sql: str, args: list[Any]) -> Any:
    """Run `sql` on an asyncpg or aiosqlite connection; the rows as the driver gives them."""
    if postgres:
        return await driver_connection.fetch(sql, *args)
    return await driver_connection.execute_fetchall(sql, args)


async def write(driver_connection: Any, postgres: bool, sql: str, args: list[Any]) -> Any:
    """Run one writing statement (with RETURNING) as its own transaction; its rows.

    asyncpg outside a transaction commits each statement itself. Python's sqlite3 opens a
    transaction before a write, so it is committed here, or rolled back when the write fails:
    the connection goes back to the pool with none open.
    """
    if postgres:
        return await driver_connection.fetch(sql, *args)
    try:
        rows = await driver_connection.execute_fetchall(sql, args)
    except BaseException:
        await driver_connection.rollback()
        raise
    await driver_connection.commit()
    return rows
