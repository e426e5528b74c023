"""SqlAlchemyRepository: the Repository port over an AsyncSession. Every statement runs inside
`_Translated`, the one place its SQL errors become the framework's (`errors.py` says how)."""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased

from core.adapters.sqlalchemy import driver
from core.adapters.sqlalchemy.errors import (
    is_data_error,
    is_integrity_error,
    is_unavailable,
    outages,
)
from core.errors import (
    DatabaseUnavailableError,
    ForeignKeyViolationError,
    IntegrityViolationError,
    NotNullViolationError,
    UniqueViolationError,
    ValidationFailedError,
)
from core.models import lookups
from core.ports.repository import Condition, Node, Query

_LIKE = frozenset({"contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"})
_LIKE_ESCAPE = "/"


def _operands(condition: Condition) -> tuple[Any, ...]:
    """The values a condition binds, in order: LIKE patterns escaped, none for IS NULL."""
    value = condition.value
    lookup = condition.lookup
    if lookup == "exact":
        return () if value is None else (value,)
    if lookup == "isnull":
        return ()
    if lookup == "range":
        return tuple(value)
    if lookup == "in":
        return (list(value),)
    if lookup in _LIKE:
        escaped = value.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        return (escaped.replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_"),)
    return (value,)


class _Binder:
    """Stands in a named bind parameter (`p0`, `p1`, ...) for each operand, in the order
    `where_values` lists them, so one compiled statement serves every query of its shape."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, column: Any, lookup: str, operands: tuple[Any, ...]) -> tuple[Any, ...]:
        binds = []
        for _ in operands:
            binds.append(bindparam(f"p{self.count}", type_=column.type, expanding=lookup == "in"))
            self.count += 1
        return tuple(binds)


def _compare(column: Any, condition: Condition, operands: tuple[Any, ...]) -> ColumnElement[bool]:
    # Declared once: with an Any operand, mypy types `column > value` as Any.
    expression: ColumnElement[bool]
    match condition.lookup:
        case "exact":
            expression = column == operands[0] if operands else column.is_(None)
        case "iexact":
            expression = func.lower(column) == func.lower(operands[0])
        case "contains":
            expression = column.contains(operands[0], escape=_LIKE_ESCAPE)
        case "icontains":
            expression = column.icontains(operands[0], escape=_LIKE_ESCAPE)
        case "startswith":
            expression = column.startswith(operands[0], escape=_LIKE_ESCAPE)
        case "istartswith":
            expression = column.istartswith(operands[0], escape=_LIKE_ESCAPE)
        case "endswith":
            expression = column.endswith(operands[0], escape=_LIKE_ESCAPE)
        case "iendswith":
            expression = column.iendswith(operands[0], escape=_LIKE_ESCAPE)
        case "in":
            expression = column.in_(operands[0])
        case "gt":
            expression = column > operands[0]
        case "gte":
            expression = column >= operands[0]
        case "lt":
            expression = column < operands[0]
        case "lte":
            expression = column <= operands[0]
        case "isnull":
            expression = column.is_(None) if condition.value else column.is_not(None)
        case "range":
            expression = column.between(*operands)
        case lookup:
            raise AssertionError(f"unchecked lookup {lookup!r}")  # lookups.resolve admits no other
    return expression


def _condition(entity: Any, condition: Condition, binder: _Binder | None) -> ColumnElement[bool]:
    if not condition.hops:
        column = getattr(entity, condition.column)
        operands = _operands(condition)
        if binder is not None:
            operands = binder(column, condition.lookup, operands)
        return _compare(column, condition, operands)
    # Across a relation: EXISTS (a correlated subquery) instead of a JOIN, so a to-many relation
    # never duplicates rows and `exclude` keeps SQL's meaning.
    hop, rest = condition.hops[0], condition.hops[1:]
    target = aliased(hop.target)
    inner = _condition(
        target, Condition(rest, condition.column, condition.lookup, condition.value), binder
    )
    return exists().where(getattr(target, hop.remote) == getattr(entity, hop.local), inner)


def compile_where(entity: Any, node: Node, binder: _Binder | None = None) -> ColumnElement[bool]:
    """The WHERE clause of `node`: with its values, or with `binder`'s named parameters."""
    parts = [
        compile_where(entity, child, binder)
        if isinstance(child, Node)
        else _condition(entity, child, binder)
        for child in node.children
    ]
    if node.op == "not":
        return not_(and_(*parts))
    if len(parts) == 1:
        # AND / OR of one condition is that condition (`and_(x)` returns x, slowly); whoever
        # embeds it (`where`, `and_`, `or_`, `not_`) adds the parentheses it needs.
        return parts[0]
    if node.op == "or":
        return or_(*parts) if parts else false()
    return and_(*parts) if parts else true()


def where_shape(node: Node, values: list[Any]) -> tuple[Any, ...]:
    """`node` without its values (hashable: what its SQL depends on), and its operands appended
    to `values` in the order `compile_where` with a `_Binder` names them."""
    shape: list[Any] = [node.op]
    for child in node.children:
        if isinstance(child, Node):
            shape.append(where_shape(child, values))
            continue
        operands = _operands(child)
        values.extend(operands)
        shape.append(
            (
                child.hops,
                child.column,
                child.lookup,
                len(operands),
                bool(child.value) if child.lookup == "isnull" else None,
            )
        )
    return tuple(shape)


def _nullable(attribute: Any) -> bool:
    return bool(getattr(attribute.property.columns[0], "nullable", True))


def _order(entity: Any, query: Query) -> list[Any]:
    # NULLs sort as PostgreSQL sorts them by default, on every backend. A NOT NULL column (a
    # primary key, most orderings) has no NULLs to place, so it orders by the bare column.
    orderings = []
    for o in query.order_by:
        column = getattr(entity, o.column)
        if not _nullable(column):
            orderings.append(column.desc() if o.descending else column)
        elif o.descending:
            orderings.append(column.desc().nulls_first())
        else:
            orderings.append(column.asc().nulls_last())
    return orderings


def _windowed(statement: Select[Any], query: Query, bound: bool = False) -> Select[Any]:
    if query.order_by:
        statement = statement.order_by(*_order(query.model, query))
    if query.limit is not None:
        statement = statement.limit(bindparam("limit_", type_=Integer()) if bound else query.limit)
    if query.offset:
        statement = statement.offset(
            bindparam("offset_", type_=Integer()) if bound else query.offset
        )
    return statement


def _filtered(statement: Select[Any], query: Query, binder: _Binder | None = None) -> Select[Any]:
    if query.where.children:
        statement = statement.where(compile_where(query.model, query.where, binder))
    return statement


def _read_statement(
    kind: str, query: Query, names: tuple[str, ...], binder: _Binder | None = None
) -> Select[Any]:
    """The SELECT of a read: `rows` of the named columns, their `count`, or whether any
    `exists`; with the query's values, or (with `binder`) named parameters for them."""
    bound = binder is not None
    if kind == "rows":
        statement = select(*(getattr(query.model, name) for name in names))
        return _windowed(_filtered(statement, query, binder), query, bound)
    if kind == "count":
        if query.limit is not None or query.offset:
            inner = _windowed(_filtered(select(query.model), query, binder), query, bound)
            return select(func.count()).select_from(inner.subquery())
        return _filtered(select(func.count()).select_from(query.model), query, binder)
    inner = _windowed(_filtered(select(query.model), query, binder), query, bound).limit(1)
    return select(exists(inner))


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
        statement = _windowed(_filtered(select(query.model), query), query)
        return list((await self._execute(statement)).scalars().all())

    async def values(self, query: Query) -> builtins.list[dict[str, Any]]:
        names = query.columns or tuple(lookups.column_types(query.model))
        rows = await self._read("rows", query, names)
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def values_list(self, query: Query) -> builtins.list[tuple[Any, ...]]:
        names = query.columns or tuple(lookups.column_types(query.model))
        return [tuple(row) for row in await self._read("rows", query, names)]

    async def count(self, query: Query) -> int:
        return int((await self._read("count", query, ()))[0][0])

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
        """Rows of a read (see `_read_statement`), run on the driver: no ORM, no result objects.

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
            dialect, shape, lambda: _read_statement(kind, query, names, _Binder())
        )
        if not plan.on_driver:
            return (await self._execute(_read_statement(kind, query, names))).all()
        params = {f"p{i}": value for i, value in enumerate(values)}
        if query.limit is not None:
            params["limit_"] = query.limit
        if query.offset:
            params["offset_"] = query.offset
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
        self.session.add(obj)
        await self._flush()
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
            window = _windowed(_filtered(select(pk), query), query)
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
