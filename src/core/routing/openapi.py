"""What CoreApp adds to FastAPI's OpenAPI document: the bearer security scheme its operations
name, `servers` and `license` from the settings, and whether the docs are served at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from core.routing.routes import BEARER_SCHEME
from core.settings import Settings

__all__ = ("docs_options", "install_security_scheme")

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def docs_options(settings: Settings) -> dict[str, Any]:
    """FastAPI options from the settings: `servers`, `license_info`, and no `/docs`, `/redoc`
    or `/openapi.json` when DOCS_ENABLED is off."""
    options: dict[str, Any] = {"servers": [{"url": url} for url in settings.openapi_servers]}
    if settings.openapi_license_name:
        license_info = {"name": settings.openapi_license_name}
        if settings.openapi_license_url:
            license_info["url"] = settings.openapi_license_url
        options["license_info"] = license_info
    if not settings.docs_enabled:
        options.update(openapi_url=None, docs_url=None, redoc_url=None)
    return options


def install_security_scheme(app: FastAPI, login_path: Callable[[], str | None]) -> None:
    """Add the bearer scheme to `app`'s document when an operation requires it, so `/docs`
    has an Authorize button: paste the `access_token` the login route (`login_path()`)
    answers."""
    build = app.openapi
    if getattr(build, "core_security", False):
        return

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        document = build()
        if fresh and _requires_bearer(document):
            path = login_path()
            where = f" from `POST {path}`" if path else ""
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes.setdefault(
                BEARER_SCHEME,
                {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": f"An access token{where}, sent as "
                    "`Authorization: Bearer <token>`.",
                },
            )
        return document

    openapi.core_security = True  # type: ignore[attr-defined]
    app.openapi = openapi  # type: ignore[method-assign]


def _requires_bearer(document: dict[str, Any]) -> bool:
    return any(
        BEARER_SCHEME in requirement
        for item in document.get("paths", {}).values()
        for method, operation in item.items()
        if method in _METHODS
        for requirement in operation.get("security", ())
    )
