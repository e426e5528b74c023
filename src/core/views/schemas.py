"""Pydantic schemas derived from models when a ViewSet declares none, and their partial (PATCH)
variants."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydanticField

from core.models import lookups
from core.models.lookups import typed_cache


def _columns(model: type[Any]) -> list[tuple[str, Any, Any]]:
    """(name, python type, column) for each column attribute, in declaration order."""
    types = lookups.column_types(model)
    mapper = lookups.mapper_of(model)
    return [(attr.key, types[attr.key] or Any, attr.columns[0]) for attr in mapper.column_attrs]


@typed_cache
def output_schema_for(model: type[Any]) -> type[BaseModel]:
    """Every column of the model, read from attributes (`from_attributes`), except those marked
    `info={"write_only": True}` (a password hash never goes out)."""
    fields: dict[str, Any] = {
        name: (Optional[py] if column.nullable else py, ...)  # noqa: UP045
        for name, py, column in _columns(model)
        if not column.info.get("write_only")
    }
    return create_model(
        f"{model.__name__}Output", __config__=ConfigDict(from_attributes=True), **fields
    )


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


@typed_cache
def input_schema_for(model: type[Any]) -> type[BaseModel]:
    """The columns a client may write; those with a default or NULL allowed are optional."""
    fields: dict[str, Any] = {}
    for name, py, column in _columns(model):
        if _generated(column, model):
            continue
        annotation = _constrained(model, name, py, column)
        if column.nullable:
            fields[name] = (Optional[annotation], None)  # noqa: UP045
        elif column.default is not None:
            fields[name] = (annotation, column.default.arg)
        else:
            fields[name] = (annotation, ...)
    return create_model(f"{model.__name__}Input", __config__=ConfigDict(extra="forbid"), **fields)


@typed_cache
def partial_schema_for(schema: type[BaseModel]) -> type[BaseModel]:
    """The same fields, all optional, for PATCH: only what the client sends is applied."""
    fields: dict[str, Any] = {
        name: (Optional[field.annotation], None)  # noqa: UP045
        for name, field in schema.model_fields.items()
    }
    return create_model(f"{schema.__name__}Partial", __config__=schema.model_config, **fields)


@typed_cache
def page_schema_for(schema: type[BaseModel]) -> type[BaseModel]:
    """DRF's page envelope around a list of `schema` (documentation of the list route)."""
    return create_model(
        f"{schema.__name__}Page",
        count=(int, ...),
        next=(Optional[str], None),  # noqa: UP045
        previous=(Optional[str], None),  # noqa: UP045
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


@typed_cache
def plain_columns(schema: type[BaseModel], model: type[Any]) -> tuple[str, ...] | None:
    """The model columns `schema` is made of, when its JSON is exactly those columns' values.

    That holds when every field is a column of `model` with the column's own Python type
    (optional or not), no alias, no exclusion and no serializer, and the schema has no
    validators, computed fields or serialization settings. Rows of those columns can then go
    straight to JSON, with the same bytes validating instances through the schema would give:
    the list and retrieve actions read them without building model instances. None otherwise.
    """
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    decorators = schema.__pydantic_decorators__
    if (
        any(
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
        or not set(schema.model_config) <= _PLAIN_CONFIG
    ):
        return None
    types = lookups.column_types(model)
    for name, field in schema.model_fields.items():
        python_type = types.get(name)
        if (
            python_type is None
            or field.alias not in (None, name)
            or field.serialization_alias not in (None, name)
            or field.exclude
            or any(not type(m).__module__.startswith("annotated_types") for m in field.metadata)
            or field.annotation not in (python_type, Optional[python_type])  # noqa: UP045
        ):
            return None
    return tuple(schema.model_fields) or None
