"""AutoRouter: mounts the routes of ViewSets and APIViews, and of nested AutoRouters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.routing import APIRoute
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import ConfigurationError
from core.routing.routes import RouteSpec, apiview_routes, join, viewset_routes
from core.views.base import APIView, ViewSet
from core.views.viewsets import GenericViewSet

__all__ = ("AutoRouter",)


class AutoRouter:
    """Routes for ViewSets and APIViews, DRF-style, with nesting.

    Example:
        >>> posts_router = AutoRouter(prefix="/posts", tags=["Posts"])  # doctest: +SKIP
        >>> posts_router.register("", PostViewSet, basename="post")  # doctest: +SKIP
        >>> api_router = AutoRouter(prefix="/api/v1")  # doctest: +SKIP
        >>> api_router.include_router(posts_router)  # doctest: +SKIP
        >>> app = CoreApp(routers=[api_router])  # doctest: +SKIP

    Each route answers with and without its trailing slash (no redirect); OpenAPI shows the
    slashed path. Route names are `<basename>-<action>` (`post-list`, for `url_path_for`);
    OpenAPI operation ids are the same in snake case (`post_list`, `post_partial_update`).
    A 405 lists every method of its path in `Allow`.
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
        prefix = join(parent_prefix, self.prefix)
        tags = self.tags or parent_tags
        dependencies = [*parent_dependencies, *self.dependencies]
        specs: list[RouteSpec] = []
        for sub_prefix, view, basename in self._registry:
            base = join(prefix, sub_prefix)
            if issubclass(view, GenericViewSet):
                specs.extend(
                    viewset_routes(view, base, basename or view.model.__name__.lower(), tags)
                )
            elif issubclass(view, APIView):
                specs.extend(apiview_routes(view, base, basename or _snake(view.__name__), tags))
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
            specs.extend(child.route_specs(join(prefix, child_prefix), tags, dependencies))
        return specs

    def api_router(self) -> APIRouter:
        """A FastAPI APIRouter with every route (built once, then reused)."""
        if self._built is None:
            router = APIRouter()
            self.add_routes(router)
            self._built = router
        return self._built

    def add_routes(self, router: APIRouter) -> None:
        """Add every route to `router` itself (CoreApp adds them to its app's own router: a
        request then finds its route in one pass, where an included router is matched twice
        and through a context per route)."""
        specs = self.route_specs()
        _refuse_duplicate_names(specs)
        for spec in specs:
            path = spec.path.rstrip("/") + "/"
            router.add_api_route(
                path,
                spec.endpoint,
                methods=list(spec.methods),
                name=spec.name,
                operation_id=spec.operation_id,
                route_class_override=_Route,
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
                route_class_override=_Route,
                **hidden,
            )
        _share_allowed_methods(router)


class _Route(APIRoute):
    """An AutoRouter route: its 405 lists in `Allow` every method its path serves (each
    method of a path is a route of its own, and Starlette's 405 names only the one it tried)."""

    allowed: tuple[str, ...] = ()
    # The literal paths of the router this path's parameters would capture (`/posts/featured/`
    # for `/posts/{id}/`): a method they do not serve is their 405, not this route's request.
    shadowed: tuple[re.Pattern[str], ...] = ()

    def __init__(self, path: str, endpoint: Any, **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        if _plain(self):
            self.app = _plain_app(self.dependant)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and self.shadowed:
            path, root = scope.get("path", ""), scope.get("root_path", "")
            if root and path.startswith(root):  # mounted: match as Starlette does, under it
                path = path[len(root) :]
            if any(pattern.match(path) for pattern in self.shadowed):
                return Match.NONE, {}
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed and self.methods and scope["method"] not in self.methods:
            headers = {"Allow": ", ".join(self.allowed)}
            if "app" in scope:  # inside an app: its exception handlers answer (Core's envelope)
                raise HTTPException(status_code=405, headers=headers)
            response = PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)


def _plain(route: APIRoute) -> bool:
    """Whether FastAPI's request handler has nothing to do for `route` but validate its path
    and query parameters: an action endpoint (`request` and those parameters, no body it
    parses, no dependencies, no header, cookie or special parameters, no route body limit)."""
    dependant = route.dependant
    return (
        dependant.request_param_name == "request"
        and not (
            dependant.dependencies
            or dependant.body_params
            or dependant.header_params
            or dependant.cookie_params
        )
        and dependant.websocket_param_name is None
        and dependant.http_connection_param_name is None
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
        and dependant.security_scopes_param_name is None
        and getattr(route, "max_body_size", None) is None
    )


def _plain_app(dependant: Dependant) -> ASGIApp:
    """The ASGI app of a `_plain` route: its path and query parameters validated by FastAPI's
    own function (the same values, and the same 422 errors), then the endpoint and its
    response, under the app's exception handlers as FastAPI runs them. FastAPI's general
    handler also sets up dependency exit stacks, reads and parses a body and serializes a
    response model: none of which an action endpoint uses (it reads its own body and returns
    its own Response), and together a fifth of a short request's CPU."""
    endpoint = dependant.call
    assert endpoint is not None
    path_fields, query_fields = dependant.path_params, dependant.query_params

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            values, errors = request_params_to_args(path_fields, request.path_params)
            if query_fields:
                query_values, query_errors = request_params_to_args(
                    query_fields, request.query_params
                )
                values.update(query_values)
                errors.extend(query_errors)
            if errors:
                raise RequestValidationError(errors)
            response: Response = await endpoint(request, **values)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(respond, request)(scope, receive, send)

    return app


def _share_allowed_methods(router: APIRouter) -> None:
    by_path: dict[str, set[str]] = {}
    literal: dict[str, re.Pattern[str]] = {}
    for route in router.routes:
        if isinstance(route, _Route):
            by_path.setdefault(route.path, set()).update(route.methods or ())
            if not route.param_convertors:
                literal[route.path] = route.path_regex
    for route in router.routes:
        if isinstance(route, _Route):
            route.allowed = tuple(sorted(by_path[route.path]))
            if route.param_convertors:
                route.shadowed = tuple(
                    pattern for path, pattern in literal.items() if route.path_regex.match(path)
                )


def _refuse_duplicate_names(specs: Sequence[RouteSpec]) -> None:
    # Two routes with one name would share an OpenAPI operation id and a url_path_for name;
    # DRF refuses a basename registered twice for the same reason.
    for key in ("name", "operation_id"):
        seen: dict[str, RouteSpec] = {}
        for spec in specs:
            value = getattr(spec, key)
            other = seen.setdefault(value, spec)
            if other is not spec and (other.path, other.methods) != (spec.path, spec.methods):
                what = "Route name" if key == "name" else "Operation id"
                raise ConfigurationError(
                    f"{what} {value!r} is used by {other.view.__name__} at {other.path} and "
                    f"by {spec.view.__name__} at {spec.path}: give each register() its own "
                    "basename."
                )


def _snake(name: str) -> str:
    name = re.sub(r"(View|ViewSet)$", "", name) or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
