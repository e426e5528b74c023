"""Repository port: how the framework reads and writes models, whatever stores them.

A query is plain data (`Query`): a tree of conditions, an ordering and a window. The models
layer builds and validates it (every field path and lookup is checked before it gets here); an
adapter only translates it to its technology.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

LOOKUPS = frozenset(
    {
        "exact",
        "iexact",
        "contains",
        "icontains",
        "in",
        "gt",
        "gte",
        "lt",
        "lte",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "isnull",
        "range",
        "year",
        "month",
        "day",
    }
)
DATE_PARTS = frozenset({"year", "month", "day"})
"""Lookups comparing one part of a date or datetime column with an integer (`created_at__year`)."""

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Hop:
    """One step across a relation: rows of `target` whose `remote` column equals our `local`."""

    local: str
    target: type[Any]
    remote: str


@dataclass(frozen=True, slots=True)
class Condition:
    """`<hops...>.column <lookup> value`, with the value already converted to the column's type."""

    hops: tuple[Hop, ...]
    column: str
    lookup: str
    value: Any


@dataclass(frozen=True, slots=True)
class Node:
    """A boolean combination of conditions: `and`/`or` of children, or `not` of one child."""

    op: Literal["and", "or", "not"]
    children: tuple[Node | Condition, ...]


@dataclass(frozen=True, slots=True)
class Ordering:
    column: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Load:
    """Load the relation at `path` (relationship names, from the query's model) with the objects
    a `list` returns: `joined` into the same statement (a LEFT OUTER JOIN; to-one relations
    only) or `selectin` (one more statement per relation, any relation).

    A query's `loads` hold every prefix of a path before the path itself, each once.
    """

    path: tuple[str, ...]
    strategy: Literal["joined", "selectin"]


@dataclass(frozen=True, slots=True)
class Query:
    """What to read: rows of `model` matching `where`, ordered, then windowed; and the relations
    (`loads`) to load with the objects `list` returns (row reads ignore them)."""

    model: type[Any]
    where: Node = field(default_factory=lambda: Node("and", ()))
    order_by: tuple[Ordering, ...] = ()
    limit: int | None = None
    offset: int = 0
    columns: tuple[str, ...] | None = None
    loads: tuple[Load, ...] = ()


@runtime_checkable
class Repository(Protocol[M]):
    """Reads and writes one model's rows inside a unit of work.

    Writes are visible to later reads of the same unit of work at once and become durable when
    the unit of work commits. Constraint failures raise `UniqueViolationError`,
    `ForeignKeyViolationError` or `NotNullViolationError` (naming the field when known); a
    driver's own exception never leaks.
    """

    # `list` names a method here, so annotations in this class spell the type `builtins.list`.
    async def get(self, pk: Any) -> M | None: ...
    async def list(self, query: Query) -> builtins.list[M]:
        """The matching objects, each relation of `query.loads` loaded on them (a to-one as the
        object or None, a to-many as a list); other relations stay unloaded (reading one raises
        `RelationNotLoadedError`)."""
        ...

    async def values(self, query: Query) -> builtins.list[dict[str, Any]]: ...
    async def values_list(self, query: Query) -> builtins.list[tuple[Any, ...]]:
        """Rows as tuples of `query.columns` (every column when None), no instances built."""
        ...

    async def values_list_counted(
        self, query: Query
    ) -> tuple[builtins.list[tuple[Any, ...]], int | None]:
        """`values_list(query)`, and the count of the rows matching `query` without its window,
        read in one statement where the store allows (the count a scalar subquery). The count is
        None when the window starts past the first row and holds none."""
        ...

    async def count(self, query: Query) -> int: ...
    async def estimated_count(self, query: Query) -> int | None:
        """An estimate of `count(query)` the store keeps cheaply (PostgreSQL's planner statistics
        for a query with no conditions), or None when it keeps none."""
        ...

    async def exists(self, query: Query) -> bool: ...
    async def add(self, obj: M) -> M: ...
    async def insert(
        self, values: Mapping[str, Any], returning: Sequence[str], *, autocommit: bool = False
    ) -> tuple[Any, ...]:
        """Insert one row of column values (the model's defaults fill the rest) and return the
        `returning` columns of the stored row, without building an instance.

        With `autocommit`, when the unit of work has written nothing yet, the row is durable at
        once, in a transaction of its own (for a caller with nothing else to write: ModelViewSet's
        create); otherwise, as every write, it becomes durable when the unit of work commits.
        """
        ...

    async def add_many(self, objs: Sequence[M]) -> builtins.list[M]: ...
    async def save(self, obj: M) -> M: ...
    async def delete(self, obj: M) -> None: ...
    async def refresh(self, obj: M) -> M: ...
    async def update_where(self, query: Query, values: Mapping[str, Any]) -> int: ...
    async def delete_where(self, query: Query) -> int: ...


@runtime_checkable
class UnitOfWork(Protocol):
    """A database session: what a request, message or task runs inside."""

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...


@runtime_checkable
class Database(Protocol):
    """A database: opens units of work and owns the connections behind them.

    `session()` never blocks or connects by itself; the first query does. `dispose()` closes
    every pooled connection and is called once at shutdown.
    """

    url: str

    def session(self) -> UnitOfWork: ...
    async def create_all(self, metadata: Any) -> None: ...
    async def drop_all(self, metadata: Any) -> None: ...
    async def ping(self) -> None: ...
    async def check(self) -> None:
        """Readiness: return when the database (`SELECT 1`) answers, raise when not.

        GET /health/ready and `core status` run it, each within HEALTH_CHECK_TIMEOUT seconds.
        Cheap and side-effect free. An adapter without `check` is reported as "unchecked",
        not as failing.
        """
        ...

    async def dispose(self) -> None: ...
