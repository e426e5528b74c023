"""The routes a ViewSet or APIView becomes: paths, methods, parameters typed from the model,
OpenAPI options and one endpoint per action (what `AutoRouter` mounts and `core routes` lists)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from fastapi import Path, Query
from pydantic import BaseModel
from sqlalchemy import Index, PrimaryKeyConstraint, UniqueConstraint
from starlette.responses import Response

from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from core.models import lookups
from core.permissions import can_refuse, resolve_permissions
from core.routing.endpoint import action_endpoint
from core.views import schemas
from core.views.actions import actions_of
from core.views.base import APIView, ViewSet, permissions_for_action
from core.views.errors import error_responses
from core.views.pagination import MAX_OFFSET, MAX_PAGE, CursorPagination, Pagination
from core.views.viewsets import ORDERING_PARAM, SEARCH_PARAM, GenericViewSet

#: The name of the bearer-token security scheme in `components.securitySchemes`.
BEARER_SCHEME = "BearerAuth"
#: The endpoint attribute naming the schema of the JSON body its handler reads itself.
REQUEST_MODEL = "core_request_model"
#: The endpoint attribute giving, per body field that writes a column, the JSON Schema limits
#: of the column (by JSON type: an integer's range, a string's characters).
REQUEST_RANGES = "core_request_ranges"

__all__ = (
    "BEARER_SCHEME",
    "REQUEST_MODEL",
    "RouteSpec",
    "apiview_routes",
    "document_request_model",
    "join",
    "viewset_routes",
)

_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_CRUD = (
    # (handler, methods, detail, status)
    ("list", ("GET",), False, 200),
    ("create", ("POST",), False, 201),
    ("retrieve", ("GET",), True, 200),
    ("update", ("PUT",), True, 200),
    ("partial_update", ("PATCH",), True, 200),
    ("destroy", ("DELETE",), True, 204),
)

# The CRUD actions that accept `Idempotency-Key`: POST and PATCH (PUT and DELETE are
# idempotent by themselves).
_IDEMPOTENT = frozenset({"create", "partial_update"})

# (summary, description) of each CRUD operation; `{model}` is the model's class name.
_CRUD_TEXTS = {
    "list": (
        "List {model} objects",
        "A page of {model} objects, filtered, searched and ordered by the query parameters.",
    ),
    "create": ("Create {model}", "Create a {model} from the body; answers the new {model}."),
    "retrieve": ("Retrieve {model}", "The {model} the path names."),
    "update": ("Update {model}", "Replace the fields of the {model} the path names."),
    "partial_update": (
        "Partially update {model}",
        "Change the fields the body sends of the {model} the path names.",
    ),
    "destroy": ("Delete {model}", "Delete the {model} the path names; answers 204."),
}


# Error statuses each CRUD action can answer besides 401/403 (documented in OpenAPI; 401 and
# 403 only where the action's permissions can refuse).
_ERRORS = {
    "list": (400, 404, 422),
    "create": (400, 409, 413, 415, 422),
    "retrieve": (404, 422),
    "update": (400, 404, 413, 415, 422),
    "partial_update": (400, 404, 409, 413, 415, 422),
    "destroy": (400, 404, 422),
}


@dataclass(frozen=True)
class RouteSpec:
    """One route a ViewSet action becomes (what `core routes` lists)."""

    path: str
    methods: tuple[str, ...]
    name: str
    action: str
    view: type[ViewSet]
    permissions: tuple[Any, ...]
    endpoint: Callable[..., Any] = field(repr=False, compare=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Whether the route accepts `Idempotency-Key` (create, partial_update, opted-in actions).
    idempotent: bool = field(default=False, compare=False)

    @property
    def operation_id(self) -> str:
        """The OpenAPI `operationId`: the name in snake case (`post-partial_update` is
        `post_partial_update`), a valid identifier for generated clients."""
        return re.sub(r"\W", "_", self.name)


def join(*parts: str) -> str:
    path = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return "/" + path if path else ""


def document_request_model(
    endpoint: Callable[..., Any],
    schema: type[BaseModel] | None,
    model: type[Any] | None = None,
) -> Callable[..., Any]:
    """Document `schema` as the JSON body of `endpoint`'s routes: a `$ref` to a named
    component (see `core.routing.openapi`). The endpoint reads the body itself, after the
    permissions, so FastAPI does not see it. With the `model` the body writes, its integer
    fields are documented with their columns' ranges (the database refuses values past them)."""
    if schema is not None:
        setattr(endpoint, REQUEST_MODEL, schema)
        if model is not None:
            bounds = lookups.integer_bounds(model)
            types = lookups.column_types(model)
            limits: dict[str, dict[str, Any]] = {}
            for name in schema.model_fields:
                if name in bounds:
                    limits[name] = {
                        "integer": {"minimum": bounds[name][0], "maximum": bounds[name][1]}
                    }
                elif types.get(name) is str:
                    # Text columns hold no NUL character (PostgreSQL's refuse it: a 400).
                    limits[name] = {"string": {"pattern": "^[^\\x00]*$"}}
            setattr(endpoint, REQUEST_RANGES, limits)
    return endpoint


def _idempotency(methods: tuple[str, ...]) -> dict[str, Any]:
    """The `Idempotency-Key` header parameter of an operation that accepts it (none for a
    GET-only action), and the table its keys are kept in declared on the models' metadata."""
    if not set(methods) - {"GET", "HEAD", "OPTIONS"}:
        return {}
    # Declares `core_idempotency_keys` for the database store (and `core makemigrations`).
    import core.idempotency.models  # noqa: F401

    return {
        "parameters": [
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "A key of the client's choosing (a UUID, say) that makes retrying this "
                    "request safe: a retry with the same key and the same request gets the "
                    "first response back (with `Idempotent-Replayed: true`) and changes "
                    "nothing; the same key with another request is a 422; while the first "
                    "request runs, a retry waits for it or gets a 409."
                ),
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": KEY_PATTERN,
                },
            }
        ]
    }


def _refusals(permissions: Any) -> tuple[int, ...]:
    """401 and 403 when one of `permissions` can refuse, else nothing (AllowAny)."""
    return (401, 403) if any(can_refuse(p) for p in resolve_permissions(permissions)) else ()


def _security(permissions: Any) -> dict[str, Any]:
    """The operation's OpenAPI `security`: the bearer token when a permission can refuse an
    anonymous caller, else none (`[]`: AllowAny)."""
    if any(can_refuse(p) for p in resolve_permissions(permissions)):
        return {"security": [{BEARER_SCHEME: []}]}
    return {"security": []}


def _with_extra(options: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`options` with `extra` merged into its `openapi_extra` (the route's own keys win)."""
    return {**options, "openapi_extra": {**extra, **options.get("openapi_extra", {})}}


def _with_parameters(options: dict[str, Any], parameters: list[Any]) -> dict[str, Any]:
    """`options` with `parameters` added to its `openapi_extra` parameters (kept, not
    replaced)."""
    if not parameters:
        return options
    extra = dict(options.get("openapi_extra", {}))
    extra["parameters"] = [*extra.get("parameters", []), *parameters]
    return {**options, "openapi_extra": extra}


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _lookup_parameter(view: type[GenericViewSet]) -> inspect.Parameter:
    field_name = view.lookup_field
    try:
        python_type = lookups.column_types(view.model)[field_name]
    except KeyError:
        raise TypeError(
            f"{view.__name__}.lookup_field {field_name!r} is not a column of {view.model.__name__}."
        ) from None
    low, high = lookups.integer_bounds(view.model).get(field_name, (None, None))
    path = Path(description=f"The {view.model.__name__}'s {field_name}.", ge=low, le=high)
    return _keyword(field_name, python_type or str, path)


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """An optional query parameter as OpenAPI documents it (the shape FastAPI gives one)."""
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
    schema = {**schema, "title": name.replace("_", " ").title()}
    if description is not None:
        schema["description"] = parameter["description"] = description
    parameter["schema"] = schema
    return parameter


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _list_query_docs(view: type[GenericViewSet]) -> list[dict[str, Any]]:
    """The list's pagination, `search` and `ordering` parameters, for OpenAPI only.

    They are not declared on the endpoint: the list handler reads them from the request (the
    paginator and `filter_queryset` check them and answer 400 naming the parameter), so each
    is parsed once, by the code that uses it, and FastAPI does no work for them per request.
    """
    params: list[dict[str, Any]] = []
    if view.pagination_class is not None:
        for name in view.pagination_class.query_params:
            if name == "cursor":
                description = "The page's position, from a previous page's `next` or `previous`."
                params.append(_query(name, _nullable({"type": "string"}), description))
            elif name in ("page_size", "limit"):
                # Larger values are accepted and capped at max_page_size, so the schema's
                # `maximum` is what the paginator refuses; the description gives the cap.
                description = (
                    f"Objects per page, at most {view.max_page_size} "
                    f"(larger values are capped); {view.page_size} by default."
                )
                schema = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE,
                    "default": view.page_size,
                }
                params.append(_query(name, schema, description))
            else:
                low, high = (0, MAX_OFFSET) if name == "offset" else (1, MAX_PAGE)
                schema = {"type": "integer", "maximum": high, "minimum": low}
                params.append(_query(name, _nullable(schema)))
    if view.search_fields:
        description = f"Search in {', '.join(view.search_fields)}."
        # Text columns hold no NUL character (PostgreSQL's refuse it: a 400).
        text = {"type": "string", "pattern": "^[^\\x00]*$"}
        params.append(_query(SEARCH_PARAM, _nullable(text), description))
    if view.ordering_fields:
        description = (
            f"Order by {', '.join(view.ordering_fields)} (prefix - for descending); "
            "several, comma-separated, order by each in turn."
        )
        # What clients may name; the handler checks each name of a list itself.
        names = [name for field in view.ordering_fields for name in (field, f"-{field}")]
        ordering = {
            "type": "string",
            "enum": names,
            # Names for generated clients' enums (`-title` is TITLE_DESC).
            "x-enum-varnames": [
                name
                for field in view.ordering_fields
                for name in (field.upper(), f"{field.upper()}_DESC")
            ],
        }
        params.append(_query(ORDERING_PARAM, ordering, description))
    return params


def _list_parameters(view: type[GenericViewSet]) -> list[inspect.Parameter]:
    """The `filterset_fields` on plain columns, typed from the model (a value of the wrong type
    is a 422; an integer, within its column's range); the handler reads them, and their lookup
    variants (`?views__gte=`), from the request."""
    params: list[inspect.Parameter] = []
    types = lookups.column_types(view.model)
    declared = view.filterset_class.query_params() if view.filterset_class else frozenset()
    bounds: dict[str, Any] = lookups.integer_bounds(view.model)
    for name in view.filterset_fields:
        if "__" not in name and name in types and name not in declared:
            low, high = bounds.get(name, (None, None))
            query = Query(None, ge=low, le=high)
            params.append(_keyword(name, (types[name] or str) | None, query))
    return params


def _referenced(view: type[GenericViewSet]) -> bool:
    """Whether another table's foreign key points at the view's model (a delete can conflict)."""
    table: Any = lookups.mapper_of(view.model).local_table
    return any(
        key.column.table is table
        for other in table.metadata.tables.values()
        for key in other.foreign_keys
        if other is not table or key.parent.table is not table
    )


def _conflicts(
    view: type[GenericViewSet], handler: str, body: type[BaseModel] | None, unique: list[str]
) -> tuple[int, ...]:
    """409 where the stored rows can refuse the write: a unique or foreign-key column written,
    or a delete of a row other tables refer to."""
    if handler == "destroy":
        return (409,) if _referenced(view) else ()
    if body is None:
        return ()
    table: Any = lookups.mapper_of(view.model).local_table
    keys = {column.key for column in table.columns if column.foreign_keys}
    return (409,) if unique or keys & set(body.model_fields) else ()


def _unique_columns(view: type[GenericViewSet], body: type[BaseModel]) -> list[str]:
    """The fields of `body` a write may find taken: `unique_fields`, and the columns (the
    primary key included) that a unique constraint or index of their own covers."""
    table: Any = lookups.mapper_of(view.model).local_table
    single: set[str] = {column.key for column in table.columns if column.unique}
    for constraint in (*getattr(table, "constraints", ()), *getattr(table, "indexes", ())):
        columns = list(getattr(constraint, "columns", ()))
        if len(columns) == 1 and (
            isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint)
            or (isinstance(constraint, Index) and constraint.unique)
        ):
            single.add(columns[0].key)
    found = [name for name in view.unique_fields if name in body.model_fields]
    found += [name for name in body.model_fields if name in single and name not in found]
    return found


def _envelope_count(pagination: type[Pagination]) -> str:
    """The page envelope's `count`: a number, a number or null, or absent (a cursor page)."""
    if issubclass(pagination, CursorPagination):
        return "absent"
    return "nullable" if pagination.count == "none" else "number"


def viewset_routes(
    view: type[GenericViewSet], base: str, basename: str, tags: list[str] | None
) -> list[RouteSpec]:
    tags = view.tags or tags or [basename]
    if view.pagination_class is not None:
        view.pagination_class.configure(view)
    output = view.resolved_output_schema()
    specs: list[RouteSpec] = []
    detail_base = join(base, "{" + view.lookup_field + "}")
    lookup = _lookup_parameter(view)
    for handler, methods, detail, status in _CRUD:
        if not hasattr(view, handler):
            continue
        params: list[inspect.Parameter] = []
        passthrough: tuple[str, ...] = ()
        permissions = permissions_for_action(view, handler)
        model = view.model.__name__
        summary, description = _CRUD_TEXTS[handler]
        options: dict[str, Any] = {
            "tags": tags,
            "status_code": status,
            "summary": summary.format(model=model),
            "description": description.format(model=model),
            "openapi_extra": _security(permissions),
        }
        unique: list[str] = []
        if detail:
            params.append(lookup)
            passthrough = (view.lookup_field,)
        idempotent = handler in _IDEMPOTENT
        if idempotent:
            options["openapi_extra"].update(_idempotency(methods))
        body: type[BaseModel] | None = None
        if handler in ("create", "update", "partial_update"):
            body = view.resolved_input_schema()
            unique = _unique_columns(view, body)
            if handler == "partial_update":
                body = schemas.partial_schema_for(body)
        statuses = {
            *_ERRORS[handler],
            *_refusals(permissions),
            *_conflicts(view, handler, body, unique),
        }
        options["responses"] = error_responses(*sorted(statuses), unique=unique, model=model)
        if handler == "list":
            params.extend(_list_parameters(view))
            documented = _list_query_docs(view)
            if view.filterset_class is not None:
                # Documented here, not declared on the endpoint: the FilterSet converts them
                # itself, so a bad value is its 400 naming the parameter.
                documented += view.filterset_class.openapi_parameters()
            if documented:
                options["openapi_extra"]["parameters"] = documented
            options["response_model"] = (
                schemas.page_schema_for(output, _envelope_count(view.pagination_class))
                if view.pagination_class is not None
                else list[output]  # type: ignore[valid-type]
            )
        elif handler == "destroy":
            options["response_class"] = Response
        else:
            options["response_model"] = output
        specs.append(
            RouteSpec(
                path=detail_base if detail else base,
                methods=methods,
                name=f"{basename}-{handler}",
                action=handler,
                view=view,
                permissions=tuple(permissions),
                endpoint=document_request_model(
                    action_endpoint(
                        view,
                        handler,
                        handler,
                        status,
                        params,
                        passthrough,
                        None,
                        body_schema=body,
                        idempotent=idempotent,
                    ),
                    body,
                    view.model,
                ),
                options=options,
                idempotent=idempotent,
            )
        )
    # Collection routes and collection actions first: `/posts/featured/` must not be taken for
    # `/posts/{id}/`.
    actions = _action_routes(view, base, detail_base, basename, tags, lookup)
    collection = [s for s in specs if "{" + view.lookup_field + "}" not in s.path]
    collection += [s for s in actions if not s.path.startswith(detail_base + "/")]
    return collection + [s for s in specs + actions if s not in collection]


def _action_routes(
    view: type[ViewSet],
    base: str,
    detail_base: str,
    basename: str,
    tags: list[str],
    lookup: inspect.Parameter | None,
) -> list[RouteSpec]:
    specs = []
    for info in actions_of(view):
        path = join(detail_base if info.detail else base, info.url_path)
        params = [lookup] if info.detail and lookup is not None else []
        extra = [p for p in _path_parameters(path) if lookup is None or p.name != lookup.name]
        params.extend(extra)
        passthrough = tuple(p.name for p in params)
        status = info.status_code or 200
        permissions = info.permission_classes
        declared = (
            permissions if permissions is not None else permissions_for_action(view, info.name)
        )
        options: dict[str, Any] = {
            "tags": tags,
            "status_code": status,
            "summary": info.summary or _summary(info.name, view),
            "responses": error_responses(
                *sorted(
                    {400, 404, 413, 422, *_refusals(declared), *((409,) if info.idempotent else ())}
                )
            ),
            **info.route_options,
        }
        options = _with_extra(options, _security(declared))
        if info.idempotent:
            options = _with_parameters(options, _idempotency(info.methods).get("parameters", []))
        if "response_model" not in options and "response_class" not in options:
            response = _response_model(view, info.name)
            if response is not None:
                options["response_model"] = response
        specs.append(
            RouteSpec(
                path=path,
                methods=info.methods,
                name=f"{basename}-{info.url_name}",
                action=info.name,
                view=view,
                permissions=tuple(declared),
                endpoint=document_request_model(
                    action_endpoint(
                        view,
                        info.name,
                        info.name,
                        status,
                        params,
                        passthrough,
                        permissions,
                        idempotent=info.idempotent,
                    ),
                    info.request_model or view.request_model_for(info.name),
                ),
                options=options,
                idempotent=info.idempotent,
            )
        )
    return specs


def _path_parameters(path: str) -> list[inspect.Parameter]:
    return [_keyword(name, str, Path()) for name in _PATH_PARAM.findall(path)]


def apiview_routes(
    view: type[APIView], base: str, basename: str, tags: list[str] | None
) -> list[RouteSpec]:
    tags = view.tags or tags or [basename]
    params = _path_parameters(base)
    passthrough = tuple(p.name for p in params)
    specs = []
    for method in view.http_methods:
        if not hasattr(view, method):
            continue
        permissions = permissions_for_action(view, method)
        refusals = _refusals(permissions)
        specs.append(
            RouteSpec(
                path=base,
                methods=(method.upper(),),
                name=f"{basename}-{method}",
                action=method,
                view=view,
                permissions=tuple(permissions),
                endpoint=document_request_model(
                    action_endpoint(
                        view, method, method, 200, params, passthrough, None, with_db=False
                    ),
                    view.request_model_for(method),
                ),
                options=_typed(
                    view,
                    method,
                    {
                        "tags": tags,
                        "summary": _summary(method, view),
                        "responses": error_responses(*sorted({400, 404, 413, 422, *refusals})),
                        "openapi_extra": _security(permissions),
                    },
                ),
            )
        )
    specs.extend(_action_routes(view, base, base, basename, list(tags), None))
    return specs


def _summary(handler: str, view: type[ViewSet]) -> str:
    """The first sentence of the handler's docstring (up to a colon), else its name and the
    view's."""
    doc = inspect.getdoc(getattr(view, handler, None)) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.split(r"(?<=\.)\s|:\s", paragraph)[0].rstrip(".")
    if first:
        return first
    what = getattr(getattr(view, "model", None), "__name__", None) or view.__name__
    return f"{handler.replace('_', ' ').capitalize()} ({what})"


def _typed(view: type[ViewSet], handler: str, options: dict[str, Any]) -> dict[str, Any]:
    response = _response_model(view, handler)
    return {**options, "response_model": response} if response is not None else options


def _response_model(view: type[ViewSet], handler: str) -> Any:
    """What the handler answers, for OpenAPI: the view's `response_model_for(handler)`, else
    its return annotation (a Model is served through the view's output schema); None when it
    says nothing useful (`Any`, a Response, None)."""
    declared = view.response_model_for(handler)
    if declared is not None:
        return declared
    try:
        annotation = get_type_hints(getattr(view, handler)).get("return")
    except Exception:  # an annotation naming what the module does not import: undocumented
        return None
    if annotation is None or annotation is Any or annotation is type(None):
        return None
    if isinstance(annotation, type):
        if issubclass(annotation, Response):
            return None
        if hasattr(annotation, "__mapper__"):
            resolved = getattr(view, "resolved_output_schema", None)
            output = resolved() if resolved is not None else view.output_schema
            return output if output is not None else schemas.output_schema_for(annotation)
    return annotation
