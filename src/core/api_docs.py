"""The interactive API docs, `/docs` (Swagger UI) and `/redoc` (ReDoc), served so they work offline.

FastAPI's own pages load Swagger UI's and ReDoc's scripts and styles from a public CDN (and
ReDoc's fonts from Google Fonts), so on a machine with no internet they are a blank page. With
`DOCS_ASSETS=local` (the default) a CoreApp serves those files itself, from the fastapi-offline
distribution (a dependency that ships them as package data), under `/docs-assets`; with
`DOCS_ASSETS=cdn` the pages load them from FastAPI's CDN as a plain FastAPI app does.

With `DOCS_PERMISSION` (a permission's dotted path) the pages and the documents they read are
served only to callers that permission allows, authenticated as every view's callers are.
"""

from __future__ import annotations

from importlib import import_module
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.context import current_container
from core.errors import ConfigurationError
from core.models.session import close
from core.permissions import Permission, resolve_permissions
from core.views.base import APIView

__all__ = (
    "ASSETS_URL",
    "DocsAssets",
    "add_docs_routes",
    "assets_directory",
    "guard_docs",
    "load_permission",
)

DocsAssets = Literal["local", "cdn"]

#: Where a CoreApp serves the pages' scripts, styles and favicon with `DOCS_ASSETS=local`.
ASSETS_URL = "/docs-assets"
_ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_directory() -> Path:
    """The installed directory holding Swagger UI's and ReDoc's files (from fastapi-offline).

    Raises:
        ConfigurationError: fastapi-offline is not installed, or lacks one of the files.
    """
    try:
        directory = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        directory = None
    if directory is None or not all((directory / name).is_file() for name in _ASSET_FILES):
        raise ConfigurationError(
            "DOCS_ASSETS=local serves /docs and /redoc from the fastapi-offline package, which "
            "is not installed (or is incomplete): `pip install fastapi-offline`, or set "
            "DOCS_ASSETS=cdn to load them from the public CDN."
        )
    return directory


def add_docs_routes(
    fastapi: FastAPI,
    *,
    docs_url: str | None,
    redoc_url: str | None,
    assets: DocsAssets,
) -> None:
    """Serve Swagger UI at `docs_url` and ReDoc at `redoc_url` on `fastapi` (a CoreApp's).

    Build `fastapi` with `docs_url=None, redoc_url=None`, so FastAPI adds no pages of its own.
    Either URL None leaves that page out; with `fastapi.openapi_url` None neither is served.
    `assets="local"` serves the pages' files from the installed package; `"cdn"` keeps FastAPI's
    CDN addresses. The Swagger UI OAuth2 redirect page is served with `docs_url`, as FastAPI does.
    """
    openapi_url = fastapi.openapi_url
    if not openapi_url or (docs_url is None and redoc_url is None):
        return
    local = assets == "local"
    if local:
        fastapi.mount(
            ASSETS_URL, StaticFiles(directory=assets_directory()), name="core-docs-assets"
        )

    oauth2_redirect_url = fastapi.swagger_ui_oauth2_redirect_url
    if docs_url is not None:

        async def swagger_ui_html(request: Request) -> HTMLResponse:
            root = _root_path(request)
            redirect = f"{root}{oauth2_redirect_url}" if oauth2_redirect_url else None
            urls: dict[str, Any] = {}  # none: FastAPI's CDN addresses
            if local:
                urls = {
                    "swagger_js_url": f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                    "swagger_css_url": f"{root}{ASSETS_URL}/swagger-ui.css",
                    "swagger_favicon_url": f"{root}{ASSETS_URL}/favicon.png",
                }
            return get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{fastapi.title} - Swagger UI",
                oauth2_redirect_url=redirect,
                init_oauth=fastapi.swagger_ui_init_oauth,
                swagger_ui_parameters=fastapi.swagger_ui_parameters,
                **urls,
            )

        fastapi.add_route(docs_url, swagger_ui_html, include_in_schema=False)
        if oauth2_redirect_url:

            async def swagger_ui_redirect(request: Request) -> HTMLResponse:
                return get_swagger_ui_oauth2_redirect_html()

            fastapi.add_route(oauth2_redirect_url, swagger_ui_redirect, include_in_schema=False)

    if redoc_url is not None:

        async def redoc_html(request: Request) -> HTMLResponse:
            root = _root_path(request)
            urls: dict[str, Any] = {}  # none: FastAPI's CDN addresses
            if local:
                urls = {
                    "redoc_js_url": f"{root}{ASSETS_URL}/redoc.standalone.js",
                    "redoc_favicon_url": f"{root}{ASSETS_URL}/favicon.png",
                }
            return get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{fastapi.title} - ReDoc",
                # Google Fonts is a CDN too: offline, ReDoc uses the browser's fonts.
                with_google_fonts=not local,
                **urls,
            )

        fastapi.add_route(redoc_url, redoc_html, include_in_schema=False)


def _root_path(request: Request) -> str:
    # The prefix a mounting app or a proxy gave: the pages' URLs are under it, as FastAPI's are.
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def load_permission(path: str) -> Permission:
    """The permission a dotted path names (`core.permissions.IsAdmin`), as an instance.

    Raises:
        ConfigurationError: the path names nothing importable, or no permission.
    """
    module_name, _, name = path.strip().rpartition(".")
    try:
        found = getattr(import_module(module_name), name, None) if module_name else None
    except ImportError:
        found = None
    permission = found() if isinstance(found, type) else found
    if not isinstance(permission, Permission):
        raise ConfigurationError(
            f"DOCS_PERMISSION={path!r} names no permission: give the dotted path of a "
            "Permission class or instance, e.g. `core.permissions.IsAdmin`."
        )
    return permission


class _DocsView(APIView):
    """The view the docs are checked as: its permission is DOCS_PERMISSION's."""


def guard_docs(fastapi: FastAPI, permission: Permission, paths: set[str]) -> None:
    """Serve the routes of `fastapi` at `paths` (the pages and the documents they read) only to
    callers `permission` allows: the request's user is authenticated as for any view, and a
    refusal is the usual 401 (nobody authenticated) or 403, in the error envelope."""
    permissions = resolve_permissions([permission])
    for route in fastapi.router.routes:
        if isinstance(route, Route) and route.path in paths:
            route.app = _guarded(route.app, permissions)


def _guarded(app: ASGIApp, permissions: tuple[Permission, ...]) -> ASGIApp:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        container = current_container()
        view = _DocsView()
        view.request, view.action, view.container, view.kwargs = request, "docs", container, {}
        view._action_permissions = permissions
        db = container.database.database().session()
        try:
            request.state.user = await view.authenticate(db)
            # Raises NotAuthenticatedError (401) or PermissionDeniedError (403): the app's
            # handlers answer them in the error envelope.
            await view.check_permissions()
        finally:
            await close(db)
        await app(scope, receive, send)

    return guarded
