"""The SQL of repository reads and bulk writes, built from a `Query` (the port's criteria).

A WHERE clause compiles with its values, or with named bind parameters (`Binder`) so that one
compiled statement serves every query of its shape (`where_shape`); the repository runs those
on the driver (see `driver.py`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    extract,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.sql.functions import FunctionElement

from core.models import relations
from core.models.lookups import typed_cache
from core.ports.repository import DATE_PARTS, Condition, Load, Node, Query

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


class Binder:
    """Stands in a named bind parameter (`p0`, `p1`, ...) for each operand, in the order
    `where_values` lists them, so one compiled statement serves every query of its shape."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, column: Any, lookup: str, operands: tuple[Any, ...]) -> tuple[Any, ...]:
        binds = []
        for _ in operands:
            # A date part compares with an integer, not with the column's own type.
            type_ = Integer() if lookup in DATE_PARTS else column.type
            binds.append(bindparam(f"p{self.count}", type_=type_, expanding=lookup == "in"))
            self.count += 1
        return tuple(binds)


class _InUTC(FunctionElement[Any]):
    """A timestamp as UTC wall-clock time, so date parts do not depend on the session's zone.

    PostgreSQL's `timestamptz` answers EXTRACT in the session's time zone; SQLite stores UTC
    wall-clock text already (see `UTCDateTime`).
    """

    inherit_cache = True
    name = "in_utc"


@compiles(_InUTC)
def _in_utc(element: _InUTC, compiler: Any, **kw: Any) -> str:
    return compiler.process(list(element.clauses)[0], **kw)  # type: ignore[no-any-return]


@compiles(_InUTC, "postgresql")
def _in_utc_postgresql(element: _InUTC, compiler: Any, **kw: Any) -> str:
    return f"timezone('UTC', {compiler.process(list(element.clauses)[0], **kw)})"


def _date_part(column: Any, part: str) -> Any:
    timezone = getattr(getattr(column.type, "impl", column.type), "timezone", False)
    return extract(part, _InUTC(column) if timezone else column)


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
        case "year" | "month" | "day":
            # SQLAlchemy writes EXTRACT for PostgreSQL and STRFTIME for SQLite.
            expression = _date_part(column, condition.lookup) == operands[0]
        case lookup:
            raise AssertionError(f"unchecked lookup {lookup!r}")  # lookups.resolve admits no other
    return expression


def _condition(entity: Any, condition: Condition, binder: Binder | None) -> ColumnElement[bool]:
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


def compile_where(entity: Any, node: Node, binder: Binder | None = None) -> ColumnElement[bool]:
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
    to `values` in the order `compile_where` with a `Binder` names them."""
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


def windowed(statement: Select[Any], query: Query, bound: bool = False) -> Select[Any]:
    if query.order_by:
        statement = statement.order_by(*_order(query.model, query))
    if query.limit is not None:
        statement = statement.limit(bindparam("limit_", type_=Integer()) if bound else query.limit)
    if query.offset:
        statement = statement.offset(
            bindparam("offset_", type_=Integer()) if bound else query.offset
        )
    return statement


@typed_cache
def loader_options(model: type[Any], loads: tuple[Load, ...]) -> tuple[Any, ...]:
    """SQLAlchemy's loader options for `loads` (`joinedload` / `selectinload`, nested along each
    path), built once per model and loads."""

    def below(owner: type[Any], path: tuple[str, ...]) -> list[Any]:
        options = []
        for load in loads:
            if load.path[:-1] != path:
                continue
            attribute = getattr(owner, load.path[-1])
            option = (joinedload if load.strategy == "joined" else selectinload)(attribute)
            nested = below(attribute.property.mapper.class_, load.path)
            options.append(option.options(*nested) if nested else option)
        return options

    return tuple(below(model, ()))


def filtered(statement: Select[Any], query: Query, binder: Binder | None = None) -> Select[Any]:
    if query.where.children:
        statement = statement.where(compile_where(query.model, query.where, binder))
    return statement


def _selected(model: type[Any], names: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    """The columns named (`"author__name"` across to-one relations, `relations.value_path`)
    and the LEFT OUTER JOINs they need, one per relation path, each to its own alias."""
    columns: list[Any] = []
    joins: list[tuple[Any, Any]] = []
    reached: dict[tuple[str, ...], Any] = {}
    for name in names:
        walked, column = relations.value_path(model, name)
        owner: Any = model
        path: tuple[str, ...] = ()
        for step in walked:
            path = (*path, step.name)
            found = reached.get(path)
            if found is None:
                found = reached[path] = aliased(step.target)
                joins.append((found, getattr(owner, step.name).of_type(found)))
            owner = found
        columns.append(getattr(owner, column))
    return columns, joins


def read_statement(
    kind: str, query: Query, names: tuple[str, ...], binder: Binder | None = None
) -> Select[Any]:
    """The SELECT of a read: `rows` of the named columns (`rows_counted`: each with the count
    of all matching rows as its last value), their `count`, or whether any `exists`; with the
    query's values, or (with `binder`) named parameters for them."""
    bound = binder is not None
    if kind in ("rows", "rows_counted"):
        selected, joins = _selected(query.model, names)
        if kind == "rows_counted":
            # The count of every matching row, whatever the page's LIMIT/OFFSET: an uncorrelated
            # scalar subquery, which PostgreSQL (an InitPlan) and SQLite run once per statement.
            # A `count(*) OVER ()` window would do it too, but it makes the database read and
            # carry every matching row before the page is cut: on SQLite that costs more than
            # the page (1000 rows: 3x a separate COUNT's CPU). Its conditions bind the same
            # named parameters as the outer WHERE (a fresh `Binder` numbers them alike).
            count = filtered(
                select(func.count()).select_from(query.model),
                query,
                None if binder is None else Binder(),
            )
            selected.append(count.correlate(None).scalar_subquery())
        statement = select(*selected)
        if joins:
            statement = statement.select_from(query.model)
            for target, onclause in joins:
                statement = statement.outerjoin(target, onclause)
        return windowed(filtered(statement, query, binder), query, bound)
    if kind == "count":
        if query.limit is not None or query.offset:
            inner = windowed(filtered(select(query.model), query, binder), query, bound)
            return select(func.count()).select_from(inner.subquery())
        return filtered(select(func.count()).select_from(query.model), query, binder)
    inner = windowed(filtered(select(query.model), query, binder), query, bound).limit(1)
    return select(exists(inner))
