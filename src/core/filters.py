"""FilterSet classes, django-filter style: declared, typed query-parameter filters for a list.

A `FilterSet` names the query parameters a list accepts, each bound to a model field and a
lookup; `Meta.model` / `Meta.fields` generate filters for columns as django-filter does, and
`method="filter_xyz"` hands the value to a method of the FilterSet. A ModelViewSet takes one as
`filterset_class`; every filter then appears in OpenAPI as a typed query parameter, and a value
that does not convert is a 400 (`invalid_filter`) whose `field` names the parameter.

Filters only build QuerySet lookups (`.filter(views__gte=10)`): the lookups module checks every
field and value, and the repository adapters write the SQL.

Example:
    >>> class PostFilter(FilterSet):  # doctest: +SKIP
    ...     title = CharFilter(lookup_expr="icontains")
    ...     min_views = NumberFilter(field_name="views", lookup_expr="gte")
    ...     class Meta:
    ...         model = Post
    ...         fields = {"is_published": ["exact"], "created_at": ["year", "gte"]}
"""

from __future__ import annotations

import copy
import datetime
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import TypeAdapter, ValidationError

from core.errors import ConfigurationError, FieldError, InvalidFilterError
from core.models import Q, QuerySet, lookups
from core.ports.repository import DATE_PARTS, LOOKUPS

__all__ = [
    "BaseCSVFilter",
    "BaseInFilter",
    "BaseRangeFilter",
    "BooleanFilter",
    "CharFilter",
    "ChoiceFilter",
    "DateFilter",
    "DateFromToRangeFilter",
    "DateTimeFilter",
    "Filter",
    "FilterSet",
    "NumberFilter",
    "RangeFilter",
    "UUIDFilter",
]

FILTER_LOOKUPS = LOOKUPS | {"date"}
"""The lookups a filter may use: the QuerySet's, and `date` (the day of a datetime column)."""

_CSV_LOOKUPS = frozenset({"in", "range"})
_MAX_CSV_ITEMS = 100
_EXCERPT = 32
_NUMBERS = (int, float, decimal.Decimal)


@cache
def _adapter(python_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(python_type)


def _excerpt(raw: str) -> str:
    return raw if len(raw) <= _EXCERPT else raw[:_EXCERPT] + "…"


class Filter:
    """One query parameter: `?<name>=value` filters `field_name` with `lookup_expr`.

    Args:
        field_name: the model field, across relations with `__` (`author__email`); the
            parameter's own name by default, so `min_views = NumberFilter(field_name="views",
            lookup_expr="gte")` serves `?min_views=10` as `views__gte=10`.
        lookup_expr: a QuerySet lookup (`exact`, `iexact`, `icontains`, `in`, `gte`, `range`,
            `year`, `isnull`, ...) or `date` (the day of a datetime column).
        method: the name of a FilterSet method `(queryset, name, value) -> QuerySet` that does
            the filtering instead; `name` is `field_name`, `value` the converted value.
        exclude: leave out the matching objects instead of keeping them.
        label: the parameter's description in OpenAPI.

    `in` and `range` take comma-separated values (`?id__in=1,2,3`, `?views__range=10,20`).
    """

    python_type: ClassVar[Any] = None
    """The value's type; None: the model field's (a string when there is no model)."""
    default_lookup: ClassVar[str] = "exact"

    def __init__(
        self,
        field_name: str | None = None,
        lookup_expr: str | None = None,
        *,
        method: str | None = None,
        exclude: bool = False,
        label: str | None = None,
    ) -> None:
        self.field_name = field_name
        self.lookup_expr = lookup_expr or self.default_lookup
        self.method = method
        self.exclude = exclude
        self.label = label
        self.name = ""
        self.column_type: Any = None
        self.value_type: Any = str
        # The integer column's range (documented; the lookup refuses values past it).
        self.bounds: tuple[int, int] | None = None
        if self.lookup_expr not in FILTER_LOOKUPS:
            raise ConfigurationError(
                f"Unknown lookup_expr {self.lookup_expr!r}. Lookups: "
                f"{', '.join(sorted(FILTER_LOOKUPS))}."
            )

    # -- binding -------------------------------------------------------------------------------
    def bind(self, name: str, model: type[Any] | None) -> Filter:
        """A copy of this filter serving `?<name>=` on `model` (done once per FilterSet class)."""
        bound = copy.copy(self)
        bound.name = name
        bound.field_name = self.field_name or name
        if model is not None:
            try:
                bound.column_type = lookups.field_type(model, bound.field_name)
                if "__" not in bound.field_name and bound.lookup_expr not in DATE_PARTS:
                    bound.bounds = lookups.integer_bounds(model).get(bound.field_name)
            except FieldError as exc:
                if self.method is None:  # a method filter may name no column at all
                    raise ConfigurationError(f"Filter {name!r}: {exc.detail}") from None
        bound.value_type = bound.resolved_type()
        return bound

    def item_type(self) -> Any:
        """The type of one value (each of an `in` or `range` list)."""
        if self.python_type is not None:
            return self.python_type
        return self.column_type or str

    def resolved_type(self) -> Any:
        if self.lookup_expr == "isnull":
            return bool
        if self.lookup_expr in DATE_PARTS:
            # Documented with its range, so a generated value is one the lookup takes.
            low, high = lookups.DATE_PART_LIMITS[self.lookup_expr]
            return Annotated[int, PydanticField(ge=low, le=high)]
        if self.lookup_expr == "date":
            return datetime.date
        return self.item_type()

    @property
    def many(self) -> bool:
        return self.lookup_expr in _CSV_LOOKUPS

    # -- values --------------------------------------------------------------------------------
    def query_params(self) -> tuple[str, ...]:
        return (self.name,)

    def convert(self, raw: str, param: str) -> Any:
        """`raw` as the filter's value type, or a 400 naming `param`."""
        try:
            if self.value_type in (datetime.date, datetime.datetime) and _NUMERIC.match(raw):
                # Pydantic reads digits as a Unix time; the document says ISO 8601.
                raise ValidationError.from_exception_data("date", [])
            value = _adapter(self.value_type).validate_python(raw)
        except ValidationError:
            label = lookups.type_label(self.value_type)
            if self.lookup_expr in DATE_PARTS:
                low, high = lookups.DATE_PART_LIMITS[self.lookup_expr]
                label = f"an integer in [{low}, {high}]"
            elif label == "value" or getattr(self.value_type, "__origin__", None) is Literal:
                label = "one of " + ", ".join(map(str, self.choices_of()))
            raise InvalidFilterError(
                f"Invalid value {_excerpt(raw)!r} for {param}: expected {label}.", field=param
            ) from None
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)  # as the database takes naive values
        return value

    def choices_of(self) -> tuple[Any, ...]:
        return ()

    def parse(self, params: Mapping[str, str]) -> Any:
        """The converted value of this filter's parameter; None when it is absent or empty."""
        raw = params.get(self.name)
        if raw is None or raw == "":
            return None
        if not self.many:
            return self.convert(raw, self.name)
        items = [item.strip() for item in raw.split(",")]
        if self.lookup_expr == "range" and len(items) != 2:
            raise InvalidFilterError(
                f"{self.name} needs two comma-separated values (low,high), got {_excerpt(raw)!r}.",
                field=self.name,
            )
        if len(items) > _MAX_CSV_ITEMS:
            raise InvalidFilterError(
                f"{self.name} takes at most {_MAX_CSV_ITEMS} values.", field=self.name
            )
        return [self.convert(item, self.name) for item in items]

    # -- filtering -----------------------------------------------------------------------------
    def condition(self, value: Any) -> Q:
        field = self.field_name or self.name
        if self.lookup_expr == "date":
            return _day(field, self.column_type, value)
        lookup = field if self.lookup_expr == "exact" else f"{field}__{self.lookup_expr}"
        return Q(**{lookup: value})

    def filter(self, queryset: QuerySet[Any], value: Any) -> QuerySet[Any]:
        condition = self.condition(value)
        return queryset.exclude(condition) if self.exclude else queryset.filter(condition)

    # -- OpenAPI -------------------------------------------------------------------------------
    def description(self) -> str:
        if self.label:
            return self.label
        if self.method is not None:
            return f"Filter by {self.name}."
        return f"{self.field_name} ({self.lookup_expr})."

    def openapi_parameters(self) -> list[dict[str, Any]]:
        schema = _documented_schema(self)
        parameter: dict[str, Any] = {
            "name": self.name,
            "in": "query",
            "required": False,
            "description": self.description(),
        }
        if schema.get("type") != "string" or "format" in schema:
            parameter["allowEmptyValue"] = True  # empty is "not given", whatever the type
        if self.many:
            parameter.update(style="form", explode=False)
            schema = {"type": "array", "items": schema}
            if self.lookup_expr == "range":
                schema.update(minItems=2, maxItems=2)
            else:
                schema["maxItems"] = _MAX_CSV_ITEMS
        parameter["schema"] = schema
        return [parameter]


_NUMERIC = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")


def _documented_schema(item: Filter) -> dict[str, Any]:
    """The JSON schema of a filter's value, with its integer column's range."""
    schema: dict[str, Any] = _adapter(item.value_type).json_schema()
    if item.bounds is not None and schema.get("type") == "integer":
        schema.setdefault("minimum", item.bounds[0])
        schema.setdefault("maximum", item.bounds[1])
    return schema


def _day(field: str, column_type: Any, value: datetime.date) -> Q:
    if column_type is datetime.datetime:
        start = datetime.datetime.combine(value, datetime.time(), datetime.UTC)
        return Q(**{f"{field}__gte": start, f"{field}__lt": start + datetime.timedelta(days=1)})
    return Q(**{field: value})


class CharFilter(Filter):
    python_type = str


class NumberFilter(Filter):
    """A number: the model field's kind (integer, decimal, float), a number otherwise."""

    def item_type(self) -> Any:
        return self.column_type if self.column_type in _NUMBERS else float


class BooleanFilter(Filter):
    """`true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`)."""

    python_type = bool


class DateFilter(Filter):
    python_type = datetime.date


class DateTimeFilter(Filter):
    python_type = datetime.datetime


class UUIDFilter(Filter):
    python_type = uuid.UUID


class ChoiceFilter(Filter):
    """One of `choices`: an enum in OpenAPI; any other value is a 400."""

    def __init__(
        self,
        field_name: str | None = None,
        lookup_expr: str | None = None,
        *,
        choices: Iterable[Any],
        **kwargs: Any,
    ) -> None:
        self.choices = tuple(c[0] if isinstance(c, tuple) else c for c in choices)
        if not self.choices:
            raise ConfigurationError("ChoiceFilter needs at least one choice.")
        super().__init__(field_name, lookup_expr, **kwargs)

    def item_type(self) -> Any:
        return Literal[self.choices]

    def choices_of(self) -> tuple[Any, ...]:
        return self.choices

    def convert(self, raw: str, param: str) -> Any:
        for choice in self.choices:
            if str(choice) == raw:
                return choice
        return super().convert(raw, param)  # the 400 listing the choices


class BaseCSVFilter(Filter):
    """Comma-separated values; combine it with a typed filter (`class NumberInFilter(
    BaseInFilter, NumberFilter)`)."""

    default_lookup = "in"


class BaseInFilter(BaseCSVFilter):
    """`?id__in=1,2,3`: any of the values (lookup `in`)."""


class BaseRangeFilter(BaseCSVFilter):
    """`?views__range=10,20`: between the two values, both included (lookup `range`)."""

    default_lookup = "range"


class RangeFilter(Filter):
    """A min/max pair: `?<name>_min=` and `?<name>_max=` (both included; either may be left
    out)."""

    suffixes: ClassVar[tuple[str, str]] = ("min", "max")

    def query_params(self) -> tuple[str, ...]:
        return tuple(f"{self.name}_{suffix}" for suffix in self.suffixes)

    def parse(self, params: Mapping[str, str]) -> Any:
        low_param, high_param = self.query_params()
        low, high = params.get(low_param) or None, params.get(high_param) or None
        if low is None and high is None:
            return None
        return (
            None if low is None else self.convert(low, low_param),
            None if high is None else self.convert(high, high_param),
        )

    def resolved_type(self) -> Any:
        return self.item_type()

    def condition(self, value: Any) -> Q:
        low, high = value
        field = self.field_name or self.name
        conditions: dict[str, Any] = {}
        if low is not None:
            conditions[f"{field}__gte"] = _start(low, self.column_type)
        if high is not None:
            if self.column_type is datetime.datetime and type(high) is datetime.date:
                # A day as the upper bound takes the whole of that day.
                conditions[f"{field}__lt"] = _start(high, self.column_type) + datetime.timedelta(
                    days=1
                )
            else:
                conditions[f"{field}__lte"] = high
        return Q(**conditions)

    def openapi_parameters(self) -> list[dict[str, Any]]:
        schema = _documented_schema(self)
        label = self.label or f"{self.field_name}"
        return [
            {
                "name": param,
                "in": "query",
                "required": False,
                "description": f"{label}: {'at least' if i == 0 else 'at most'} this value.",
                "schema": schema,
                "allowEmptyValue": True,  # empty is "not given"
            }
            for i, param in enumerate(self.query_params())
        ]


def _start(value: Any, column_type: Any) -> Any:
    if column_type is datetime.datetime and type(value) is datetime.date:
        return datetime.datetime.combine(value, datetime.time(), datetime.UTC)
    return value


class DateFromToRangeFilter(RangeFilter):
    """`?<name>_after=2024-01-01&<name>_before=2024-01-31`: dates, both days included."""

    python_type = datetime.date
    suffixes = ("after", "before")


_FILTER_FOR_TYPE: dict[Any, type[Filter]] = {
    str: CharFilter,
    int: NumberFilter,
    float: NumberFilter,
    decimal.Decimal: NumberFilter,
    bool: BooleanFilter,
    datetime.date: DateFilter,
    datetime.datetime: DateTimeFilter,
    uuid.UUID: UUIDFilter,
}


class FilterSet:
    """Declared filters for a list, django-filter style.

    Declare filters as class attributes, or let `Meta` generate them: `fields = ["title"]`
    gives `?title=` (exact); `fields = {"views": ["exact", "gte"]}` gives `?views=` and
    `?views__gte=`. Declared filters win over generated ones of the same name.

    Use it in a ModelViewSet (`filterset_class = PostFilter`) or directly:
    `PostFilter(request.query_params, Post.objects.using(db)).qs`.
    """

    base_filters: ClassVar[dict[str, Filter]] = {}
    model: ClassVar[type[Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        meta = cls.__dict__.get("Meta") or getattr(cls, "Meta", None)
        model = getattr(meta, "model", None)
        declared: dict[str, Filter] = {}
        for base in reversed(cls.__mro__):
            for key, value in vars(base).items():
                if isinstance(value, Filter):
                    declared[key] = value
        generated = _generated(model, getattr(meta, "fields", ()))
        cls.model = model
        cls.base_filters = {
            name: spec.bind(name, model) for name, spec in {**generated, **declared}.items()
        }
        for spec in cls.base_filters.values():
            if spec.method is not None and not callable(getattr(cls, spec.method, None)):
                raise ConfigurationError(
                    f"{cls.__name__}.{spec.name}: method {spec.method!r} is not defined."
                )
        names = [param for spec in cls.base_filters.values() for param in spec.query_params()]
        if len(names) != len(set(names)):
            raise ConfigurationError(f"{cls.__name__}: two filters share a query parameter.")

    def __init__(
        self,
        data: Mapping[str, str] | None = None,
        queryset: QuerySet[Any] | None = None,
        *,
        request: Any = None,
    ) -> None:
        self.data: Mapping[str, str] = data if data is not None else {}
        self.queryset = queryset
        self.request = request
        self.filters = self.base_filters

    @classmethod
    def query_params(cls) -> frozenset[str]:
        """Every query parameter the filters read."""
        return frozenset(p for spec in cls.base_filters.values() for p in spec.query_params())

    @classmethod
    def openapi_parameters(cls) -> list[dict[str, Any]]:
        """The OpenAPI parameter objects of the filters, typed."""
        return [p for spec in cls.base_filters.values() for p in spec.openapi_parameters()]

    @property
    def qs(self) -> QuerySet[Any]:
        """The queryset given, filtered by the data given."""
        if self.queryset is None:
            if self.model is None:
                raise ConfigurationError(f"{type(self).__name__} has no queryset and no model.")
            self.queryset = self.model.objects.all()
        return self.filter_queryset(self.queryset)

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Apply each filter whose parameter was sent; a bad value is a 400 naming it."""
        for name, spec in self.filters.items():
            value = spec.parse(self.data)
            if value is None:
                continue
            try:
                if spec.method is not None:
                    method = getattr(self, spec.method)
                    queryset = method(queryset, spec.field_name, value)
                    if not isinstance(queryset, QuerySet):
                        raise ConfigurationError(
                            f"{type(self).__name__}.{spec.method} must return a QuerySet."
                        )
                else:
                    queryset = spec.filter(queryset, value)
            except FieldError as exc:
                # A value the column cannot take (an integer out of its range, say).
                raise InvalidFilterError(f"{name}: {exc.detail}", field=name) from None
        return queryset


def _generated(
    model: type[Any] | None, fields: Sequence[str] | Mapping[str, Sequence[str]]
) -> dict[str, Filter]:
    if not fields:
        return {}
    if model is None:
        raise ConfigurationError("Meta.fields needs Meta.model.")
    wanted = fields if isinstance(fields, Mapping) else {name: ["exact"] for name in fields}
    generated: dict[str, Filter] = {}
    for field, lookup_list in wanted.items():
        try:
            column_type = lookups.field_type(model, field)
        except FieldError as exc:
            raise ConfigurationError(f"Meta.fields: {exc.detail}") from None
        kind = _FILTER_FOR_TYPE.get(column_type, Filter)
        for lookup in lookup_list:
            name = field if lookup == "exact" else f"{field}__{lookup}"
            generated[name] = kind(field_name=field, lookup_expr=lookup)
    return generated
