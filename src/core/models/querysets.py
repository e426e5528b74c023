"""QuerySet and Manager: a lazy, immutable, Django-style query API over the Repository port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from core.context import current_container, current_session
from core.errors import FieldError
from core.models import lookups, relations
from core.ports.repository import Node, Query

if TYPE_CHECKING:
    from core.ports.repository import Repository

M = TypeVar("M")

_QUERY_FIELDS = tuple(f.name for f in fields(Query))  # in the order Query() takes them
_EMPTY_QUERIES: dict[type[Any], Query] = {}


def _paths(paths: tuple[Any, ...]) -> tuple[str, ...]:
    for path in paths:
        if not isinstance(path, str) or not path:
            raise FieldError(f"A relation path is a string like 'author__team', got {path!r}.")
    return paths


class Q:
    """A reusable condition that combines with `&`, `|` and `~`.

    Example:
        >>> q = Q(title__icontains="python") | ~Q(is_published=True)
    """

    def __init__(self, *children: Q, **lookups_: Any) -> None:
        self.op = "and"
        self.children: list[Q | tuple[str, Any]] = [*children, *lookups_.items()]

    def _combine(self, op: str, other: Q) -> Q:
        if not isinstance(other, Q):
            return NotImplemented
        combined = Q()
        combined.op = op
        combined.children = [self, other]
        return combined

    def __and__(self, other: Q) -> Q:
        return self._combine("and", other)

    def __or__(self, other: Q) -> Q:
        return self._combine("or", other)

    def __invert__(self) -> Q:
        negated = Q()
        negated.op = "not"
        negated.children = [self]
        return negated

    def resolve(self, model: type[Any]) -> Node:
        children = tuple(
            child.resolve(model) if isinstance(child, Q) else lookups.resolve(model, *child)
            for child in self.children
        )
        if self.op == "not":
            return Node("not", (Node("and", children),))
        return Node(self.op, children)  # type: ignore[arg-type]


class QuerySet(Generic[M]):
    """A lazy query: building it runs nothing; awaiting a terminal method runs one statement.

    Each builder returns a new QuerySet, so a base query can be shared and refined.

    Example:
        >>> qs = (  # doctest: +SKIP
        ...     Post.objects.using(db).filter(is_published=True).order_by("-id")[:20]
        ... )
        >>> posts = await qs.all()  # doctest: +SKIP
    """

    __slots__ = ("_db", "_query")

    def __init__(self, model: type[M], *, db: Any = None, query: Query | None = None) -> None:
        self._db = db
        self._query = query if query is not None else Query(model)

    @property
    def model(self) -> type[M]:
        return self._query.model

    @property
    def query(self) -> Query:
        """The port-level query this QuerySet stands for."""
        return self._query

    def _clone(self, **changes: Any) -> QuerySet[M]:
        # `dataclasses.replace` re-reads the fields on every call, and a chain clones often.
        query = self._query
        values = [changes.get(name, getattr(query, name)) for name in _QUERY_FIELDS]
        return QuerySet(query.model, db=self._db, query=Query(*values))

    def _repository(self) -> Repository[M]:
        session = self._db if self._db is not None else current_session()
        return current_container().database.repository(model=self.model, session=session)  # type: ignore[no-any-return]

    # -- builders ---------------------------------------------------------------------------
    def using(self, db: Any) -> QuerySet[M]:
        """Run on this session (unit of work) instead of the ambient one."""
        return QuerySet(self.model, db=db, query=self._query)

    def _where(self, node: Node) -> QuerySet[M]:
        # The top level is an AND, so an AND's children join it directly (no nested node).
        added = node.children if node.op == "and" else (node,)
        return self._clone(where=Node("and", (*self._query.where.children, *added)))

    def filter(self, *conditions: Q, **lookups_: Any) -> QuerySet[M]:
        """Keep rows matching every condition (`field`, `field__lookup`,
        `relation__field__lookup`)."""
        if conditions:
            return self._where(Q(*conditions, **lookups_).resolve(self.model))
        # Keywords only (the common case): the conditions `Q(**lookups_).resolve` would give,
        # joined straight to the top-level AND.
        query = self._query
        resolved = [lookups.resolve(query.model, key, value) for key, value in lookups_.items()]
        return self._clone(where=Node("and", (*query.where.children, *resolved)))

    def exclude(self, *conditions: Q, **lookups_: Any) -> QuerySet[M]:
        """Drop rows matching all the given conditions."""
        return self._where((~Q(*conditions, **lookups_)).resolve(self.model))

    def order_by(self, *fields: str) -> QuerySet[M]:
        """Order by fields, `-field` for descending; replaces any earlier ordering."""
        return self._clone(order_by=lookups.resolve_ordering(self.model, fields))

    def limit(self, n: int) -> QuerySet[M]:
        if n < 0:
            raise FieldError("limit must be >= 0.")
        return self._clone(limit=n)

    def offset(self, n: int) -> QuerySet[M]:
        if n < 0:
            raise FieldError("offset must be >= 0.")
        return self._clone(offset=n)

    def only(self, *fields: str) -> QuerySet[M]:
        """Select just these columns; used with `values()` to skip building model instances.

        A name may follow to-one relations to a related object's column (`"author__name"`):
        the read joins them, and the value is None when the object has none.
        """
        for name in fields:
            if not isinstance(name, str):
                raise FieldError(f"A field name is a string, got {name!r}.")
            relations.value_path(self.model, name)
        return self._clone(columns=tuple(fields))

    def select_related(self, *paths: str) -> QuerySet[M]:
        """Load these to-one relations (`"author"`, `"author__team"` across several) with the
        objects, joined into the same statement (LEFT OUTER JOIN): one statement in all.

        Raises:
            FieldError: a name is not a relation, or a relation on the path is to-many (those
                are `prefetch_related`'s).

        Example:
            >>> posts = await Post.objects.select_related("author").all()  # doctest: +SKIP
            >>> posts[0].author.email  # doctest: +SKIP
        """
        loads = relations.add_loads(self.model, self._query.loads, _paths(paths), "joined")
        return self._clone(loads=loads)

    def prefetch_related(self, *paths: str) -> QuerySet[M]:
        """Load these relations, to-many or to-one (`"comments"`, `"author__posts"`), with the
        objects: one more statement per relation on the path (`WHERE key IN (...)`), whatever
        the number of objects.

        Raises:
            FieldError: a name on a path is not a relation.

        Example:
            >>> posts = await Post.objects.prefetch_related("comments").all()  # doctest: +SKIP
            >>> len(posts[0].comments)  # doctest: +SKIP
        """
        loads = relations.add_loads(self.model, self._query.loads, _paths(paths), "selectin")
        return self._clone(loads=loads)

    @overload
    def __getitem__(self, item: slice) -> QuerySet[M]: ...
    @overload
    def __getitem__(self, item: int) -> QuerySet[M]: ...
    def __getitem__(self, item: slice | int) -> QuerySet[M]:
        if isinstance(item, int):
            raise TypeError("Index a QuerySet with a slice, e.g. `await qs[3:4].first()`.")
        if item.step not in (None, 1) or (item.start or 0) < 0 or (item.stop or 0) < 0:
            raise FieldError("QuerySet slices take non-negative start and stop and no step.")
        start = self._query.offset + (item.start or 0)
        limit = self._query.limit
        if item.stop is not None:
            window = max(item.stop - (item.start or 0), 0)
            limit = window if limit is None else min(window, max(limit - (item.start or 0), 0))
        elif limit is not None:
            limit = max(limit - (item.start or 0), 0)
        return self._clone(offset=start, limit=limit)

    # -- terminal methods -------------------------------------------------------------------
    async def all(self) -> list[M]:
        """Every matching object."""
        return await self._repository().list(self._query)

    async def values(self, *fields: str) -> list[dict[str, Any]]:
        """Matching rows as dicts of column values, without building model instances."""
        qs = self.only(*fields) if fields else self
        return await self._repository().values(qs._query)

    async def values_list(self, *fields: str) -> list[tuple[Any, ...]]:
        """Matching rows as tuples of the given fields' values (every column when none given),
        the cheapest way to read: no model instances, no dicts.

        Example:
            >>> await Post.objects.values_list("id", "title")  # doctest: +SKIP
            [(1, 'Hello'), (2, 'Again')]
        """
        qs = self.only(*fields) if fields else self
        return await self._repository().values_list(qs._query)

    async def values_list_counted(self, *fields: str) -> tuple[list[tuple[Any, ...]], int | None]:
        """`values_list(*fields)` of this window, and how many rows match without the window
        (ignoring the slice), read together: one statement where the database allows (the
        count a scalar subquery beside the rows). The count is None when no row came back past
        the first (then only a `count()` can tell).

        Example:
            >>> page = Post.objects.order_by("id")[20:40]  # doctest: +SKIP
            >>> rows, total = await page.values_list_counted("id")  # doctest: +SKIP
        """
        qs = self.only(*fields) if fields else self
        return await self._repository().values_list_counted(qs._query)

    async def estimated_count(self) -> int | None:
        """The database's estimate of how many rows match, when it keeps one cheaply
        (PostgreSQL's planner statistics, for a query with no conditions); None otherwise."""
        return await self._repository().estimated_count(self._query)

    def __aiter__(self) -> AsyncIterator[M]:
        async def iterate() -> AsyncIterator[M]:
            for obj in await self.all():
                yield obj

        return iterate()

    def _ordered(self) -> QuerySet[M]:
        if self._query.order_by:
            return self
        return self.order_by(lookups.primary_key(self.model))

    async def first(self) -> M | None:
        """The first object (by primary key unless ordered), or None."""
        found = await self._ordered().limit(1).all()
        return found[0] if found else None

    async def last(self) -> M | None:
        """The last object (by primary key unless ordered), or None."""
        ordered = self._ordered()._query.order_by
        reversed_ = tuple(replace(o, descending=not o.descending) for o in ordered)
        found = await self._clone(order_by=reversed_, limit=1, offset=0).all()
        return found[0] if found else None

    async def get(self, *conditions: Q, **lookups_: Any) -> M:
        """The one object matching.

        Raises:
            Model.DoesNotExist: none matches.
            Model.MultipleObjectsReturned: more than one matches.
        """
        query = self._query
        if (
            len(lookups_) == 1
            and not conditions
            and not query.where.children
            and query.limit is None
            and not query.offset
            and not query.loads
        ):
            # By primary key alone: one keyed read (the session's identity map may answer).
            ((key, value),) = lookups_.items()
            pk = lookups.primary_key(query.model)
            if key in (pk, "pk"):
                obj = await self._repository().get(lookups.convert_value(query.model, pk, value))
                if obj is None:
                    raise self.model.DoesNotExist(  # type: ignore[attr-defined]
                        f"{self.model.__name__} matching {lookups_} does not exist."
                    )
                return obj
        qs = self.filter(*conditions, **lookups_) if conditions or lookups_ else self
        found = await qs.limit(2).all()
        if not found:
            raise self.model.DoesNotExist(  # type: ignore[attr-defined]
                f"{self.model.__name__} matching {lookups_ or 'the query'} does not exist."
            )
        if len(found) > 1:
            raise self.model.MultipleObjectsReturned(  # type: ignore[attr-defined]
                f"More than one {self.model.__name__} matches {lookups_ or 'the query'}."
            )
        return found[0]

    async def get_or_none(self, *conditions: Q, **lookups_: Any) -> M | None:
        """The one object matching, or None when there is none."""
        try:
            return await self.get(*conditions, **lookups_)
        except self.model.DoesNotExist:  # type: ignore[attr-defined]
            return None

    async def count(self) -> int:
        return await self._repository().count(self._query)

    async def exists(self) -> bool:
        return await self._repository().exists(self._query)

    def _build(self, values: Mapping[str, Any]) -> M:
        known = lookups.column_types(self.model)
        relations = lookups.mapper_of(self.model).relationships.keys()
        for name in values:
            if name not in known and name not in relations:
                raise FieldError(
                    f"{self.model.__name__} has no field {name!r}. "
                    f"Fields: {', '.join(sorted(known))}."
                )
        return self.model(
            **{
                k: lookups.convert_value(self.model, k, v) if k in known else v
                for k, v in values.items()
            }
        )

    async def create(self, *, db: Any = None, **values: Any) -> M:
        """Insert one object and return it with its primary key set."""
        qs = self.using(db) if db is not None else self
        return await qs._repository().add(self._build(values))

    async def insert_returning(
        self,
        values: Mapping[str, Any],
        fields: Iterable[str],
        *,
        db: Any = None,
        autocommit: bool = False,
    ) -> tuple[Any, ...]:
        """Insert one row and return `fields` of the stored row (defaults and generated keys
        included) as a tuple, without building an instance: the cheapest create.

        The row is durable when the unit of work commits, like any write. With `autocommit`, a
        unit of work that has written nothing yet commits this row at once, on its own (one
        statement on the driver): for a caller that writes nothing else.

        Example:
            >>> await Post.objects.insert_returning({"title": "Hi"}, ["id"])  # doctest: +SKIP
            (1,)
        """
        qs = self.using(db) if db is not None else self
        known = lookups.column_types(self.model)
        fields = tuple(fields)
        for name in (*values, *fields):
            if name not in known:
                raise FieldError(
                    f"{self.model.__name__} has no column {name!r}. "
                    f"Columns: {', '.join(sorted(known))}."
                )
        converted = {k: lookups.convert_value(self.model, k, v) for k, v in values.items()}
        return await qs._repository().insert(converted, fields, autocommit=autocommit)

    async def bulk_create(
        self, objs: Iterable[M | Mapping[str, Any]], *, db: Any = None
    ) -> list[M]:
        """Insert many objects (instances or dicts of values) in one round of statements."""
        qs = self.using(db) if db is not None else self
        built = [o if isinstance(o, self.model) else self._build(o) for o in objs]  # type: ignore[arg-type]
        return await qs._repository().add_many(built)

    async def get_or_create(
        self, defaults: Mapping[str, Any] | None = None, *, db: Any = None, **lookups_: Any
    ) -> tuple[M, bool]:
        """The object matching `lookups_`, or a new one from them and `defaults`; and whether it
        was created."""
        qs = self.using(db) if db is not None else self
        found = await qs.get_or_none(**lookups_)
        if found is not None:
            return found, False
        return await qs.create(**lookups_, **(defaults or {})), True

    async def update(self, **values: Any) -> int:
        """Set columns on every matching row in one statement; returns how many rows."""
        if not values:
            return 0
        converted = {name: lookups.convert_value(self.model, name, v) for name, v in values.items()}
        return await self._repository().update_where(self._query, converted)

    async def delete(self) -> int:
        """Delete every matching row in one statement; returns how many rows."""
        return await self._repository().delete_where(self._query)

    def __repr__(self) -> str:
        return f"<QuerySet {self.model.__name__}>"


class Manager(Generic[M]):
    """`Model.objects`: a new QuerySet for the model it is read from."""

    def __get__(self, instance: Any, owner: type[M]) -> QuerySet[M]:
        if instance is not None:
            raise AttributeError(
                "Manager isn't accessible via model instances; use type(obj).objects."
            )
        # A Query is immutable, so every QuerySet of a model can start from the same empty one.
        query = _EMPTY_QUERIES.get(owner)
        if query is None:
            query = _EMPTY_QUERIES[owner] = Query(owner)
        return QuerySet(owner, query=query)
