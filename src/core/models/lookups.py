"""Turns Django-style keyword lookups (`author__email__icontains="x"`) into checked `Condition`s.

Every field, relation and lookup is checked against the mapping here, and every value converted
to its column's type, so no adapter ever sees a name or value the model does not allow.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import BigInteger, Integer, SmallInteger, inspect
from sqlalchemy.orm import ColumnProperty, Mapper, RelationshipProperty

from core.errors import FieldError
from core.ports.repository import DATE_PARTS, LOOKUPS, Condition, Hop, Ordering

_STRING_LOOKUPS = frozenset(
    {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"}
)
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})

_P = ParamSpec("_P")
_R = TypeVar("_R")


#: The values a date part lookup (`created_at__month=`) takes.
DATE_PART_LIMITS = {"year": (1, 9999), "month": (1, 12), "day": (1, 31)}


def typed_cache(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`functools.cache`, typed as the function it wraps.

    Typeshed types the cached wrapper's arguments as `Hashable`, and mypy does not count a class
    (`type[Any]`) as one, so every call with a model would be an error. The wrapper is returned
    as is: calling it costs no more than calling `functools.cache`'s.
    """
    return cast("Callable[_P, _R]", cache(function))


def mapper_of(model: type[Any]) -> Mapper[Any]:
    try:
        mapper: Mapper[Any] = inspect(model)
        return mapper
    except Exception as exc:
        raise FieldError(f"{model.__name__} is not a mapped model.") from exc


@typed_cache
def column_types(model: type[Any]) -> dict[str, type[Any] | None]:
    """The Python type of each column attribute.

    None where the type has no single one, e.g. JSON.
    """
    types: dict[str, type[Any] | None] = {}
    for attr in mapper_of(model).column_attrs:
        column = attr.columns[0]
        try:
            types[attr.key] = column.type.python_type
        except NotImplementedError:
            types[attr.key] = None
    return types


@typed_cache
def integer_bounds(model: type[Any]) -> dict[str, tuple[int, int]]:
    """The range each integer column can store (values outside it fail in the database)."""
    bounds: dict[str, tuple[int, int]] = {}
    for attr in mapper_of(model).column_attrs:
        column_type = attr.columns[0].type
        if isinstance(column_type, SmallInteger):
            bounds[attr.key] = (-(2**15), 2**15 - 1)
        elif isinstance(column_type, BigInteger):
            bounds[attr.key] = (-(2**63), 2**63 - 1)
        elif isinstance(column_type, Integer):
            bounds[attr.key] = (-(2**31), 2**31 - 1)
    return bounds


@typed_cache
def primary_key(model: type[Any]) -> str:
    mapper = mapper_of(model)
    if len(mapper.primary_key) != 1:
        raise FieldError(f"{model.__name__} has a composite primary key; name its columns.")
    return mapper.get_property_by_column(mapper.primary_key[0]).key


def _model_for_table(base_model: type[Any], table: Any) -> type[Any]:
    for mapper in base_model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_  # type: ignore[no-any-return]
    raise FieldError(f"No model maps table {table.name!r}.")


def _hop(model: type[Any], name: str) -> Hop | None:
    mapper = mapper_of(model)
    prop = mapper.attrs.get(name)
    if isinstance(prop, RelationshipProperty):
        pairs = prop.local_remote_pairs or []
        if len(pairs) != 1 or prop.secondary is not None:
            raise FieldError(
                f"{model.__name__}.{name}: only single-column relations can be queried across."
            )
        local, remote = pairs[0]
        target = prop.mapper.class_
        return Hop(
            local=mapper.get_property_by_column(local).key,
            target=target,
            remote=prop.mapper.get_property_by_column(remote).key,
        )
    # Django style across a bare foreign key: `author__email` follows the `author_id` column.
    fk_attr = mapper.attrs.get(f"{name}_id")
    if isinstance(fk_attr, ColumnProperty):
        fks = list(fk_attr.columns[0].foreign_keys)
        if len(fks) == 1:
            target = _model_for_table(model, fks[0].column.table)
            return Hop(
                local=fk_attr.key,
                target=target,
                remote=mapper_of(target).get_property_by_column(fks[0].column).key,
            )
    return None


def _fields_of(model: type[Any]) -> str:
    return ", ".join(sorted(column_types(model)))


def _convert(model: type[Any], name: str, python_type: type[Any] | None, value: Any) -> Any:
    if (
        value is None
        or python_type is None
        or isinstance(value, python_type)
        and python_type is not int  # ints still get their range checked below
    ):
        return value
    try:
        if python_type is bool:
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if python_type is int:
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            number = int(value)
            low, high = integer_bounds(model).get(name, (-(2**63), 2**63 - 1))
            if not low <= number <= high:
                raise FieldError(
                    f"{model.__name__}.{name}: {number} is out of range [{low}, {high}]."
                )
            return number
        if python_type in (float, decimal.Decimal):
            if isinstance(value, bool):
                raise ValueError(value)
            return python_type(str(value)) if python_type is decimal.Decimal else float(value)
        if python_type is uuid.UUID:
            return uuid.UUID(str(value))
        if python_type is datetime.datetime:
            if isinstance(value, datetime.date):
                return datetime.datetime.combine(value, datetime.time())
            return datetime.datetime.fromisoformat(str(value))
        if python_type is datetime.date:
            return datetime.date.fromisoformat(str(value))
        if python_type is str:
            if isinstance(value, int | float | decimal.Decimal | uuid.UUID):
                return str(value)
            raise ValueError(value)
    except FieldError:
        raise
    except (ValueError, TypeError, decimal.InvalidOperation, AttributeError):
        pass
    else:
        return value
    raise FieldError(
        f"Invalid value {value!r} for {model.__name__}.{name}: expected {type_label(python_type)}."
    )


_TYPE_LABELS: dict[type[Any] | None, str] = {
    int: "integer",
    str: "string",
    float: "number",
    decimal.Decimal: "decimal",
    bool: "boolean",
    uuid.UUID: "uuid",
    datetime.datetime: "datetime",
    datetime.date: "date",
}


def type_label(python_type: type[Any] | None) -> str:
    """A user-facing name for a column's Python type (`integer`, `uuid`, ...)."""
    return _TYPE_LABELS.get(python_type, getattr(python_type, "__name__", "value"))


def convert_value(model: type[Any], name: str, value: Any) -> Any:
    """Convert `value` to the type of `model.name`, or raise a FieldError naming both."""
    types = column_types(model)
    if name not in types:
        raise FieldError(f"{model.__name__} has no field {name!r}. Fields: {_fields_of(model)}.")
    return _convert(model, name, types[name], value)


def resolve(model: type[Any], key: str, value: Any) -> Condition:
    """`"author__email__icontains", "x"` -> a Condition with its hops, or a FieldError."""
    parts = key.split("__")
    lookup = "exact"
    if len(parts) > 1 and parts[-1] in LOOKUPS:
        lookup = parts.pop()
    hops: list[Hop] = []
    current = model
    for part in parts[:-1]:
        hop = _hop(current, part)
        if hop is None:
            if part in column_types(current):
                raise FieldError(
                    f"Unsupported lookup {key.split('__')[-1]!r} on {current.__name__}.{part}. "
                    f"Lookups: {', '.join(sorted(LOOKUPS))}."
                )
            raise FieldError(f"{current.__name__} has no relation {part!r} (in {key!r}).")
        hops.append(hop)
        current = hop.target
    name = parts[-1]
    if name == "pk":
        name = primary_key(current)
    types = column_types(current)
    if name not in types:
        raise FieldError(
            f"{current.__name__} has no field {name!r} (in {key!r}). Fields: {_fields_of(current)}."
        )
    return Condition(
        tuple(hops), name, lookup, _lookup_value(current, name, lookup, types[name], value)
    )


def _lookup_value(
    model: type[Any], name: str, lookup: str, python_type: type[Any] | None, value: Any
) -> Any:
    if lookup == "isnull":
        return bool(_convert(model, name, bool, value))
    if lookup == "in":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise FieldError(f"{model.__name__}.{name}__in needs a list of values, got {value!r}.")
        return tuple(_convert(model, name, python_type, v) for v in value)
    if lookup == "range":
        if (
            isinstance(value, str | bytes)
            or not isinstance(value, Iterable)
            or len(values := tuple(value)) != 2
        ):
            raise FieldError(f"{model.__name__}.{name}__range needs (low, high), got {value!r}.")
        return tuple(_convert(model, name, python_type, v) for v in values)
    if lookup in DATE_PARTS:
        if python_type not in (datetime.date, datetime.datetime):
            raise FieldError(f"{model.__name__}.{name}__{lookup} needs a date or datetime field.")
        try:
            part = int(value)
        except (TypeError, ValueError):
            raise FieldError(
                f"Invalid value {value!r} for {model.__name__}.{name}__{lookup}: expected integer."
            ) from None
        limits = DATE_PART_LIMITS[lookup]
        if isinstance(value, bool) or not limits[0] <= part <= limits[1]:
            raise FieldError(
                f"Invalid value {value!r} for {model.__name__}.{name}__{lookup}: expected an "
                f"integer in [{limits[0]}, {limits[1]}]."
            )
        return part
    if lookup in _STRING_LOOKUPS:
        if not isinstance(value, str):
            raise FieldError(f"{model.__name__}.{name}__{lookup} needs a string, got {value!r}.")
        return value
    if value is None and lookup != "exact":
        raise FieldError(
            f"{model.__name__}.{name}__{lookup} cannot compare with None; use __isnull."
        )
    return _convert(model, name, python_type, value)


def field_type(model: type[Any], path: str) -> type[Any] | None:
    """The Python type of the column `path` names (`author__email` across the relation), or a
    FieldError naming what is missing."""
    *relations, name = path.split("__")
    current = model
    for part in relations:
        hop = _hop(current, part)
        if hop is None:
            raise FieldError(f"{current.__name__} has no relation {part!r} (in {path!r}).")
        current = hop.target
    if name == "pk":
        name = primary_key(current)
    types = column_types(current)
    if name not in types:
        raise FieldError(
            f"{current.__name__} has no field {name!r} (in {path!r}). "
            f"Fields: {_fields_of(current)}."
        )
    return types[name]


def resolve_ordering(model: type[Any], fields: Iterable[str]) -> tuple[Ordering, ...]:
    orderings = []
    for spec in fields:
        descending = spec.startswith("-")
        name = spec.lstrip("-+")
        if name == "pk":
            name = primary_key(model)
        if name not in column_types(model):
            raise FieldError(
                f"Cannot order {model.__name__} by {name!r}. Fields: {_fields_of(model)}."
            )
        orderings.append(Ordering(name, descending))
    return tuple(orderings)
