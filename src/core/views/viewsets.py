"""Model ViewSets: DRF's CRUD actions over the Repository port, with filtering and pagination."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from core.errors import FieldError, NotFoundError, UniqueViolationError, ValidationFailedError
from core.models import Model, Q, QuerySet, lookups, relations
from core.models.lookups import typed_cache
from core.permissions import Permission, checks_objects, owner_fields
from core.ports.repository import LOOKUPS
from core.views import schemas
from core.views.actions import actions_of
from core.views.base import JSONBytesResponse, ViewSet, list_adapter
from core.views.errors import InvalidBodyError
from core.views.pagination import (
    BadPaginationParameter,
    CursorPagination,
    PageNumberPagination,
    Pagination,
    cursor_ordering_error,
)

if TYPE_CHECKING:
    from core.filters import FilterSet

SEARCH_PARAM = "search"
ORDERING_PARAM = "ordering"


class GenericViewSet(ViewSet):
    """A ViewSet bound to a model: lookups, querysets, schemas, filtering, pagination; no routes.

    Class attributes:
        model: the Model class served.
        input_schema / output_schema: pydantic models; derived from the model when absent.
        lookup_field: the column a detail route looks objects up by (`id`); its type types the
            path parameter, and a value that does not convert answers 422 `invalid_lookup_value`.
        unique_fields: columns checked for an existing value before a write (409 naming the field).
        page_size / max_page_size / pagination_class: the list's pages (`?page=`, `?page_size=`).
        filterset_fields: columns clients may filter on (`?is_published=true`, `?views__gte=10`).
        filterset_class: a `core.filters.FilterSet` of declared, typed filters (beside
            `filterset_fields`: a parameter neither names is a 400).
        search_fields: columns `?search=` looks in (case-insensitive contains, any of them).
        ordering_fields / ordering: what `?ordering=-created_at,title` may name / the default.
        read_only_fields / write_only_fields: adjust the derived schemas (DRF's names): read-only
            columns are left out of the input, write-only ones are accepted even when the
            server owns them by default and never appear in the output or in an error.
        owner_field: the column holding the owner's id (for IsOwner); server-owned.
        queryset: the objects served, DRF style (`Post.objects.select_related("author")`);
            `model` defaults to its model. `get_queryset` starts from it.

    Relations: the list, retrieve, create and update actions load the relations the output
    schema shows (a field named after a relationship, nested schemas followed), to-one paths
    joined and to-many ones prefetched (`schemas.relation_paths`), on top of what `queryset` or
    `get_queryset` already loads; nothing else is loaded.

    A derived input schema never holds server-owned columns: generated keys, password hashes,
    `is_superuser`/`is_staff`/`is_active`, `last_login`, groups and permissions, stamped
    timestamps, and the owner field IsOwner checks (`create` fills it with the user's id).
    """

    model: ClassVar[type[Model]]
    queryset: ClassVar[QuerySet[Any] | None] = None
    input_schema: ClassVar[type[BaseModel] | None] = None
    lookup_field: ClassVar[str] = "id"
    unique_fields: ClassVar[Sequence[str]] = ()
    page_size: ClassVar[int] = 20
    max_page_size: ClassVar[int] = 100
    pagination_class: ClassVar[type[Pagination] | None] = PageNumberPagination
    filterset_fields: ClassVar[Sequence[str]] = ()
    filterset_class: ClassVar[type[FilterSet] | None] = None
    search_fields: ClassVar[Sequence[str]] = ()
    ordering_fields: ClassVar[Sequence[str]] = ()
    ordering: ClassVar[Sequence[str]] = ()
    owner_field: ClassVar[str | None] = None
    read_only_fields: ClassVar[Sequence[str]] = ()
    write_only_fields: ClassVar[Sequence[str]] = ()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        queryset = cls.__dict__.get("queryset")
        if queryset is not None and "model" not in cls.__dict__:
            cls.model = queryset.model

    # -- schemas ----------------------------------------------------------------------------
    @classmethod
    def resolved_output_schema(cls) -> type[BaseModel]:
        return cls.output_schema or schemas.output_schema_for(
            cls.model, frozenset(cls.write_only_fields)
        )

    @classmethod
    def resolved_input_schema(cls) -> type[BaseModel]:
        return cls.input_schema or schemas.input_schema_for(
            cls.model,
            frozenset(cls.read_only_fields) | _owned_fields(cls),
            frozenset(cls.write_only_fields),
        )

    @classmethod
    def owned_fields(cls) -> frozenset[str]:
        """The owner columns (IsOwner's, or `owner_field`) a create fills with the user's id."""
        return _owned_fields(cls)

    def get_output_schema(self) -> type[BaseModel]:
        return self.resolved_output_schema()

    # -- querysets and objects --------------------------------------------------------------
    def get_queryset(self, db: Any) -> QuerySet[Any]:
        """The objects this ViewSet serves (`queryset`, else all of `model`'s); override to scope
        them (e.g. published only)."""
        if self.queryset is not None:
            return self.queryset.using(db)
        return self.model.objects.using(db)

    def load_relations(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset`, also loading the relations the output schema shows (see the class); a
        relation `queryset` already loads keeps the way it was asked for."""
        joined, prefetched = schemas.relation_paths(self.get_output_schema(), queryset.model)
        if queryset.query.loads and (joined or prefetched):
            asked = {"__".join(load.path) for load in queryset.query.loads}
            joined = tuple(path for path in joined if path not in asked)
            prefetched = tuple(path for path in prefetched if path not in asked)
        if joined:
            queryset = queryset.select_related(*joined)
        if prefetched:
            queryset = queryset.prefetch_related(*prefetched)
        return queryset

    async def with_relations(self, db: Any, obj: Any) -> Any:
        """`obj` with the relations the output schema shows loaded on it (after a write)."""
        joined, prefetched = schemas.relation_paths(self.get_output_schema(), type(obj))
        if all(relations.is_loaded(obj, path.split("__")[0]) for path in (*joined, *prefetched)):
            # Nothing shown, or read with the object and still current (a write that changes a
            # relation's key column unloads it).
            return obj
        base = self.queryset if self.queryset is not None else self.model.objects
        pk = lookups.primary_key(type(obj))
        found = await self.load_relations(base.using(db)).filter(**{pk: obj.pk}).all()
        return found[0] if found else obj

    async def get_object(self, db: Any, **kwargs: Any) -> Any:
        """The object named by the lookup value in `kwargs`, after its object permissions.

        Raises:
            NotFoundError: no such object in `get_queryset(db)` (404).
        """
        try:
            value = kwargs[self.lookup_field]
        except KeyError:
            raise TypeError(
                f"get_object() needs the lookup value {self.lookup_field}=..."
            ) from None
        queryset = self.scope_queryset(self.get_queryset(db))
        if self.action != "destroy":  # a delete shows nothing
            queryset = self.load_relations(queryset)
        obj = await queryset.get_or_none(**{self.lookup_field: value})
        if obj is None:
            raise NotFoundError(f"{self.model.__name__} not found.")
        await self.check_object_permissions(obj)
        return obj

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset` limited by the action's permissions (`Permission.filter_queryset`, e.g.
        `IsOwner(scope=True)`)."""
        for permission in self.get_permissions():
            queryset = permission.filter_queryset(self.request, self, queryset)
        return queryset

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Apply `?<filter>=`, `?search=` and `?ordering=` from the request; unknown names are a
        400."""
        params = self.request.query_params
        reserved = {SEARCH_PARAM, ORDERING_PARAM}
        if self.pagination_class is not None:
            reserved.update(self.pagination_class.query_params)
        if self.filterset_class is not None:
            queryset = self.filterset_class(params, queryset, request=self.request).qs
            reserved.update(self.filterset_class.query_params())
        conditions: dict[str, Any] = {}
        for key, value in params.multi_items():
            if key in reserved:
                continue
            parts = key.split("__")
            base = "__".join(parts[:-1]) if len(parts) > 1 and parts[-1] in LOOKUPS else key
            if base not in self.filterset_fields:
                allowed = ", ".join(self.filterset_fields) or "none"
                raise ValidationFailedError(
                    f"Unknown filter field {key!r}. Filterable fields: {allowed}."
                )
            conditions[key] = value.split(",") if key.endswith(("__in", "__range")) else value
        if conditions:
            queryset = queryset.filter(**conditions)
        term = params.get(SEARCH_PARAM)
        if term and self.search_fields:
            queryset = queryset.filter(
                reduce(operator.or_, (Q(**{f"{f}__icontains": term}) for f in self.search_fields))
            )
        requested = params.get(ORDERING_PARAM)
        if requested:
            fields = [f.strip() for f in requested.split(",") if f.strip()]
            for name in fields:
                if name.lstrip("-") not in self.ordering_fields:
                    allowed = ", ".join(self.ordering_fields) or "none"
                    raise ValidationFailedError(
                        f"Cannot order by {name!r}. Ordering fields: {allowed}."
                    )
            queryset = queryset.order_by(*fields)
        elif self.ordering:
            queryset = queryset.order_by(*self.ordering)
        if not queryset.query.order_by:
            # Pages of an unordered query may overlap or skip rows.
            queryset = queryset.order_by(lookups.primary_key(self.model))
        return queryset

    def _row_shape(self) -> schemas.RowShape | None:
        """How to write one object's response from its row alone, when it can be.

        That is when the output schema is columns and to-one relations (`schemas.row_shape`),
        `get_object`, the object permissions and rendering are the framework's own, and no
        permission of the action looks at objects (`permissions.checks_objects`). Otherwise
        None: load the instance.
        """
        shape = schemas.row_shape(self.get_output_schema(), self.model)
        if shape is None or not _renders_rows(type(self), self.get_permissions()):
            return None
        return shape

    def _rows_of(self, queryset: QuerySet[Any]) -> schemas.RowShape | None:
        """How to write `queryset`'s objects from rows (`schemas.row_shape`), unless it asks
        to prefetch a relation the rows would join: that choice is kept (instances)."""
        shape = schemas.row_shape(self.get_output_schema(), queryset.model)
        if shape is not None and shape.relations:
            for load in queryset.query.loads:
                if load.strategy == "selectin" and load.path in shape.relations:
                    return None
        return shape

    def _insert_columns(self, values: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The output columns when a create can insert the row and answer from what the INSERT
        returns, building no instance.

        That is when the output schema is plain columns, `perform_create` and rendering are the
        framework's own, every value is for a column, and the model has no `__init__` of its own
        and no insert event listeners. Otherwise None: build the instance.
        """
        columns = schemas.plain_columns(self.get_output_schema(), self.model)
        if columns is None or not _inserts_rows(type(self)):
            return None
        known = lookups.column_types(self.model)
        return columns if all(name in known for name in values) else None

    def owner_values(self) -> dict[str, Any]:
        """The owner columns of a new object, set to the requesting user's id."""
        user = getattr(self.request.state, "user", None)
        user_id = getattr(user, "id", None)
        if user_id is None:
            return {}
        # A token user's id is the token's `sub`, a string: give the column its own type.
        return {
            name: lookups.convert_value(self.model, name, user_id) for name in self.owned_fields()
        }

    def validated_update(self, data: BaseModel, instance: Any) -> dict[str, Any]:
        """The fields a PATCH sent, once the whole object they make passes the input schema's
        model validators (the fields themselves were validated on the way in)."""
        sent = data.model_dump(exclude_unset=True)
        schema = self.resolved_input_schema()
        if not schemas.has_model_validators(schema):
            return sent
        current = {
            name: getattr(instance, name)
            for name in schema.model_fields
            if name not in sent and hasattr(instance, name)
        }
        try:
            whole = schema.model_validate({**current, **sent})
        except ValidationError as exc:
            raise InvalidBodyError.from_validation(exc, schema, self.write_only_fields) from None
        return {name: value for name, value in whole.model_dump().items() if name in sent}

    async def check_unique(self, db: Any, data: Mapping[str, Any], instance: Any = None) -> None:
        """Refuse a write that would duplicate a `unique_fields` value (409 naming the field).

        The database's own constraint still decides under a race; it answers the same 409.
        """
        for field in self.unique_fields:
            if field not in data or data[field] is None:
                continue
            queryset = self.model.objects.using(db).filter(**{field: data[field]})
            if instance is not None:
                queryset = queryset.exclude(pk=instance.pk)
            if await queryset.exists():
                raise UniqueViolationError(
                    f"{self.model.__name__} with this {field} already exists.", field=field
                )

    # -- hooks ------------------------------------------------------------------------------
    async def perform_create(self, db: Any, data: dict[str, Any]) -> Any:
        await self.check_unique(db, data)
        return await self.model.objects.using(db).create(**data)

    async def perform_update(self, db: Any, instance: Any, data: dict[str, Any]) -> Any:
        await self.check_unique(db, data, instance)
        known = lookups.column_types(self.model)
        for name, value in data.items():
            setattr(
                instance,
                name,
                lookups.convert_value(self.model, name, value) if name in known else value,
            )
        return await instance.save(db)

    async def perform_destroy(self, db: Any, instance: Any) -> None:
        await instance.delete(db)

    # -- list rendering -----------------------------------------------------------------------
    async def _results_json(self, queryset: QuerySet[Any]) -> bytes:
        """The objects of `queryset` as a JSON array in the output schema.

        When the schema is columns and to-one relations (`schemas.row_shape`), their rows (one
        statement, the relations joined) go straight to JSON: no model instances, no validation
        of what the database returned.
        """
        shape = self._rows_of(queryset)
        if shape is not None:
            return shape.json(await queryset.values_list(*shape.columns))
        adapter = list_adapter(self.get_output_schema())
        objects = await queryset.all()
        return adapter.dump_json(
            adapter.validate_python(objects, from_attributes=True), by_alias=True
        )

    async def _page(
        self, queryset: QuerySet[Any], keys: tuple[str, ...] = (), counted: bool = False
    ) -> tuple[list[Any], list[tuple[Any, ...]], int | None, Callable[[list[Any]], bytes]]:
        """The objects of `queryset` (rows when the output schema can be written from rows, see
        `schemas.row_shape`, else instances), the values of the `keys` columns in each, the
        count of all rows matching without the slice when `counted` and the rows path read it
        in the same statement (else None), and how to write a list of those objects as JSON."""
        shape = self._rows_of(queryset)
        if shape is not None:
            columns = shape.columns
            selected = columns + tuple(k for k in keys if k not in columns)
            total: int | None = None
            if counted:
                rows, total = await queryset.values_list_counted(*selected)
            else:
                rows = await queryset.values_list(*selected)
            at = [selected.index(k) for k in keys]
            return rows, [tuple(row[i] for i in at) for row in rows], total, shape.json
        adapter = list_adapter(self.get_output_schema())
        objects = await queryset.all()

        def objects_json(items: list[Any]) -> bytes:
            return adapter.dump_json(
                adapter.validate_python(items, from_attributes=True), by_alias=True
            )

        values = [tuple(getattr(obj, k) for k in keys) for obj in objects]
        return objects, values, None, objects_json

    async def paginated_response(self, queryset: QuerySet[Any]) -> Response:
        if self.pagination_class is None:
            return JSONBytesResponse(await self._results_json(queryset))
        paginator = self.pagination_class(self.page_size, self.max_page_size)
        if isinstance(paginator, CursorPagination):
            return await self._cursor_response(paginator, queryset)
        params = self.request.query_params
        window = paginator.window(params)
        strategy = paginator.count
        count: int | None = None
        if strategy == "estimated":
            count = await queryset.estimated_count()
            if count is None or count < paginator.estimate_threshold:
                strategy, count = "exact", None
        exact = strategy == "exact"
        # Without an exact count, one row past the page says whether a next page exists.
        end = window.offset + window.limit + (0 if exact else 1)
        items, _, total, render = await self._page(queryset[window.offset : end], counted=exact)
        if exact:
            if total is None:  # past the last row, or instances: only a count can tell
                total = await queryset.count() if items or window.offset else 0
            count = total
            paginator.check(window, count)
            has_next = window.offset + window.limit < count
        else:
            paginator.check(window, window.offset + len(items))
            has_next = len(items) > window.limit
            items = items[: window.limit]
        next_, previous = paginator.links(self.request.url, window, has_next)
        head = b'{"count":%s,"next":%s,"previous":%s,"results":' % (
            b"null" if count is None else b"%d" % count,
            _json_str(next_),
            _json_str(previous),
        )
        return JSONBytesResponse(head + render(items) + b"}")

    async def _cursor_response(
        self, paginator: CursorPagination, queryset: QuerySet[Any]
    ) -> Response:
        """A keyset page: the rows past the cursor's position in the list's ordering."""
        ordering = queryset.query.order_by
        if (error := cursor_ordering_error(queryset.model, ordering)) is not None:
            raise ValidationFailedError(error)
        params = self.request.query_params
        window = paginator.window(params)
        cursor = paginator.cursor(params, len(ordering))
        read, condition = paginator.keyset(ordering, cursor)
        page = queryset.order_by(*(("-" if o.descending else "") + o.column for o in read))
        if condition is not None:
            try:
                page = page.filter(condition)
            except FieldError:  # a position whose values do not fit the columns
                raise BadPaginationParameter("Invalid cursor.") from None
        keys = tuple(o.column for o in ordering)
        items, values, _, render = await self._page(page[: window.limit + 1], keys)
        more = len(items) > window.limit
        items, values = items[: window.limit], values[: window.limit]
        if cursor.reverse:  # read backwards from the position: put the page back in order
            items.reverse()
            values.reverse()
        next_, previous = paginator.cursor_links(
            self.request.url,
            cursor,
            values[0] if values else None,
            values[-1] if values else None,
            more,
        )
        head = b'{"next":%s,"previous":%s,"results":' % (_json_str(next_), _json_str(previous))
        return JSONBytesResponse(head + render(items) + b"}")


@typed_cache
def _owned_fields(cls: type[GenericViewSet]) -> frozenset[str]:
    names = lookups.column_types(cls.model)
    declared = [cls.permission_classes, *cls.permission_classes_by_action.values()]
    declared += [info.permission_classes or () for info in actions_of(cls)]
    found = {f for permissions in declared for f in owner_fields(permissions, cls, names)}
    if cls.owner_field:
        found.add(cls.owner_field)
    return frozenset(f for f in found if f in names)


@typed_cache
def _renders_rows(cls: type[GenericViewSet], permissions: tuple[Permission, ...]) -> bool:
    return (
        cls.get_object is GenericViewSet.get_object
        and cls.check_object_permissions is ViewSet.check_object_permissions
        and cls.render is ViewSet.render
        and cls.to_json is ViewSet.to_json
        and not any(checks_objects(p) for p in permissions)
    )


@typed_cache
def _inserts_rows(cls: type[GenericViewSet]) -> bool:
    mapper = lookups.mapper_of(cls.model)
    return (
        cls.perform_create is GenericViewSet.perform_create
        and cls.check_unique is GenericViewSet.check_unique
        and cls.get_queryset is GenericViewSet.get_queryset
        and cls.render is ViewSet.render
        and cls.to_json is ViewSet.to_json
        and mapper.class_manager.original_init is Model.__init__  # no __init__ of its own
        and not mapper.dispatch.before_insert
        and not mapper.dispatch.after_insert
    )


def _row_json(columns: tuple[str, ...], row: Sequence[Any]) -> bytes:
    # What the plain-columns schema would write for the row (`inf_nan_mode` as pydantic's
    # models default: NaN and infinities as null).
    return to_json(dict(zip(columns, row, strict=True)), inf_nan_mode="null")


def _json_str(value: str | None) -> bytes:
    return to_json(value)


class ListModelMixin:
    async def list(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """GET /things/ — a page of objects, filtered, searched and ordered by query parameters."""
        queryset = self.load_relations(self.scope_queryset(self.get_queryset(db)))
        return await self.paginated_response(self.filter_queryset(queryset))


class RetrieveModelMixin:
    async def retrieve(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """GET /things/{lookup}/ — one object."""
        shape = self._row_shape() if type(self).retrieve is RetrieveModelMixin.retrieve else None
        if shape is None:
            return await self.get_object(db, **kwargs)
        # Nothing needs the instance (see `_row_shape`): the row (its to-one relations joined)
        # goes straight to JSON.
        queryset = self.scope_queryset(self.get_queryset(db))
        if shape is not self._rows_of(queryset):  # a relation the queryset prefetches
            return await self.get_object(db, **kwargs)
        queryset = queryset.filter(**{self.lookup_field: kwargs[self.lookup_field]})
        rows = await queryset[:2].values_list(*shape.columns)
        if not rows:
            raise NotFoundError(f"{self.model.__name__} not found.")
        if len(rows) > 1:
            raise self.model.MultipleObjectsReturned(
                f"More than one {self.model.__name__} has this {self.lookup_field}."
            )
        return JSONBytesResponse(shape.one_json(rows[0]))


class CreateModelMixin:
    async def create(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """POST /things/ — validate the input schema and insert; 201 with the object."""
        data: BaseModel = kwargs["data"]
        values = {**self.owner_values(), **data.model_dump(exclude_unset=True)}
        columns = (
            self._insert_columns(values) if type(self).create is CreateModelMixin.create else None
        )
        if columns is None:
            return await self.with_relations(db, await self.perform_create(db, values))
        # Nothing needs the instance (see `_insert_columns`): INSERT ... RETURNING to JSON.
        await self.check_unique(db, values)
        # Nothing else is written in this request: the row commits on its own.
        row = await self.model.objects.using(db).insert_returning(values, columns, autocommit=True)
        return JSONBytesResponse(_row_json(columns, row), status_code=201)


class UpdateModelMixin:
    async def update(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """PUT /things/{lookup}/ — replace the writable fields.

        With `partial=True` (PATCH, as DRF's `partial_update` calls it) only the fields sent
        change; the input schema's model validators still see the whole object.
        """
        partial = bool(kwargs.pop("partial", False))
        data: BaseModel = kwargs.pop("data")
        instance = await self.get_object(db, **kwargs)
        values = self.validated_update(data, instance) if partial else data.model_dump()
        return await self.with_relations(db, await self.perform_update(db, instance, values))

    async def partial_update(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """PATCH /things/{lookup}/ — change only the fields sent.

        It is `update` with `partial=True`, as in DRF: a ViewSet that overrides `update`
        (to disable it, say) changes PATCH the same way.
        """
        return await self.update(request, db, partial=True, **kwargs)


class DestroyModelMixin:
    async def destroy(self: Any, request: Request, db: Any, **kwargs: Any) -> Any:
        """DELETE /things/{lookup}/ — 204."""
        instance = await self.get_object(db, **kwargs)
        await self.perform_destroy(db, instance)


class ReadOnlyModelViewSet(ListModelMixin, RetrieveModelMixin, GenericViewSet):
    """list and retrieve only; writes to its routes answer 405."""


class ModelViewSet(
    ListModelMixin,
    CreateModelMixin,
    RetrieveModelMixin,
    UpdateModelMixin,
    DestroyModelMixin,
    GenericViewSet,
):
    """Full CRUD for a model, no FastAPI decorators.

    Routes: `GET/POST /posts/`, `GET/PUT/PATCH/DELETE /posts/{id}/`, plus each `@action`.

    Example:
        >>> class PostViewSet(ModelViewSet):  # doctest: +SKIP
        ...     model = Post
        ...     input_schema = PostInput
        ...     output_schema = PostOutput
        ...     permission_classes = [IsAuthenticated]
        ...     permission_classes_by_action = {"list": [AllowAny], "retrieve": [AllowAny]}
    """
