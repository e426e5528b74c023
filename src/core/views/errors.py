"""Exception handlers: every error a client can cause becomes a clear 4xx JSON body."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from core.errors import CoreError, IntegrityViolationError

# Pydantic error types for a path value that does not convert, and the name users read.
_EXPECTED = {
    "int_parsing": "integer",
    "int_type": "integer",
    "int_from_float": "integer",
    "uuid_parsing": "uuid",
    "uuid_type": "uuid",
    "float_parsing": "number",
    "decimal_parsing": "decimal",
    "bool_parsing": "boolean",
    "date_parsing": "date",
    "date_from_datetime_parsing": "date",
    "datetime_parsing": "datetime",
    "greater_than_equal": "integer",
    "less_than_equal": "integer",
    "datetime_from_date_parsing": "datetime",
}


class ErrorBody(BaseModel):
    """A 4xx answer: what went wrong, a stable code, and the field when one is to blame."""

    detail: Any
    code: str | None = None
    field: str | None = None


class LookupErrorDetail(BaseModel):
    error: str
    message: str
    field: str
    value: Any
    expected_type: str


class ValidationErrorBody(BaseModel):
    """422: the field errors of the body or query, or a path value of the wrong type."""

    detail: list[dict[str, Any]] | LookupErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer."""
    described = {
        400: "Invalid input or a constraint violated",
        401: "Not authenticated",
        403: "Permission denied",
        404: "Not found",
        422: "Validation error",
    }
    return {
        status: {
            "model": ValidationErrorBody if status == 422 else ErrorBody,
            "description": described[status],
        }
        for status in statuses
    }


def _errors(errors: Any) -> list[dict[str, Any]]:
    # The errors' `ctx` may hold exception objects; make them JSON.
    return [
        {k: v for k, v in error.items() if k != "url"}
        for error in to_jsonable_python(errors, fallback=str)
    ]


async def core_error(_: Request, exc: CoreError) -> JSONResponse:
    body: dict[str, Any] = {"detail": exc.detail, "code": exc.code}
    if isinstance(exc, IntegrityViolationError) and exc.field:
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def request_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    for error in exc.errors():
        loc = error.get("loc", ())
        if len(loc) == 2 and loc[0] == "path":
            field, value = str(loc[1]), error.get("input")
            expected = _EXPECTED.get(error.get("type", ""), "value")
            return JSONResponse(
                {
                    "detail": {
                        "error": "invalid_lookup_value",
                        "message": f"Invalid {field} format. Expected {expected}.",
                        "field": field,
                        "value": value,
                        "expected_type": expected,
                    }
                },
                status_code=422,
            )
    return JSONResponse({"detail": _errors(exc.errors())}, status_code=422)


async def pydantic_validation_error(_: Request, exc: ValidationError) -> JSONResponse:
    # Raised by a handler validating its own input (`Schema.model_validate(body)`).
    errors = [{**e, "loc": ["body", *e.get("loc", ())]} for e in exc.errors()]
    return JSONResponse({"detail": _errors(errors)}, status_code=422)


async def json_decode_error(_: Request, exc: json.JSONDecodeError) -> JSONResponse:
    # Raised by `await request.json()` in a handler on a malformed body.
    return JSONResponse(
        {
            "detail": [
                {
                    "loc": ["body", exc.pos],
                    "msg": f"JSON decode error: {exc.msg}",
                    "type": "json_invalid",
                }
            ]
        },
        status_code=422,
    )


_Handler = Callable[[Request, Any], Awaitable[Any]]


def install_on_host(app: FastAPI, owns: Callable[[Request], bool]) -> None:
    """Register the framework's handlers on a host app that serves Core routes beside its own.

    CoreErrors get Core's body everywhere. Validation and malformed-JSON errors get Core's body
    on the routes `owns` accepts; on the host's own routes its handler answers, as before.
    """
    app.add_exception_handler(CoreError, core_error)  # type: ignore[arg-type]
    for exc_class, handler in (
        (RequestValidationError, request_validation_error),
        (ValidationError, pydantic_validation_error),
        (json.JSONDecodeError, json_decode_error),
    ):
        app.add_exception_handler(
            exc_class, _for_core_routes(handler, app.exception_handlers.get(exc_class), owns)
        )


def _for_core_routes(
    core: _Handler, host: Callable[[Request, Any], Any] | None, owns: Callable[[Request], bool]
) -> Any:
    async def handle(request: Request, exc: Exception) -> Any:
        if owns(request):
            return await core(request, exc)
        if host is None:
            raise exc  # the host had no handler: it fails as it did before
        response = host(request, exc)
        return await response if inspect.isawaitable(response) else response

    return handle


def install(app: FastAPI) -> None:
    """Register the framework's handlers on a FastAPI app."""
    app.add_exception_handler(CoreError, core_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ValidationError, pydantic_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(json.JSONDecodeError, json_decode_error)  # type: ignore[arg-type]
