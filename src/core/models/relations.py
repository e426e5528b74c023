"""Relations are loaded when a query asks for them (`select_related`, `prefetch_related`), never
behind the caller's back.

`Field.relationship` maps with `lazy="explicit"`, the loader strategy defined here. Reading a
relation that was not loaded raises `RelationNotLoadedError`, which names the query methods that
load it, instead of emitting a query per object (the N+1 a `selectin` default hid, paid on every
read) or failing deep in SQLAlchemy's greenlet bridge (what a plain lazy load does in async code).
Code that means to load one relation of one object awaits it: `await obj.awaitable_attrs.author`
runs inside SQLAlchemy's greenlet, where this strategy loads as `lazy="select"` does; so do
SQLAlchemy's own reads during a flush.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import inspect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import RelationshipProperty, strategies
from sqlalchemy.orm.base import LoaderCallableStatus, PassiveFlag
from sqlalchemy.orm.exc import DetachedInstanceError
from sqlalchemy.util.concurrency import in_greenlet

from core.errors import CoreError, FieldError
from core.models import lookups
from core.models.lookups import typed_cache
from core.ports.repository import Load

EXPLICIT = "explicit"
"""The `lazy=` value of `Field.relationship`: loaded by the query, or awaited."""


class RelationNotLoadedError(CoreError, InvalidRequestError):
    """A relation was read that its query did not load (and async code cannot load it on the
    spot). The message names the relation and how to load it."""

    code = "relation_not_loaded"

    def __str__(self) -> str:
        # SQLAlchemy's errors append a link built from `code`, which is ours, not theirs.
        return str(self.detail)


# SQLAlchemy 2.1 renamed its lazy loader `_LazyLoader` (2.0: `LazyLoader`); the subclass only
# overrides `_load_for_state`, whose leading arguments (state, passive) both versions share.
_LazyLoader: Any = getattr(strategies, "_LazyLoader", None) or strategies.LazyLoader  # type: ignore[attr-defined]


@RelationshipProperty.strategy_for(lazy=EXPLICIT)
class ExplicitLoader(_LazyLoader):  # type: ignore[misc]
    """`lazy="select"` inside SQLAlchemy's greenlet (`awaitable_attrs`, a flush); elsewhere the
    identity map may answer a many-to-one, and anything needing SQL raises
    `RelationNotLoadedError`."""

    __slots__ = ()

    def _load_for_state(self, state: Any, passive: Any, *args: Any, **kw: Any) -> Any:
        if passive & PassiveFlag.NO_RAISE or not passive & PassiveFlag.SQL_OK or in_greenlet():
            return super()._load_for_state(state, passive, *args, **kw)
        try:
            # Without SQL: a many-to-one whose object the session already holds still answers.
            found = super()._load_for_state(state, passive & ~PassiveFlag.SQL_OK, *args, **kw)
        except DetachedInstanceError:
            found = LoaderCallableStatus.PASSIVE_NO_RESULT
        if found is LoaderCallableStatus.PASSIVE_NO_RESULT:
            raise not_loaded(state.class_, self.key)
        return found


def not_loaded(model: type[Any], name: str) -> RelationNotLoadedError:
    prop = lookups.mapper_of(model).relationships[name]
    how = (
        f".select_related({name!r}) or .prefetch_related({name!r})"
        if not prop.uselist
        else f".prefetch_related({name!r})"
    )
    return RelationNotLoadedError(
        f"{model.__name__}.{name} was not loaded. Load it with the query ({how}; a ViewSet loads "
        f"what its output schema shows), or await it on an object still in its session: "
        f"`await obj.awaitable_attrs.{name}`."
    )


def is_loaded(obj: Any, name: str) -> bool:
    """Whether the relation `name` of `obj` holds its value (loaded, or set by the caller)."""
    return name in inspect(obj).dict


@dataclass(frozen=True, slots=True)
class Step:
    """One relation of a path: its name, the model it leads to, and whether it is to-one."""

    name: str
    target: type[Any]
    to_one: bool


def relation_names(model: type[Any]) -> str:
    return ", ".join(sorted(lookups.mapper_of(model).relationships.keys())) or "none"


@typed_cache
def steps(model: type[Any], path: str) -> tuple[Step, ...]:
    """The relations `path` (`"author__team"`) walks from `model`, or a FieldError naming the
    first part that is not a relation."""
    if not isinstance(path, str) or not path:
        raise FieldError(
            f"A relation path is a non-empty string like 'author__team', got {path!r}."
        )
    found = []
    current = model
    for name in path.split("__"):
        prop = lookups.mapper_of(current).relationships.get(name)
        if prop is None:
            raise FieldError(
                f"{current.__name__} has no relation {name!r} (in {path!r}). "
                f"Relations: {relation_names(current)}."
            )
        found.append(Step(name, prop.mapper.class_, not prop.uselist))
        current = prop.mapper.class_
    return tuple(found)


@typed_cache
def add_loads(
    model: type[Any],
    loads: tuple[Load, ...],
    paths: tuple[str, ...],
    strategy: Literal["joined", "selectin"],
) -> tuple[Load, ...]:
    """`loads` with each of `paths` (and its prefixes) loaded by `strategy`. A prefix already
    loaded keeps its strategy; a path named by both methods is joined (one statement fewer)."""
    chosen = {load.path: load.strategy for load in loads}
    for path in paths:
        walked = steps(model, path)
        if strategy == "joined":
            for i, step in enumerate(walked):
                if not step.to_one:
                    owner = walked[i - 1].target if i else model
                    raise FieldError(
                        f"select_related follows to-one relations; {owner.__name__}.{step.name} "
                        f"is a list: use prefetch_related({path!r})."
                    )
        key: tuple[str, ...] = ()
        for step in walked:
            key = (*key, step.name)
            if key not in chosen or (strategy == "joined" and len(key) == len(walked)):
                chosen[key] = strategy
    return tuple(Load(path, strategy) for path, strategy in chosen.items())


@typed_cache
def value_path(model: type[Any], name: str) -> tuple[tuple[Step, ...], str]:
    """The to-one relations and the column a value name reads (`"author__team__name"`: the
    steps `author`, `team` and the column `name`; `"title"`: no steps), or a FieldError.

    `values_list` reads such names from the row its query joins (LEFT OUTER JOIN): one value
    per object, None when a relation on the path holds no object. A to-many relation would
    give several values per object, so it is refused.
    """
    *path, column = name.split("__")
    if not path:
        lookups.convert_value(model, column, None)  # a FieldError naming the fields
        return (), column
    walked = steps(model, "__".join(path))
    for i, step in enumerate(walked):
        if not step.to_one:
            owner = walked[i - 1].target if i else model
            raise FieldError(
                f"{owner.__name__}.{step.name} is a list: values_list reads one value per "
                f"object, across to-one relations only ({name!r})."
            )
    lookups.convert_value(walked[-1].target, column, None)
    return walked, column
