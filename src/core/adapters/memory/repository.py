"""InMemoryRepository: the Repository port over InMemoryDatabase rows (or a private list of
objects)."""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import operators

from core.adapters.memory.database import InMemoryDatabase, InMemorySession
from core.errors import (
    FieldError,
    ForeignKeyViolationError,
    NotFoundError,
    NotNullViolationError,
    UniqueViolationError,
)
from core.models import lookups, relations
from core.models.lookups import typed_cache
from core.ports.repository import Condition, Load, Node, Query

# Set on instances this adapter has stored, so save() knows insert from update.
_MARK = "_core_memory_pk"


class _Schema:
    """What the adapter needs to know of one model's table, worked out once."""

    def __init__(self, model: type[Any]) -> None:
        mapper = lookups.mapper_of(model)
        self.model = model
        self.table = model.__table__
        self.key_of = {attr.columns[0].name: attr.key for attr in mapper.column_attrs}
        self.columns = {attr.key: attr.columns[0] for attr in mapper.column_attrs}
        self.pk = lookups.primary_key(model)
        pk_column = self.columns[self.pk]
        self.autoincrement = (
            pk_column.default is None and lookups.column_types(model)[self.pk] is int
        )
        self.uniques: list[tuple[str, ...]] = [(k,) for k, c in self.columns.items() if c.unique]
        for constraint in self.table.constraints:
            names = tuple(self.key_of[c.name] for c in getattr(constraint, "columns", ()))
            if type(constraint).__name__ == "UniqueConstraint" and names not in self.uniques:
                self.uniques.append(names)
        self.required = [
            k
            for k, c in self.columns.items()
            if not c.nullable and c.default is None and c.server_default is None and k != self.pk
        ]
        self.relations: dict[str, _Relation] = {}
        self.foreign_keys: list[tuple[str, type[Any], str]] = []
        for key, column in self.columns.items():
            for fk in column.foreign_keys:
                target = lookups._model_for_table(model, fk.column.table)
                self.foreign_keys.append((key, target, schema(target).key_of[fk.column.name]))

    def relation(self, name: str) -> _Relation:
        found = self.relations.get(name)
        if found is None:
            found = self.relations[name] = _Relation(self.model, name)
        return found

    @property
    def dependants(self) -> list[tuple[_Schema, str, str, str | None]]:
        """(dependent schema, its fk key, our referenced key, ON DELETE action) for rows pointing
        here."""
        found = []
        for mapper in self.model.registry.mappers:
            other = schema(mapper.class_)
            for key, column in other.columns.items():
                for fk in column.foreign_keys:
                    if fk.column.table is self.table:
                        found.append((other, key, self.key_of[fk.column.name], fk.ondelete))
        return found


class _Relation:
    """A relationship as rows see it: objects of `target` whose `remote` column equals our
    `local` one, a list or (to-one) the first, in the relationship's `order_by`."""

    def __init__(self, model: type[Any], name: str) -> None:
        prop = lookups.mapper_of(model).relationships[name]
        pairs = prop.local_remote_pairs or []
        if prop.secondary is not None or len(pairs) != 1:
            raise FieldError(
                f"{model.__name__}.{name}: the in-memory repository loads relations over one "
                f"foreign key column (a link model instead of a secondary table)."
            )
        self.target: type[Any] = prop.mapper.class_
        self.local = lookups.mapper_of(model).get_property_by_column(pairs[0][0]).key
        self.remote = prop.mapper.get_property_by_column(pairs[0][1]).key
        self.many = bool(prop.uselist)
        self.order: list[tuple[str, bool]] = []
        for clause in prop.order_by or ():
            column = getattr(clause, "element", clause)
            descending = getattr(clause, "modifier", None) is operators.desc_op
            self.order.append((prop.mapper.get_property_by_column(column).key, descending))


@typed_cache
def schema(model: type[Any]) -> _Schema:
    return _Schema(model)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "iexact": lambda a, b: str(a).lower() == b.lower(),
    "contains": lambda a, b: b in a,
    "icontains": lambda a, b: b.lower() in str(a).lower(),
    "startswith": lambda a, b: str(a).startswith(b),
    "istartswith": lambda a, b: str(a).lower().startswith(b.lower()),
    "endswith": lambda a, b: str(a).endswith(b),
    "iendswith": lambda a, b: str(a).lower().endswith(b.lower()),
    "in": lambda a, b: a in b,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "range": lambda a, b: b[0] <= a <= b[1],
    "year": lambda a, b: a.year == b,
    "month": lambda a, b: a.month == b,
    "day": lambda a, b: a.day == b,
}


class InMemoryRepository:
    """A repository on in-process rows. Give it objects to get a private store for a test.

    Example:
        >>> posts = InMemoryRepository(Post, [Post(id=1, title="Hi")])  # doctest: +SKIP
        >>> with app.container.database.repository.override(posts): ...  # doctest: +SKIP
    """

    def __init__(
        self,
        model: type[Any],
        objects: Iterable[Any] = (),
        *,
        session: InMemorySession | None = None,
    ) -> None:
        self.model = model
        self.session = session if session is not None else InMemorySession(InMemoryDatabase())
        for obj in objects:
            self._insert(obj)
        if session is None:
            self.session._undo.clear()

    @classmethod
    def for_session(cls, model: type[Any], session: InMemorySession) -> InMemoryRepository:
        return cls(model, session=session)

    @property
    def database(self) -> InMemoryDatabase:
        return self.session.database

    # -- reading ------------------------------------------------------------------------------
    def _truth(
        self, model: type[Any], row: Mapping[str, Any], node: Node | Condition
    ) -> bool | None:
        # SQL's three-valued logic, so `exclude` and NULLs agree with the SQL adapter.
        if isinstance(node, Condition):
            return self._condition(model, row, node)
        results = [self._truth(model, row, child) for child in node.children]
        if node.op == "not":
            value = self._all(results)
            return None if value is None else not value
        if node.op == "or":
            return True if True in results else (None if None in results else False)
        return self._all(results)

    @staticmethod
    def _all(results: builtins.list[bool | None]) -> bool | None:
        return False if False in results else (None if None in results else True)

    def _condition(
        self, model: type[Any], row: Mapping[str, Any], condition: Condition
    ) -> bool | None:
        if condition.hops:
            hop, rest = condition.hops[0], condition.hops[1:]
            local = row.get(hop.local)
            if local is None:
                return False
            inner = Condition(rest, condition.column, condition.lookup, condition.value)
            return any(
                self._condition(hop.target, other, inner) is True
                for other in self.database.table(hop.target).values()
                if other.get(hop.remote) == local
            )
        value = row.get(condition.column)
        if condition.lookup == "isnull":
            return (value is None) is condition.value
        if condition.lookup == "exact" and condition.value is None:
            return value is None
        if value is None:
            return None
        return _COMPARE[condition.lookup](value, condition.value)

    def _rows(self, query: Query) -> builtins.list[dict[str, Any]]:
        rows = [
            row
            for row in self.database.table(query.model).values()
            if not query.where.children or self._truth(query.model, row, query.where) is True
        ]
        for ordering in reversed(query.order_by):
            rows.sort(key=_by_key(ordering.column), reverse=ordering.descending)
        end = None if query.limit is None else query.offset + query.limit
        return rows[query.offset : end]

    def _materialize(self, row: Mapping[str, Any]) -> Any:
        key = (self.model.__table__, row[schema(self.model).pk])
        obj = self.session.identity.get(key)
        if obj is None:
            obj = lookups.mapper_of(self.model).class_manager.new_instance()
            for name, value in row.items():
                setattr(obj, name, value)
            # Persistent-looking (an identity, no session): reading a relation nobody loaded
            # raises RelationNotLoadedError, as it does on SQLAlchemy.
            make_transient_to_detached(obj)
            setattr(obj, _MARK, key[1])
            self.session.identity[key] = obj
        return obj

    def _load(
        self, objects: builtins.list[Any], loads: tuple[Load, ...], at: tuple[str, ...]
    ) -> None:
        """Set the relations of `loads` below the path `at` on `objects` (of this model)."""
        for load in loads:
            if load.path[:-1] != at:
                continue
            relation = schema(self.model).relation(load.path[-1])
            wanted = {getattr(obj, relation.local) for obj in objects} - {None}
            matches: dict[Any, builtins.list[dict[str, Any]]] = {}
            for row in self.database.table(relation.target).values():
                if (value := row.get(relation.remote)) in wanted:
                    matches.setdefault(value, []).append(row)
            related = InMemoryRepository(relation.target, session=self.session)
            reached: dict[int, Any] = {}
            for obj in objects:
                found = [
                    related._materialize(r) for r in matches.get(getattr(obj, relation.local), ())
                ]
                for name, descending in reversed(relation.order):
                    found.sort(key=_by_attribute(name), reverse=descending)
                reached.update((id(o), o) for o in found)
                set_committed_value(
                    obj, load.path[-1], found if relation.many else (found[0] if found else None)
                )
            related._load(list(reached.values()), loads, load.path)

    # `list` names a method here, so annotations in this class spell the type `builtins.list`.
    async def get(self, pk: Any) -> Any | None:
        row = self.database.table(self.model).get(pk)
        return None if row is None else self._materialize(row)

    async def list(self, query: Query) -> builtins.list[Any]:
        objects = [self._materialize(row) for row in self._rows(query)]
        if query.loads:
            self._load(objects, query.loads, ())
        return objects

    async def values(self, query: Query) -> builtins.list[dict[str, Any]]:
        names = query.columns or tuple(schema(query.model).columns)
        return [dict(zip(names, row, strict=True)) for row in await self.values_list(query)]

    async def values_list(self, query: Query) -> builtins.list[tuple[Any, ...]]:
        names = query.columns or tuple(schema(query.model).columns)
        rows = self._rows(query)
        if not any("__" in name for name in names):
            return [tuple(row.get(name) for name in names) for row in rows]
        # Across to-one relations (`author__name`): the related row, as a LEFT OUTER JOIN
        # finds it (None when there is none).
        paths = [relations.value_path(query.model, name) for name in names]
        found: list[tuple[Any, ...]] = []
        for row in rows:
            reached: dict[tuple[str, ...], dict[str, Any] | None] = {(): row}
            values = []
            for walked, column in paths:
                current: dict[str, Any] | None = row
                owner: type[Any] = query.model
                path: tuple[str, ...] = ()
                for step in walked:
                    path = (*path, step.name)
                    if path not in reached:
                        reached[path] = self._related(owner, step.name, current)
                    current, owner = reached[path], step.target
                values.append(None if current is None else current.get(column))
            found.append(tuple(values))
        return found

    def _related(
        self, model: type[Any], name: str, row: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The row the to-one relation `name` of `row` (a `model` row) leads to, or None."""
        if row is None:
            return None
        relation = schema(model).relation(name)
        value = row.get(relation.local)
        if value is None:
            return None
        table = self.database.table(relation.target)
        if relation.remote == schema(relation.target).pk:
            return table.get(value)
        return next((r for r in table.values() if r.get(relation.remote) == value), None)

    async def values_list_counted(
        self, query: Query
    ) -> tuple[builtins.list[tuple[Any, ...]], int | None]:
        total = len(self._rows(replace(query, limit=None, offset=0)))
        rows = await self.values_list(query)
        return rows, (total if rows or not query.offset else None)

    async def count(self, query: Query) -> int:
        return len(self._rows(query))

    async def estimated_count(self, query: Query) -> int | None:
        return None

    async def exists(self, query: Query) -> bool:
        return bool(self._rows(query))

    # -- writing ------------------------------------------------------------------------------
    def _row_of(self, obj: Any, *, inserting: bool) -> dict[str, Any]:
        info = schema(self.model)
        state = obj.__dict__
        row: dict[str, Any] = {}
        for key, column in info.columns.items():
            if key in state and not (
                inserting and state[key] is None and column.default is not None
            ):
                row[key] = state[key]
            elif inserting and column.default is not None:
                default = column.default
                row[key] = default.arg(None) if default.is_callable else default.arg
            else:
                row[key] = state.get(key)
        if not inserting:
            row.update(_stamps(info, ()))
        return row

    def _check(self, row: Mapping[str, Any], *, replacing: Any = None) -> None:
        info = schema(self.model)
        name = self.model.__name__
        for key in info.required:
            if row.get(key) is None:
                raise NotNullViolationError(f"{name}.{key} is required.", field=key)
        table = self.database.table(self.model)
        for keys in [(info.pk,), *info.uniques]:
            values = tuple(row.get(k) for k in keys)
            if None in values:
                continue
            for pk, other in table.items():
                if pk != replacing and tuple(other.get(k) for k in keys) == values:
                    raise UniqueViolationError(
                        f"{name} with this {keys[0]} already exists.", field=keys[0]
                    )
        for key, target, remote in info.foreign_keys:
            value = row.get(key)
            if value is not None and not any(
                other.get(remote) == value for other in self.database.table(target).values()
            ):
                raise ForeignKeyViolationError(f"{name}.{key} refers to a missing row.", field=key)

    def _insert(self, obj: Any) -> Any:
        info = schema(self.model)
        row = self._row_of(obj, inserting=True)
        if row.get(info.pk) is None and info.autoincrement:
            row[info.pk] = self.database.next_id(self.model)
        elif info.autoincrement and isinstance(row.get(info.pk), int):
            self.database.sequences[self.model.__table__] = max(
                self.database.sequences.get(self.model.__table__, 0), row[info.pk]
            )
        self._check(row)
        table = self.database.table(self.model)
        pk = row[info.pk]
        table[pk] = row

        def undo() -> None:
            table.pop(pk, None)

        self.session.record(undo)
        for key, value in row.items():
            setattr(obj, key, value)
        if inspect(obj).transient:
            make_transient_to_detached(obj)  # as `_materialize` leaves what it reads
        setattr(obj, _MARK, pk)
        self.session.identity[(self.model.__table__, pk)] = obj
        return obj

    def _update(self, obj: Any, pk: Any) -> Any:
        table = self.database.table(self.model)
        if pk not in table:
            raise NotFoundError(f"{self.model.__name__} {pk!r} no longer exists.")
        row = self._row_of(obj, inserting=False)
        self._check(row, replacing=pk)
        previous = table[pk]
        table[pk] = row
        self.session.record(_put_back(table, pk, previous))
        for key, value in row.items():
            setattr(obj, key, value)
        _unload_stale(obj, previous, row)
        return obj

    async def add(self, obj: Any) -> Any:
        return self._insert(obj)

    async def insert(
        self, values: Mapping[str, Any], returning: Sequence[str], *, autocommit: bool = False
    ) -> tuple[Any, ...]:
        durable = autocommit and not self.session._undo  # nothing written yet: commit it alone
        obj = self._insert(self.model(**values))
        if durable:
            await self.session.commit()
        return tuple(getattr(obj, name) for name in returning)

    async def add_many(self, objs: Sequence[Any]) -> builtins.list[Any]:
        return [self._insert(obj) for obj in objs]

    async def save(self, obj: Any) -> Any:
        pk = getattr(obj, _MARK, None)
        return self._insert(obj) if pk is None else self._update(obj, pk)

    def _remove(self, info: _Schema, pk: Any) -> None:
        table = self.database.table(info.model)
        row = table.get(pk)
        if row is None:
            return
        for other, fk_key, our_key, on_delete in info.dependants:
            other_table = self.database.table(other.model)
            pointing = [
                opk for opk, orow in other_table.items() if orow.get(fk_key) == row.get(our_key)
            ]
            if not pointing:
                continue
            if on_delete == "CASCADE":
                for opk in pointing:
                    self._remove(other, opk)
            elif on_delete == "SET NULL":
                for opk in pointing:
                    before = other_table[opk]
                    other_table[opk] = {**before, fk_key: None}
                    self.session.record(_put_back(other_table, opk, before))
            else:
                raise ForeignKeyViolationError(
                    f"{info.model.__name__} {pk!r} is still referenced by "
                    f"{other.model.__name__}.{fk_key}.",
                    field=fk_key,
                )
        del table[pk]
        self.session.record(_put_back(table, pk, row))
        self.session.identity.pop((info.table, pk), None)

    async def delete(self, obj: Any) -> None:
        pk = getattr(obj, _MARK, None)
        if pk is None:
            raise NotFoundError(f"{self.model.__name__} was never saved.")
        self._remove(schema(self.model), pk)

    async def refresh(self, obj: Any) -> Any:
        pk = getattr(obj, _MARK, None)
        row = self.database.table(self.model).get(pk)
        if row is None:
            raise NotFoundError(f"{self.model.__name__} {pk!r} does not exist.")
        for key, value in row.items():
            setattr(obj, key, value)
        return obj

    async def update_where(self, query: Query, values: Mapping[str, Any]) -> int:
        info = schema(self.model)
        table = self.database.table(self.model)
        rows = self._rows(query)
        stamped = _stamps(info, values)
        for row in rows:
            pk = row[info.pk]
            updated = {**row, **values, **stamped}
            self._check(updated, replacing=pk)
            previous = table[pk]
            table[pk] = updated
            self.session.record(_put_back(table, pk, previous))
            obj = self.session.identity.get((info.table, pk))
            if obj is not None:
                for key, value in updated.items():
                    setattr(obj, key, value)
                _unload_stale(obj, previous, updated)
        return len(rows)

    async def delete_where(self, query: Query) -> int:
        info = schema(self.model)
        rows = self._rows(query)
        for row in rows:
            self._remove(info, row[info.pk])
        return len(rows)


def _unload_stale(obj: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Forget the loaded relations of `obj` whose key column changed (they would be stale)."""
    mapper = lookups.mapper_of(type(obj))
    for prop in mapper.relationships:
        if prop.key in obj.__dict__ and any(
            before.get(key) != after.get(key)
            for key in (mapper.get_property_by_column(c).key for c in prop.local_columns)
        ):
            del obj.__dict__[prop.key]


def _sort_key(value: Any) -> tuple[bool, Any]:
    # NULLs last ascending, first descending: as PostgreSQL (and the SQL adapter) sort them.
    return (value is None, value if value is not None else 0)


def _by_key(column: str) -> Callable[[Mapping[str, Any]], tuple[bool, Any]]:
    return lambda row: _sort_key(row.get(column))


def _by_attribute(name: str) -> Callable[[Any], tuple[bool, Any]]:
    return lambda obj: _sort_key(getattr(obj, name))


def _put_back(table: dict[Any, dict[str, Any]], pk: Any, row: dict[str, Any]) -> Callable[[], None]:
    """An undo step that puts `row` back in `table` under `pk`."""

    def undo() -> None:
        table[pk] = row

    return undo


def _stamps(info: _Schema, given: Iterable[str]) -> dict[str, Any]:
    """Values of `onupdate` columns (e.g. `auto_now`) not set explicitly."""
    return {
        key: column.onupdate.arg(None) if column.onupdate.is_callable else column.onupdate.arg
        for key, column in info.columns.items()
        if column.onupdate is not None and key not in given
    }
