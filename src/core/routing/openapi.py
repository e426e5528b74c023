"""What CoreApp adds to FastAPI's OpenAPI document: the bearer security scheme its operations
name, the request bodies its handlers read themselves as named components, `servers` and
`license` from the settings, and whether the docs are served at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, routing
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from core.routing.routes import BEARER_SCHEME, REQUEST_MODEL, REQUEST_RANGES
from core.settings import Settings

__all__ = ("docs_options", "install_security_scheme", "register_schemas")

_REF = "#/components/schemas/"

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
    """Complete `app`'s document: the request bodies Core's routes read themselves, as named
    components; and the bearer scheme when an operation requires it, so `/docs` has an
    Authorize button (paste the `access_token` the login route, `login_path()`, answers)."""
    build = app.openapi
    if getattr(build, "core_security", False):
        return

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        document = build()
        if fresh:
            _add_request_bodies(app, document)
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


def _add_request_bodies(app: FastAPI, document: dict[str, Any]) -> None:
    """Each Core route's body (`document_request_model`) as a `$ref` to its schema in
    `components.schemas`; a `requestBody` the route's `openapi_extra` gives wins."""
    targets: list[tuple[dict[str, Any], type[BaseModel]]] = []
    ranges: dict[type[BaseModel], dict[str, dict[str, Any]]] = {}
    for route in _routes(app):
        schema = getattr(route.endpoint, REQUEST_MODEL, None)
        if schema is None or not route.include_in_schema:
            continue
        ranges.setdefault(schema, {}).update(getattr(route.endpoint, REQUEST_RANGES, {}))
        item = document.get("paths", {}).get(route.path_format, {})
        for method in sorted(route.methods or ()):
            operation = item.get(method.lower())
            if operation is not None and "requestBody" not in operation:
                targets.append((operation, schema))
    if not targets:
        return
    refs = register_schemas(
        document, list(dict.fromkeys(schema for _, schema in targets)), ranges=ranges
    )
    for operation, schema in targets:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[schema]}},
        }


def _routes(app: FastAPI) -> list[Any]:
    """Every API route of `app`, those of included routers too (FastAPI keeps an included
    router as one entry and serves its routes through route contexts)."""
    iterate = getattr(routing, "iter_route_contexts", None)
    contexts = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    return [
        context
        for context in contexts
        if isinstance(getattr(context, "original_route", context), routing.APIRoute)
    ]


def register_schemas(
    document: dict[str, Any],
    models: list[type[BaseModel]],
    ranges: dict[type[BaseModel], dict[str, dict[str, Any]]] | None = None,
) -> dict[type[BaseModel], dict[str, Any]]:
    """Add the validation-mode JSON schemas of `models` (and of the models they use) to
    `document`'s `components.schemas`; answers each model's `$ref`.

    A component of the same name and content is shared; one of the same name and other content
    (FastAPI's, or the same model's output schema) stays, and ours is named `<name>-Input`, as
    FastAPI names the input side of a model whose two schemas differ.
    """
    components = document.setdefault("components", {}).setdefault("schemas", {})
    generator = GenerateJsonSchema(ref_template=_REF + "{model}")
    inputs = [(model, "validation", model.__pydantic_core_schema__) for model in models]
    keyed, definitions = generator.generate_definitions(inputs)  # type: ignore[arg-type]
    _document_limits(definitions, keyed, models, ranges or {})
    if any(_json_value_ref in str(schema) for schema in definitions.values()):
        components.setdefault("JsonValue", _JSON_VALUE)
    names: dict[str, str] = {name: name for name in definitions}
    while True:
        renamed = {names[name]: _rename_refs(schema, names) for name, schema in definitions.items()}
        clashes = [
            name
            for name, schema in renamed.items()
            if name in components and components[name] != schema
        ]
        if not clashes:
            break
        for old, new in list(names.items()):
            if new in clashes:
                taken = set(components) | set(names.values())
                names[old] = _free_name(f"{old}-Input", taken)
    for name, schema in renamed.items():
        components.setdefault(name, schema)
    return {model: _rename_refs(dict(keyed[(model, "validation")]), names) for model in models}


_json_value_ref = _REF + "JsonValue"
# Any JSON value the body parser holds: integers within 64 bits (see core.views.body).
_INT64 = {"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**63 - 1}
_SCALAR = [
    {"type": "null"},
    {"type": "boolean"},
    {"type": "string"},
    _INT64,
    # Any number written with a fraction or an exponent (`1e300` too); JSON Schema cannot
    # tell an integer literal past 64 bits apart from it, see docs/errors.md.
    {"type": "number"},
]
# Not recursive: generated clients (openapi-python-client) parse no recursive schema, so the
# values inside arrays and objects are left open.
_JSON_VALUE = {
    "description": "Any JSON value; integers within 64 bits (a body with a longer one is a "
    "400 `parse_error`).",
    "anyOf": [
        *_SCALAR,
        {"type": "array", "items": {}},
        {"type": "object", "additionalProperties": {}},
    ],
}


def _document_limits(
    definitions: dict[Any, Any],
    keyed: dict[Any, Any],
    models: list[type[BaseModel]],
    ranges: dict[type[BaseModel], dict[str, dict[str, Any]]],
) -> None:
    """What the server refuses that a model's own schema does not say: an integer past its
    column's range, a NUL character in text, and in the fields a body may add (a schema that
    ignores or keeps unknown fields), an integer past 64 bits."""
    for model in models:
        ref = keyed[(model, "validation")].get("$ref", "")
        schema = definitions.get(ref.removeprefix(_REF))
        if schema is None:
            continue
        for name, by_type in ranges.get(model, {}).items():
            prop = schema.get("properties", {}).get(name)
            for node in [prop, *(prop or {}).get("anyOf", ())]:
                if isinstance(node, dict) and node.get("type") in by_type:
                    for key, value in by_type[node["type"]].items():
                        node.setdefault(key, value)
        if model.model_config.get("extra") != "forbid" and schema.get(
            "additionalProperties", True
        ) in (True, {}):
            schema["additionalProperties"] = {"$ref": _json_value_ref}


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}{number}", number + 1
    return candidate


def _rename_refs(value: Any, names: dict[str, str]) -> Any:
    """`value` with its component `$ref`s following `names`."""
    if isinstance(value, dict):
        out = {key: _rename_refs(item, names) for key, item in value.items()}
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            name = ref.removeprefix(_REF)
            out["$ref"] = _REF + names.get(name, name)
        return out
    if isinstance(value, list):
        return [_rename_refs(item, names) for item in value]
    return value
