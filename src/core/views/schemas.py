"""Pydantic schemas derived from models when a ViewSet declares none, and their partial (PATCH)
variants."""

from __future__ import annotations

import copy
import datetime
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydanticField
from pydantic_core import to_json
from sqlalchemy.orm import MANYTOONE

from core.models import lookups
from core.models.lookups import typed_cache


def _columns(model: type[Any]) -> list[tuple[str, Any, Any]]:
    """(name, python type, column) for each column attribute, in declaration order."""
    types = lookups.column_types(model)
    mapper = lookups.mapper_of(model)
    return [(attr.key, types[attr.key] or Any, attr.columns[0]) for attr in mapper.column_attrs]


@typed_cache
def output_schema_for(model: type[Any], exclude: frozenset[str] = frozenset()) -> type[BaseModel]:
    """Every column of the model, read from attributes (`from_attributes`), except those marked
    `info={"write_only": True}` (a password hash never goes out) and those in `exclude` (a
    ViewSet's `write_only_fields`)."""
    fields: dict[str, Any] = {
        name: (Optional[py] if column.nullable else py, ...)  # noqa: UP045
        for name, py, column in _columns(model)
        if not column.info.get("write_only") and name not in exclude
    }
    suffix = "" if not exclude else "_" + "_".join(sorted(exclude))
    return create_model(
        f"{model.__name__}Output{suffix}", __config__=ConfigDict(from_attributes=True), **fields
    )


# Columns a client never sets through a derived input schema: the server owns them (account
# flags and credentials change through dedicated code paths, not a generic write).
SERVER_OWNED_NAMES = frozenset(
    {
        "password",
        "password_hash",
        "hashed_password",
        "is_superuser",
        "is_staff",
        "is_active",
        "last_login",
        "groups",
        "user_permissions",
        "permissions",
    }
)


def server_owned(model: type[Any], name: str, column: Any) -> bool:
    """Whether a column is the server's to set: keys, credentials, account flags, timestamps the
    database or the model stamps."""
    if column.primary_key and _generated(column, model):
        return True
    if name in SERVER_OWNED_NAMES or column.info.get("write_only"):
        return True
    if column.onupdate is not None or column.server_onupdate is not None:
        return True
    python_type = lookups.column_types(model).get(name)
    if column.server_default is not None and python_type in (datetime.datetime, datetime.date):
        return True
    return _generated(column, model)


def _generated(column: Any, model: type[Any]) -> bool:
    # Values the database or the model makes: autoincrement keys and callable defaults
    # (auto_now, uuid4) are not the client's to send.
    if column.primary_key and (
        column.autoincrement is True
        or column.default is not None
        or (column.autoincrement == "auto" and lookups.column_types(model).get(column.key) is int)
    ):
        return True
    return column.default is not None and column.default.is_callable


def _constrained(model: type[Any], name: str, py: Any, column: Any) -> Any:
    # The column's own limits, so a value the database would refuse is a 422 at the door.
    length = getattr(column.type, "length", None)
    if py is str and length:
        return Annotated[str, PydanticField(max_length=length)]
    bounds = lookups.integer_bounds(model).get(name)
    if py is int and bounds:
        return Annotated[int, PydanticField(ge=bounds[0], le=bounds[1])]
    return py


def _documentation(column: Any) -> dict[str, Any]:
    """The column's `examples` (`Field.string(examples=[...])`) and `doc`, for OpenAPI."""
    found: dict[str, Any] = {}
    examples = column.info.get("examples")
    if examples:
        found["examples"] = list(examples)
    if column.doc:
        found["description"] = column.doc
    return found


@typed_cache
def input_schema_for(
    model: type[Any],
    read_only: frozenset[str] = frozenset(),
    write_only: frozenset[str] = frozenset(),
) -> type[BaseModel]:
    """The columns a client may write; those with a default or NULL allowed are optional.

    Server-owned columns (`server_owned`) and `read_only` are left out; `write_only` names
    columns to accept even so (DRF's `write_only_fields`: written, never read back).
    """
    fields: dict[str, Any] = {}
    for name, py, column in _columns(model):
        if name in read_only or (server_owned(model, name, column) and name not in write_only):
            continue
        annotation = _constrained(model, name, py, column)
        documented = _documentation(column)
        if column.nullable:
            annotation, default = Optional[annotation], None  # noqa: UP045
        elif column.default is not None and not column.default.is_callable:
            default = column.default.arg
        elif column.default is not None or column.server_default is not None:
            default = None
        else:
            default = ...
        fields[name] = (annotation, PydanticField(default, **documented) if documented else default)
    return create_model(f"{model.__name__}Input", __config__=ConfigDict(extra="forbid"), **fields)


@typed_cache
def partial_schema_for(schema: type[BaseModel]) -> type[BaseModel]:
    """`schema` for PATCH: every field optional, each with its own constraints and field
    validators, so a value PATCH accepts is one POST and PUT accept too.

    Only what the client sends is validated and applied (`model_dump(exclude_unset=True)`).
    Sending `null` is refused where the field itself refuses it. Model validators see a whole
    object, so they are left out here: `UpdateModelMixin.update` runs them on the object as it
    will be once the fields sent are applied.
    """
    namespace: dict[str, Any] = {
        "__module__": schema.__module__,
        "__doc__": f"{schema.__name__}, every field optional (PATCH).",
        "__annotations__": {},
        # A default is never validated here, so an unsent field stays unset and harmless.
        "model_config": {
            **schema.model_config,
            "validate_default": False,
            "json_schema_extra": _without_defaults(schema.model_config.get("json_schema_extra")),
        },
    }
    for name, field in schema.model_fields.items():
        info = copy.copy(field)
        info.default = None
        info.default_factory = None
        info.validate_default = None
        namespace["__annotations__"][name] = field.annotation
        namespace[name] = info
    metaclass: Any = type(schema)
    partial: type[BaseModel] = metaclass(f"{schema.__name__}Partial", (schema,), namespace)
    if partial.__pydantic_decorators__.model_validators:
        partial.__pydantic_decorators__.model_validators.clear()
        partial.model_rebuild(force=True)
    return partial


def _without_defaults(extra: Any) -> Any:
    """A `json_schema_extra` that also drops the properties' defaults: a field PATCH does not
    send stays as it is, it does not take a default."""

    def drop(schema: dict[str, Any], cls: type[BaseModel]) -> None:
        if callable(extra):
            extra(schema, cls)
        elif isinstance(extra, dict):
            schema.update(extra)
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("default", None)

    return drop


def has_model_validators(schema: type[BaseModel]) -> bool:
    return bool(schema.__pydantic_decorators__.model_validators)


# The page links: absolute URLs (documented as such; the page is rendered without parsing them).
_Link = Annotated[str, PydanticField(json_schema_extra={"format": "uri"})]


@typed_cache
def page_schema_for(schema: type[BaseModel], count: str = "number") -> type[BaseModel]:
    """DRF's page envelope around a list of `schema` (documentation of the list route); its
    `count` is a `"number"`, `"nullable"` (a pagination that may not count) or `"absent"`
    (a cursor page)."""
    fields: dict[str, Any] = {}
    name = f"{schema.__name__}Page"
    if count == "number":
        fields["count"] = (int, ...)
    elif count == "nullable":
        fields["count"] = (Optional[int], None)  # noqa: UP045
        name = f"{schema.__name__}UncountedPage"
    else:
        name = f"{schema.__name__}CursorPage"
    return create_model(
        name,
        **fields,
        next=(Optional[_Link], None),  # noqa: UP045
        previous=(Optional[_Link], None),  # noqa: UP045
        results=(list[schema], ...),  # type: ignore[valid-type]
    )


# model_config keys that leave a schema's JSON output as plain as its field types make it.
_PLAIN_CONFIG = frozenset(
    {
        "from_attributes",
        "title",
        "frozen",
        "extra",
        "populate_by_name",
        "validate_by_name",
        "validate_by_alias",
        "json_schema_extra",
        "use_attribute_docstrings",
        "protected_namespaces",
        "str_strip_whitespace",
        "str_min_length",
        "str_max_length",
        "strict",
        "validate_assignment",
        "defer_build",
    }
)


def _plain_schema(schema: Any) -> bool:
    """Whether `schema` writes its fields' values as they are: no validators, serializers,
    computed fields or serialization settings."""
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return False
    decorators = schema.__pydantic_decorators__
    return (
        not any(
            (
                decorators.validators,
                decorators.field_validators,
                decorators.root_validators,
                decorators.field_serializers,
                decorators.model_serializers,
                decorators.model_validators,
                decorators.computed_fields,
            )
        )
        and set(schema.model_config) <= _PLAIN_CONFIG
    )


def _plain_field(field: Any, name: str) -> bool:
    """Whether a field reads and writes `name` as it is: no alias, exclusion or constraint
    beyond annotated_types' (which never change a valid value)."""
    return (
        field.alias in (None, name)
        and field.serialization_alias in (None, name)
        and not field.exclude
        and all(type(m).__module__.startswith("annotated_types") for m in field.metadata)
    )


@typed_cache
def plain_columns(schema: type[BaseModel], model: type[Any]) -> tuple[str, ...] | None:
    """The model columns `schema` is made of, when its JSON is exactly those columns' values.

    That holds when every field is a column of `model` with the column's own Python type
    (optional or not), no alias, no exclusion and no serializer, and the schema has no
    validators, computed fields or serialization settings. Rows of those columns can then go
    straight to JSON, with the same bytes validating instances through the schema would give:
    the list and retrieve actions read them without building model instances. None otherwise.
    """
    if not _plain_schema(schema):
        return None
    types = lookups.column_types(model)
    for name, field in schema.model_fields.items():
        python_type = types.get(name)
        if (
            python_type is None
            or not _plain_field(field, name)
            or field.annotation not in (python_type, Optional[python_type])  # noqa: UP045
        ):
            return None
    return tuple(schema.model_fields) or None


Render = Callable[[Sequence[Any]], Any]


class RowShape:
    """How rows of flat values (`columns`, as `QuerySet.values_list` reads them, across to-one
    relations: `"author__name"`) become the JSON of an output schema, nested objects included.

    `row_shape` makes one for a schema whose JSON is exactly its columns' values and its to-one
    relations' (nested the same way); the bytes equal what validating instances through the
    schema and dumping them gives.
    """

    __slots__ = ("_render", "columns", "relations")

    def __init__(
        self,
        columns: tuple[str, ...],
        render: Render | None,
        relations: frozenset[tuple[str, ...]] = frozenset(),
    ) -> None:
        self.columns = columns
        # None: the row's leading values are the schema's fields, in order (plain columns).
        self._render = render
        # The relation paths the rows join (`("author",)`, `("team", "lead")`).
        self.relations = relations

    def json(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """A JSON array of the objects these rows (with any further values after) hold."""
        render = self._render
        if render is None:
            columns = self.columns
            width = len(columns)
            return to_json(
                [dict(zip(columns, row[:width], strict=True)) for row in rows],
                inf_nan_mode="null",
            )
        return to_json([render(row) for row in rows], inf_nan_mode="null")

    def one_json(self, row: Sequence[Any]) -> bytes:
        """The JSON object this row holds."""
        if self._render is None:
            columns = self.columns
            return to_json(
                dict(zip(columns, row[: len(columns)], strict=True)), inf_nan_mode="null"
            )
        return to_json(self._render(row), inf_nan_mode="null")


@typed_cache
def row_shape(schema: type[BaseModel], model: type[Any]) -> RowShape | None:
    """How to write `schema`'s JSON from rows of `model`, or None when it needs instances.

    Plain columns (`plain_columns`) read their own values. A field named after a to-one
    relation, typed as a schema of the same kind (`AuthorOut`, `AuthorOut | None` when the
    relation may hold none), reads the related object's columns from the same row (a LEFT
    OUTER JOIN), nested as deep as the schemas go; a relation with no object is null.
    Anything else (to-many relations, aliases, serializers, a schema inside itself) is None.
    """
    columns = plain_columns(schema, model)
    if columns is not None:
        return RowShape(columns, None)
    selected: dict[str, int] = {}
    render = _row_render(schema, model, (), selected, frozenset({(schema, model)}))
    if render is None:
        return None
    joined = {tuple(name.split("__")[:-1]) for name in selected}
    return RowShape(tuple(selected), render, frozenset(joined - {()}))


def _row_render(
    schema: Any,
    model: type[Any],
    path: tuple[str, ...],
    selected: dict[str, int],
    seen: frozenset[tuple[Any, type[Any]]],
) -> Render | None:
    """The function writing `schema`'s fields (of the `model` reached by `path`) from a row,
    adding the value names it reads to `selected`; None when the schema needs instances."""
    if not _plain_schema(schema):
        return None
    types = lookups.column_types(model)
    mapper = lookups.mapper_of(model)
    prefix = "".join(f"{step}__" for step in path)
    parts: list[tuple[str, int, Render | None]] = []
    for name, field in schema.model_fields.items():
        if not _plain_field(field, name):
            return None
        python_type = types.get(name)
        if python_type is not None:
            if field.annotation not in (python_type, Optional[python_type]):  # noqa: UP045
                return None
            parts.append((name, selected.setdefault(prefix + name, len(selected)), None))
            continue
        prop = mapper.relationships.get(name)
        # Many-to-one only: the object a foreign key names, at most one per row.
        if prop is None or prop.direction is not MANYTOONE or prop.secondary is not None:
            return None
        nested, optional = _optional_of(field.annotation)
        target = prop.mapper.class_
        if (
            nested is None
            or (nested, target) in seen
            or (not optional and any(column.nullable for column in prop.local_columns))
            or len(prop.local_remote_pairs or ()) != 1
        ):
            return None
        inner = _row_render(nested, target, (*path, name), selected, seen | {(nested, target)})
        if inner is None:
            return None
        # The related object's key says whether the join found one (its columns may be NULL).
        key = selected.setdefault(f"{prefix}{name}__{lookups.primary_key(target)}", len(selected))
        parts.append((name, key, inner))

    def render(row: Sequence[Any]) -> dict[str, Any]:
        return {
            name: row[at] if inner is None or row[at] is None else inner(row)
            for name, at, inner in parts
        }

    return render


def _optional_of(annotation: Any) -> tuple[Any, bool]:
    """(`X`, whether None is allowed) for an annotation `X`, `X | None` or `Optional[X]` where
    `X` is a pydantic model; (None, False) for anything else."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) in (Union, types.UnionType):
        arguments = [a for a in get_args(annotation) if a is not type(None)]
        if len(arguments) == 1 and len(get_args(annotation)) == 2:
            found, _ = _optional_of(arguments[0])
            return found, found is not None
    return None, False


def _nested_schemas(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds: `X`, `X | None`, `list[X]`, `Annotated[X, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = get_origin(annotation)
    if origin is None:
        return
    arguments = get_args(annotation)
    if origin is Annotated:
        arguments = arguments[:1]
    elif origin not in (Union, types.UnionType) and (
        not isinstance(origin, type)
        or not issubclass(origin, Iterable)
        or issubclass(origin, str | bytes | Mapping)
    ):
        return
    for argument in arguments:
        yield from _nested_schemas(argument)


def _read_relations(
    schema: type[BaseModel], model: type[Any], seen: frozenset[tuple[type[Any], type[Any]]]
) -> Iterator[tuple[tuple[str, ...], bool]]:
    mapper = lookups.mapper_of(model)
    for name, field in schema.model_fields.items():
        # `from_attributes` reads the alias when there is one (validate_by_alias), else the name.
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        prop = mapper.relationships.get(alias or name) or mapper.relationships.get(name)
        if prop is None:
            continue
        to_one = not prop.uselist
        yield (prop.key,), to_one
        target = prop.mapper.class_
        for nested in _nested_schemas(field.annotation):
            if (nested, target) in seen:  # a schema inside itself: one level is loaded
                continue
            for path, joined in _read_relations(nested, target, seen | {(nested, target)}):
                yield (prop.key, *path), to_one and joined


@typed_cache
def relation_paths(
    schema: type[BaseModel], model: type[Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The relations `schema` shows of `model`, as `(select_related, prefetch_related)` paths.

    A schema field named after a relationship shows it (nested schemas, `X | None` and
    `list[X]`, are followed into the related model). A path of to-one relations only is
    joined; one that crosses a to-many is prefetched. Nothing else is loaded.
    """
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return (), ()
    joined: dict[str, None] = {}
    prefetched: dict[str, None] = {}
    for path, to_one in _read_relations(schema, model, frozenset({(schema, model)})):
        (joined if to_one else prefetched)["__".join(path)] = None
    return tuple(joined), tuple(prefetched)
