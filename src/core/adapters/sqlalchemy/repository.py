"""SqlAlchemyRepository: the Repository port over an AsyncSession. Every statement runs inside
`_Translated`, the one place its SQL errors become the framework's (`errors.py` says how);
`statements.py` builds the SQL."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    bindparam,
    cast,
    column,
    delete,
    insert,
    inspect,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import QueryableAttribute

from core.adapters.sqlalchemy import driver
from core.adapters.sqlalchemy.errors import (
    is_data_error,
    is_integrity_error,
    is_unavailable,
    outages,
    translate_integrity_error,
)
from core.adapters.sqlalchemy.statements import (
    Binder,
    compile_where,
    filtered,
    loader_options,
    read_statement,
    where_shape,
    windowed,
)
from core.errors import DatabaseUnavailableError, ValidationFailedError
from core.models import lookups
from core.ports.repository import Query


class _Translated:
    """`async with _Translated(repository):` around a statement: the one place driver errors
    become the framework's (see `core.adapters.sqlalchemy.errors`)."""

    __slots__ = ("repository",)

    def __init__(self, repository: SqlAlchemyRepository) -> None:
        self.repository = repository

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        repository = self.repository
        bind = repository.session.bind
        if exc is None:
            outages.answered(bind)
            return
        if not isinstance(exc, Exception) or isinstance(exc, DatabaseUnavailableError):
            return
        if is_unavailable(exc):
            raise await outages.failed(bind, exc) from exc
        if is_data_error(exc):
            # A failed statement ends the transaction on PostgreSQL; roll back so the session
            # stays usable, and report the problem in the framework's own terms (a 400).
            await repository.session.rollback()
            if is_integrity_error(exc):
                raise translate_integrity_error(repository.model, exc) from exc
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise ValidationFailedError(
                f"A value does not fit its {repository.model.__name__} column: {reason}"
            ) from exc


def _stale_relations(obj: Any) -> builtins.list[str]:
    """The loaded relations of `obj` whose key column changed while they did not."""
    state = inspect(obj)
    mapper = state.mapper
    return [
        prop.key
        for prop in mapper.relationships
        if prop.key in state.dict
        and not state.attrs[prop.key].history.has_changes()
        and any(
            state.attrs[mapper.get_property_by_column(c).key].history.has_changes()
            for c in prop.local_columns
        )
    ]


def _estimate_statement() -> Select[Any]:
    """The planner's row estimate of the table named by `table_` (PostgreSQL)."""
    return (
        select(cast(column("reltuples"), BigInteger))
        .select_from(table("pg_class"))
        .where(column("oid") == cast(bindparam("table_", type_=String()), REGCLASS))
    )


class SqlAlchemyRepository:
    __slots__ = ("model", "session")

    def __init__(self, model: type[Any], session: AsyncSession) -> None:
        self.model = model
        self.session = session

    async def _flush(self) -> None:
        async with _Translated(self):
            await self.session.flush()

    async def _execute(self, statement: Any, **options: Any) -> Any:
        async with _Translated(self):
            return await self.session.execute(statement, execution_options=options)

    # `list` names a method here, so annotations in this class spell the type `builtins.list`.
    async def get(self, pk: Any) -> Any | None:
        async with _Translated(self):
            return await self.session.get(self.model, pk)

    async def list(self, query: Query) -> builtins.list[Any]:
        statement = windowed(filtered(select(query.model), query), query)
        if query.loads:
            statement = statement.options(*loader_options(query.model, query.loads))
        return list((await self._execute(statement)).scalars().all())

    async def values(self, query: Query) -> builtins.list[dict[str, Any]]:
        names = query.columns or tuple(lookups.column_types(query.model))
        rows = await self._read("rows", query, names)
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def values_list(self, query: Query) -> builtins.list[tuple[Any, ...]]:
        names = query.columns or tuple(lookups.column_types(query.model))
        return [tuple(row) for row in await self._read("rows", query, names)]

    async def values_list_counted(
        self, query: Query
    ) -> tuple[builtins.list[tuple[Any, ...]], int | None]:
        names = query.columns or tuple(lookups.column_types(query.model))
        rows = await self._read("rows_counted", query, names)
        if not rows:
            return [], (None if query.offset else 0)
        return [tuple(row[:-1]) for row in rows], int(rows[0][-1])

    async def count(self, query: Query) -> int:
        return int((await self._read("count", query, ()))[0][0])

    async def estimated_count(self, query: Query) -> int | None:
        session = self.session
        bind = session.bind
        dialect = bind.dialect if bind is not None else session.get_bind().dialect
        if dialect.name != "postgresql" or query.where.children:
            return None
        name = dialect.identifier_preparer.format_table(self.model.__table__)
        plan = driver.shaped_plan(dialect, ("estimate",), _estimate_statement)
        statement = _estimate_statement()
        rows = await self._fetch(plan, {"table_": name}, statement.params(table_=name))
        # -1: never analysed (PostgreSQL 14+); 0 before 14 could mean the same: count exactly.
        estimate = int(rows[0][0]) if rows else -1
        return estimate if estimate > 0 else None

    async def exists(self, query: Query) -> bool:
        return bool((await self._read("exists", query, ()))[0][0])

    async def insert(
        self, values: Mapping[str, Any], returning: Sequence[str], *, autocommit: bool = False
    ) -> tuple[Any, ...]:
        mapper = lookups.mapper_of(self.model)
        columns = {mapper.columns[name].key: value for name, value in values.items()}
        session = self.session
        bind = session.bind
        if autocommit and isinstance(bind, AsyncEngine) and not session.in_transaction():
            # The unit of work has done nothing yet: the INSERT is a transaction of its own, on
            # the driver (one statement on PostgreSQL; nothing left for the session to commit).
            plan = driver.insert_plan(
                bind.dialect,
                self.model.__table__,
                tuple(columns),
                tuple(mapper.columns[name].key for name in returning),
            )
            if plan.on_driver:
                return await self._insert_on_driver(bind, plan, columns)
        # Part of the unit of work: its transaction, SQLAlchemy's execution.
        statement = (
            insert(self.model.__table__)
            .values(columns)
            .returning(*(mapper.columns[name] for name in returning))
        )
        return tuple((await self._execute(statement)).one())

    async def _insert_on_driver(
        self, bind: AsyncEngine, plan: driver.Plan, columns: dict[str, Any]
    ) -> tuple[Any, ...]:
        dialect = bind.dialect
        sql, args = plan.bind_values(columns)
        async with _Translated(self):
            rows = await driver.run(bind, driver.write, dialect.name == "postgresql", sql, args)
        return tuple(plan.convert(rows)[0])

    async def _read(self, kind: str, query: Query, names: tuple[str, ...]) -> Any:
        """Rows of a read (see `read_statement`), run on the driver: no ORM, no result objects.

        The statement is compiled once per shape (columns, conditions without their values,
        ordering, whether windowed); a call binds its own values. Inside a transaction the
        session's connection runs it, so the read sees the unit of work's writes; otherwise a
        pooled connection is borrowed for this one statement and the session stays untouched
        (nothing to commit or release at the end of the request).
        """
        session = self.session
        bind = session.bind
        dialect = bind.dialect if bind is not None else session.get_bind().dialect
        values: list[Any] = []
        shape = (
            kind,
            query.model,
            names,
            where_shape(query.where, values),
            query.order_by,
            query.limit is not None,
            bool(query.offset),
        )
        plan = driver.shaped_plan(
            dialect, shape, lambda: read_statement(kind, query, names, Binder())
        )
        if not plan.on_driver:
            return (await self._execute(read_statement(kind, query, names))).all()
        params: dict[str, Any] = {f"p{i}": value for i, value in enumerate(values)}
        if query.limit is not None:
            params["limit_"] = query.limit
        if query.offset:
            params["offset_"] = query.offset
        return await self._fetch(plan, params, None)

    async def _fetch(self, plan: driver.Plan, params: dict[str, Any], statement: Any) -> Any:
        """Rows of `plan` with these values, on the driver (see `_read`); `statement` is what
        SQLAlchemy executes instead when the plan cannot run on the driver."""
        session = self.session
        bind = session.bind
        dialect = bind.dialect if bind is not None else session.get_bind().dialect
        if not plan.on_driver:
            return (await self._execute(statement)).all()
        sql, args = plan.bind_values(params)
        postgres = dialect.name == "postgresql"
        async with _Translated(self):
            if isinstance(bind, AsyncEngine) and not session.in_transaction():
                rows = await driver.run(bind, driver.fetch, postgres, sql, args)
            else:
                connection = await session.connection()
                raw = (await connection.get_raw_connection()).driver_connection
                rows = await driver.fetch(raw, postgres, sql, args)
        return plan.convert(rows)

    async def add(self, obj: Any) -> Any:
        self.session.add(obj)
        await self._flush()
        return obj

    async def add_many(self, objs: Sequence[Any]) -> builtins.list[Any]:
        self.session.add_all(objs)
        await self._flush()
        return list(objs)

    async def save(self, obj: Any) -> Any:
        stale = _stale_relations(obj)
        self.session.add(obj)
        await self._flush()
        if stale:
            # Their key column changed under them: read them again when next asked for.
            self.session.expire(obj, stale)
        return obj

    async def delete(self, obj: Any) -> None:
        await self.session.delete(obj)
        await self._flush()

    async def refresh(self, obj: Any) -> Any:
        await self.session.refresh(obj)
        return obj

    def _matching(self, query: Query) -> ColumnElement[bool] | None:
        if query.limit is not None or query.offset:
            pk: QueryableAttribute[Any] = getattr(self.model, lookups.primary_key(self.model))
            window = windowed(filtered(select(pk), query), query)
            return pk.in_(window.scalar_subquery())
        return compile_where(self.model, query.where) if query.where.children else None

    async def update_where(self, query: Query, values: Mapping[str, Any]) -> int:
        statement = update(self.model).values(**values)
        if (criteria := self._matching(query)) is not None:
            statement = statement.where(criteria)
        result = await self._execute(statement, synchronize_session="fetch")
        return int(result.rowcount)

    async def delete_where(self, query: Query) -> int:
        statement = delete(self.model)
        if (criteria := self._matching(query)) is not None:
            statement = statement.where(criteria)
        result = await self._execute(statement, synchronize_session="fetch")
        return int(result.rowcount)
