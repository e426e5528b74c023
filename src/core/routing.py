"""AutoRouter: turns ViewSets into FastAPI routes, once, when the app is built."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.params import Depends
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from core.context import _session, current_container
from core.errors import ConfigurationError
from core.models import lookups
from core.models.session import close, commit, rollback
from core.permissions import can_refuse, resolve_permissions
from core.views import schemas
from core.views.actions import actions_of
from core.views.base import APIView, ViewSet, permissions_for_action
from core.views.body import MAX_BODY_SIZE_KEY, CoreRequest, read_json
from core.views.errors import InvalidBodyError, error_responses
from core.views.pagination import MAX_OFFSET, MAX_PAGE
from core.views.viewsets import ORDERING_PARAM, SEARCH_PARAM, GenericViewSet

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


# Error statuses each CRUD action can answer besides 401/403 (documented in OpenAPI; 401 and
# 403 only where the action's permissions can refuse).
_ERRORS = {
    "list": (400, 404, 422),
    "create": (400, 413, 415, 422),
    "retrieve": (404, 422),
    "update": (400, 404, 413, 415, 422),
    "partial_update": (400, 404, 413, 415, 422),
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


def _join(*parts: str) -> str:
    path = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return "/" + path if path else ""


def _endpoint(
    view_class: type[ViewSet],
    action: str,
    handler_name: str,
    status_code: int,
    parameters: list[inspect.Parameter],
    passthrough: tuple[str, ...],
    action_permissions: tuple[Any, ...] | None,
    with_db: bool = True,
    body_schema: type[BaseModel] | None = None,
) -> Callable[..., Any]:
    """The FastAPI endpoint for one action: unit of work, user, permissions, body, handler, one
    JSON pass.

    The body is read only once the user is known and allowed: a refused caller gets its 401
    or 403 whatever it sent, and nothing it sent is parsed.
    """

    async def endpoint(request: Request, **params: Any) -> Response:
        container = current_container()
        if view_class.max_body_size is not None:
            request.scope[MAX_BODY_SIZE_KEY] = view_class.max_body_size
        # Handlers' `await request.json()` parses strictly, within the limits.
        request.__class__ = CoreRequest
        view = view_class()
        view.request = request
        view.action = action
        view.container = container
        view.kwargs = params
        view._action_permissions = action_permissions
        db = container.database.database().session()
        token = _session.set(db)
        try:
            request.state.user = await view.authenticate(db)
            await view.check_permissions()
            values = {name: params[name] for name in passthrough}
            if body_schema is not None:
                values["data"] = await _validated_body(view_class, request, body_schema)
            handler = getattr(view, handler_name)
            result = await (
                handler(request, db, **values) if with_db else handler(request, **values)
            )
            response = view.render(result, status_code)
            await commit(db)
        except BaseException:
            await rollback(db)
            raise
        finally:
            _session.reset(token)
            await close(db)
        return response

    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
            *parameters,
        ]
    )
    endpoint.__name__ = f"{view_class.__name__}.{action}"
    endpoint.__doc__ = inspect.getdoc(getattr(view_class, handler_name)) or ""
    return endpoint


async def _validated_body(
    view_class: type[ViewSet], request: Request, schema: type[BaseModel]
) -> BaseModel:
    raw = await read_json(request)
    if raw is ...:
        raise InvalidBodyError([{"loc": ["body"], "msg": "Field required", "type": "missing"}])
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        write_only = getattr(view_class, "write_only_fields", ())
        raise InvalidBodyError.from_validation(exc, schema, write_only) from None


def _request_body(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `requestBody` of a route that reads its body itself, after the permissions."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schemas.inline_json_schema(schema)}},
        }
    }


def _refusals(permissions: Any) -> tuple[int, ...]:
    """401 and 403 when one of `permissions` can refuse, else nothing (AllowAny)."""
    return (401, 403) if any(can_refuse(p) for p in resolve_permissions(permissions)) else ()


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


class AutoRouter:
    """Routes for ViewSets and APIViews, DRF-style, with nesting.

    Example:
        >>> posts_router = AutoRouter(prefix="/posts", tags=["Posts"])  # doctest: +SKIP
        >>> posts_router.register("", PostViewSet, basename="post")  # doctest: +SKIP
        >>> api_router = AutoRouter(prefix="/api/v1")  # doctest: +SKIP
        >>> api_router.include_router(posts_router)  # doctest: +SKIP
        >>> app = CoreApp(routers=[api_router])  # doctest: +SKIP

    Each route answers with and without its trailing slash (no redirect); OpenAPI shows the
    slashed path. Operation ids are `<basename>-<action>`.
    """

    def __init__(
        self,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        self.prefix = prefix
        self.tags = list(tags) if tags else None
        self.dependencies = list(dependencies or ())
        self._registry: list[tuple[str, type[ViewSet], str | None]] = []
        self._children: list[tuple[AutoRouter, str]] = []
        self._built: APIRouter | None = None

    def register(self, prefix: str, viewset: type[ViewSet], basename: str | None = None) -> None:
        """Serve `viewset` under `prefix` (relative to this router's prefix)."""
        if not (isinstance(viewset, type) and issubclass(viewset, ViewSet)):
            raise TypeError(f"register() takes a ViewSet or APIView class, got {viewset!r}.")
        if (
            isinstance(viewset, type)
            and issubclass(viewset, GenericViewSet)
            and not hasattr(viewset, "model")
        ):
            raise TypeError(f"{viewset.__name__} needs a `model` attribute.")
        self._registry.append((prefix, viewset, basename))
        self._built = None

    def include_router(self, router: AutoRouter, prefix: str = "") -> None:
        """Nest another AutoRouter (its prefix is appended to this one's)."""
        self._children.append((router, prefix))
        self._built = None

    # -- building ---------------------------------------------------------------------------
    def route_specs(
        self,
        parent_prefix: str = "",
        parent_tags: list[str] | None = None,
        parent_dependencies: Sequence[Depends] = (),
    ) -> list[RouteSpec]:
        """Every route this router and its children serve, with full paths.

        A router's `dependencies` run for each of its routes and its children's, outermost
        router's first.
        """
        prefix = _join(parent_prefix, self.prefix)
        tags = self.tags or parent_tags
        dependencies = [*parent_dependencies, *self.dependencies]
        specs: list[RouteSpec] = []
        for sub_prefix, view, basename in self._registry:
            base = _join(prefix, sub_prefix)
            if issubclass(view, GenericViewSet):
                specs.extend(
                    _viewset_routes(view, base, basename or view.model.__name__.lower(), tags)
                )
            elif issubclass(view, APIView):
                specs.extend(_apiview_routes(view, base, basename or _snake(view.__name__), tags))
            else:
                raise TypeError(
                    f"{view.__name__}: register a ModelViewSet, ReadOnlyModelViewSet or APIView."
                )
        if dependencies:
            specs = [
                replace(spec, options={**spec.options, "dependencies": dependencies})
                for spec in specs
            ]
        for child, child_prefix in self._children:
            specs.extend(child.route_specs(_join(prefix, child_prefix), tags, dependencies))
        return specs

    def api_router(self) -> APIRouter:
        """A FastAPI APIRouter with every route (built once, then reused)."""
        if self._built is None:
            router = APIRouter()
            specs = self.route_specs()
            _refuse_duplicate_names(specs)
            for spec in specs:
                path = spec.path.rstrip("/") + "/"
                router.add_api_route(
                    path,
                    spec.endpoint,
                    methods=list(spec.methods),
                    name=spec.name,
                    operation_id=spec.name,
                    **spec.options,
                )
                # The same endpoint without the trailing slash: no redirect round trip, not
                # documented.
                hidden = {
                    k: v
                    for k, v in spec.options.items()
                    if k in ("status_code", "response_class", "dependencies")
                }
                router.add_api_route(
                    path.rstrip("/") or "/",
                    spec.endpoint,
                    methods=list(spec.methods),
                    include_in_schema=False,
                    **hidden,
                )
            self._built = router
        return self._built


def _refuse_duplicate_names(specs: Sequence[RouteSpec]) -> None:
    # Two routes with one name would share an OpenAPI operation id and a url_path_for name;
    # DRF refuses a basename registered twice for the same reason.
    seen: dict[str, RouteSpec] = {}
    for spec in specs:
        other = seen.setdefault(spec.name, spec)
        if other is not spec and (other.path, other.methods) != (spec.path, spec.methods):
            raise ConfigurationError(
                f"Route name {spec.name!r} is used by {other.view.__name__} at {other.path} and "
                f"by {spec.view.__name__} at {spec.path}: give each register() its own basename."
            )


def _snake(name: str) -> str:
    name = re.sub(r"(View|ViewSet)$", "", name) or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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


def _list_parameters(view: type[GenericViewSet]) -> list[inspect.Parameter]:
    # Documented in OpenAPI; the list handler reads them from the request itself, so lookup
    # variants (`?views__gte=`) work too.
    params: list[inspect.Parameter] = []
    if view.pagination_class is not None:
        for name in view.pagination_class.query_params:
            low, high = (0, MAX_OFFSET) if name == "offset" else (1, MAX_PAGE)
            if name in ("page_size", "limit"):
                # Larger values are capped at max_page_size: document the real maximum.
                query = Query(
                    None,
                    ge=1,
                    description=f"Objects per page, at most {view.max_page_size} "
                    f"(larger values are capped); {view.page_size} by default.",
                    json_schema_extra={"maximum": view.max_page_size},
                )
                params.append(_keyword(name, int, query))
                continue
            query = Query(None, ge=low, le=high)
            params.append(_keyword(name, int | None, query))
    if view.search_fields:
        params.append(
            _keyword(
                SEARCH_PARAM,
                str | None,
                Query(None, description=f"Search in {', '.join(view.search_fields)}."),
            )
        )
    if view.ordering_fields:
        params.append(
            _keyword(
                ORDERING_PARAM,
                str | None,
                Query(
                    None,
                    description=(
                        f"Order by {', '.join(view.ordering_fields)} (prefix - for descending)."
                    ),
                ),
            )
        )
    types = lookups.column_types(view.model)
    for name in view.filterset_fields:
        if "__" not in name and name in types:
            params.append(_keyword(name, (types[name] or str) | None, Query(None)))
    return params


def _viewset_routes(
    view: type[GenericViewSet], base: str, basename: str, tags: list[str] | None
) -> list[RouteSpec]:
    tags = view.tags or tags or [basename]
    output = view.resolved_output_schema()
    specs: list[RouteSpec] = []
    detail_base = _join(base, "{" + view.lookup_field + "}")
    lookup = _lookup_parameter(view)
    for handler, methods, detail, status in _CRUD:
        if not hasattr(view, handler):
            continue
        params: list[inspect.Parameter] = []
        passthrough: tuple[str, ...] = ()
        permissions = permissions_for_action(view, handler)
        options: dict[str, Any] = {
            "tags": tags,
            "status_code": status,
            "summary": handler.replace("_", " ").capitalize(),
            "responses": error_responses(*sorted({*_ERRORS[handler], *_refusals(permissions)})),
        }
        if detail:
            params.append(lookup)
            passthrough = (view.lookup_field,)
        body: type[BaseModel] | None = None
        if handler in ("create", "update", "partial_update"):
            body = view.resolved_input_schema()
            if handler == "partial_update":
                body = schemas.partial_schema_for(body)
            options["openapi_extra"] = _request_body(body)
        if handler == "list":
            params.extend(_list_parameters(view))
            options["response_model"] = (
                schemas.page_schema_for(output)
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
                endpoint=_endpoint(
                    view, handler, handler, status, params, passthrough, None, body_schema=body
                ),
                options=options,
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
        path = _join(detail_base if info.detail else base, info.url_path)
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
            "responses": error_responses(*sorted({400, 404, 413, 422, *_refusals(declared)})),
            **info.route_options,
        }
        specs.append(
            RouteSpec(
                path=path,
                methods=info.methods,
                name=f"{basename}-{info.url_name}",
                action=info.name,
                view=view,
                permissions=tuple(declared),
                endpoint=_endpoint(
                    view, info.name, info.name, status, params, passthrough, permissions
                ),
                options=options,
            )
        )
    return specs


def _path_parameters(path: str) -> list[inspect.Parameter]:
    return [_keyword(name, str, Path()) for name in _PATH_PARAM.findall(path)]


def _apiview_routes(
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
                endpoint=_endpoint(
                    view, method, method, 200, params, passthrough, None, with_db=False
                ),
                options={
                    "tags": tags,
                    "responses": error_responses(*sorted({400, 404, 413, 422, *refusals})),
                },
            )
        )
    specs.extend(_action_routes(view, base, base, basename, list(tags), None))
    return specs
