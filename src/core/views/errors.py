"""Exception handlers: every error becomes one JSON envelope, `{"detail": ..., "code": ...}`.

`detail` is a sentence, or for a 422 the list of field errors, or for a lookup value of the
wrong type the spec's `invalid_lookup_value` object; `code` is a stable machine-readable name.
A field error never carries a secret's value and carries at most a short excerpt of any other
(see docs/errors.md).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException

from core.errors import (
    CoreError,
    IntegrityViolationError,
    InvalidFilterError,
    InvalidIdempotencyKeyError,
)
from core.views.body import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_JSON_DEPTH,
    BodyLimitMiddleware,
    MalformedBodyError,
)

logger = logging.getLogger("core.views.errors")

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

# The code of an HTTPException (FastAPI's, Starlette's or a handler's own) by status.
_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "throttled",
    500: "error",
    503: "service_unavailable",
}

# Field names whose values are never echoed back, whatever the schema says.
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential|authorization|otp",
    re.IGNORECASE,
)
EXCERPT_LENGTH = 32
_MESSAGE_LENGTH = 200


#: What an error's `detail` holds besides a 422's: a sentence, or a map of field to messages
#: (a new password the policy refuses: `{"password": [reasons...]}`).
ErrorDetail = str | dict[str, list[str]]
#: An excerpt of the value a field error or a lookup error echoes (never an object or array).
Excerpt = str | int | float | bool | None


class ErrorBody(BaseModel):
    """The error envelope: what went wrong, a stable code, and the field when one is to blame."""

    detail: ErrorDetail = Field(
        description="A sentence for people, or a map of field name to messages."
    )
    code: str = Field(
        description="A stable name for programs: `not_found`, `permission_denied`, `unique`, ...",
        examples=["not_found"],
    )
    field: str | None = Field(
        None,
        description="The column or query parameter to blame (a unique or foreign-key "
        "violation, an `invalid_filter`); absent otherwise.",
    )


class FieldError(BaseModel):
    """One reason the body or the query does not fit its schema."""

    loc: list[str | int] = Field(
        description="Where: `body` or `query`, then the field names and list indexes.",
        examples=[["body", "title"]],
    )
    msg: str = Field(examples=["String should have at most 200 characters"])
    type: str = Field(description="Pydantic's error type.", examples=["string_too_long"])
    input: Excerpt = Field(
        None,
        description="An excerpt of the value sent; absent for secrets, objects and arrays.",
    )
    ctx: dict[str, Any] | None = Field(None, description="The limit or rule that was broken.")


class LookupErrorDetail(BaseModel):
    """A path value of the wrong type (`/posts/abc/` for an integer id)."""

    error: str = Field(examples=["invalid_lookup_value"])
    message: str = Field(examples=["Invalid id format. Expected integer."])
    field: str = Field(examples=["id"])
    value: Excerpt = None
    expected_type: str = Field(examples=["integer"])


class ValidationErrorBody(BaseModel):
    """422: the field errors of the body or query, a path value of the wrong type, or (a
    sentence) an `Idempotency-Key` reused with another request."""

    detail: list[FieldError] | LookupErrorDetail | str
    code: str = Field(
        description="`validation_error` (a list of field errors), `invalid_lookup_value`, or "
        "`idempotency_key_mismatch` (a sentence).",
        examples=["validation_error"],
    )


_DESCRIBED = {
    400: "Malformed body, invalid input or a query parameter the list refuses",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    409: "A conflict: the stored rows refuse the write (a unique value already taken, "
    "`unique`; a related row missing or still referring to this one, `foreign_key`, "
    "`not_null`; `field` names the column), or a request with this Idempotency-Key is still "
    "in progress (`idempotency_key_in_use`)",
    413: "Request body too large",
    415: "Body is not JSON",
    422: "Validation error",
}

_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: send an access token.",
        "schema": {"type": "string"},
    }
}


def error_responses(
    *statuses: int, unique: Sequence[str] = (), model: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer.

    `unique` names the columns whose values a write may find taken: the 409 then says so,
    with an example of the `unique` answer; `model` names the model.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": ValidationErrorBody if status == 422 else ErrorBody,
            "description": _DESCRIBED[status],
        }
        if status == 401:
            response["headers"] = _CHALLENGE
        if status == 409 and unique:
            names = ", ".join(f"`{name}`" for name in unique)
            response["description"] += f". Unique here: {names}"
            response["content"] = {
                "application/json": {
                    "examples": {
                        "unique": {
                            "summary": "A unique value already taken",
                            "value": {
                                "detail": f"{model or 'Object'} with this {unique[0]} "
                                "already exists.",
                                "code": "unique",
                                "field": unique[0],
                            },
                        }
                    }
                }
            }
        responses[status] = response
    return responses


# -- field errors without secrets -------------------------------------------------------------
def _annotation_is_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_annotation_is_secret(arg) for arg in getattr(annotation, "__args__", ()) or ())


@cache
def secret_fields(schema: type[BaseModel]) -> frozenset[str]:
    """Fields of `schema` whose values an error never echoes: `SecretStr`/`SecretBytes` ones,
    those marked `json_schema_extra={"write_only": True}`, and secret-sounding names."""
    found = set()
    for name, field in schema.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if (
            _annotation_is_secret(field.annotation)
            or extra.get("write_only")
            or _SECRET_NAME.search(name)
            or (field.alias and _SECRET_NAME.search(field.alias))
        ):
            found.update({name, field.alias or name})
    return frozenset(found)


def _excerpt(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        text = str(value)
        return value if len(text) <= EXCERPT_LENGTH else text[:EXCERPT_LENGTH] + "…"
    if isinstance(value, str):
        return value if len(value) <= EXCERPT_LENGTH else value[:EXCERPT_LENGTH] + "…"
    return None  # objects and arrays are never echoed: they may hold anything


def _is_secret(loc: Iterable[Any], secrets: frozenset[str]) -> bool:
    return any(
        isinstance(part, str) and (part in secrets or _SECRET_NAME.search(part)) for part in loc
    )


def field_errors(
    errors: Iterable[Any], *, prefix: tuple[str, ...] = (), secrets: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Pydantic errors as the envelope's field errors: `loc`, `msg`, `type`, and `input`/`ctx`
    only when they are no secret, cut to a short excerpt."""
    result = []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        secret = _is_secret(loc, secrets)
        item: dict[str, Any] = {
            "loc": loc,
            "msg": str(error.get("msg", ""))[:_MESSAGE_LENGTH],
            "type": error.get("type", "value_error"),
        }
        if not secret and error.get("type") != "missing":
            value = _excerpt(error.get("input"))
            if value is not None:
                item["input"] = value
        ctx = error.get("ctx")
        if ctx and not secret:
            # ctx holds the schema's limits and validators' messages, not the input: cut only
            # what is too long to be either.
            item["ctx"] = {
                key: value[:_MESSAGE_LENGTH] if isinstance(value, str) else value
                for key, value in to_jsonable_python(ctx, fallback=str).items()
            }
        result.append(item)
    return result


class InvalidBodyError(CoreError, ValueError):
    """The body does not fit the input schema (422); `detail` is the list of field errors."""

    status_code = 422
    code = "validation_error"

    @classmethod
    def from_validation(
        cls, exc: ValidationError, schema: type[BaseModel], extra_secrets: Iterable[str] = ()
    ) -> InvalidBodyError:
        secrets = secret_fields(schema) | frozenset(extra_secrets)
        return cls(field_errors(exc.errors(), prefix=("body",), secrets=secrets))


# -- handlers -----------------------------------------------------------------------------------
def envelope(
    detail: Any,
    code: str,
    status_code: int,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "code": code, **extra}
    headers = dict(headers or {})
    if status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status_code, headers=headers or None)


async def core_error(_: Request, exc: CoreError) -> JSONResponse:
    extra = {}
    if (
        isinstance(exc, IntegrityViolationError | InvalidFilterError | InvalidIdempotencyKeyError)
        and exc.field
    ):
        extra["field"] = exc.field
    detail = exc.detail
    if exc.status_code >= 500:
        # A server-side failure (a misconfiguration, an unreachable service): its detail names
        # hosts, files or settings, so it goes to the log and the client gets the generic text.
        if exc.status_code == 503:
            detail = type(exc).default_detail  # "try again shortly": the client can act on it
        else:
            logger.error("%s: %s", type(exc).__name__, exc.detail, exc_info=exc)
            detail = CoreError.default_detail
    if not isinstance(detail, str | list | dict):
        detail = str(detail)
    return envelope(detail, exc.code, exc.status_code, exc.headers, **extra)


async def http_exception(_: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return envelope(exc.detail, code, exc.status_code, exc.headers)


async def request_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for error in errors:
        loc = error.get("loc", ())
        if len(loc) == 2 and loc[0] == "path":
            field = str(loc[1])
            expected = _EXPECTED.get(error.get("type", ""), "value")
            return envelope(
                {
                    "error": "invalid_lookup_value",
                    "message": f"Invalid {field} format. Expected {expected}.",
                    "field": field,
                    "value": _excerpt(error.get("input")),
                    "expected_type": expected,
                },
                "invalid_lookup_value",
                422,
            )
        if error.get("type") == "json_invalid":
            # FastAPI's own body parsing on a plain route: a malformed body is a 400.
            return envelope(MalformedBodyError.default_detail, MalformedBodyError.code, 400)
    return envelope(field_errors(errors), "validation_error", 422)


async def pydantic_validation_error(_: Request, exc: ValidationError) -> JSONResponse:
    # Raised by a handler validating its own input (`Schema.model_validate(body)`).
    return envelope(field_errors(exc.errors(), prefix=("body",)), "validation_error", 422)


async def json_decode_error(_: Request, exc: json.JSONDecodeError) -> JSONResponse:
    # Raised by a handler's own `json.loads` on a malformed body.
    return envelope(f"Malformed JSON body: {exc.msg}.", MalformedBodyError.code, 400)


async def server_error(_: Request, exc: Exception) -> JSONResponse:
    # The server logs it with its traceback (Starlette re-raises it after this answer); the
    # client learns nothing about the cause.
    return envelope(CoreError.default_detail, CoreError.code, 500)


_Handler = Callable[[Request, Any], Awaitable[Any]]


def install_on_host(app: FastAPI, owns: Callable[[Request], bool]) -> None:
    """Register the framework's handlers on a host app that serves Core routes beside its own.

    CoreErrors get Core's body everywhere. HTTP, validation and malformed-JSON errors get
    Core's body on the routes `owns` accepts; on the host's own routes its handler answers, as
    before. The body limit is not installed on the host: Core's routes enforce it themselves
    (see `core.views.body.limit_receive`), and the host's own routes keep theirs.
    """
    app.add_exception_handler(CoreError, core_error)  # type: ignore[arg-type]
    for exc_class, handler in (
        (HTTPException, http_exception),
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
    """Register the framework's handlers and request-body limits on a FastAPI app.

    The limits come from the settings of the CoreApp that owns `app` (`REQUEST_MAX_BODY_SIZE`,
    `REQUEST_MAX_JSON_DEPTH`), else the defaults.
    """
    settings = getattr(getattr(app.state, "core_app", None), "settings", None)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_size=getattr(settings, "request_max_body_size", DEFAULT_MAX_BODY_SIZE),
        max_json_depth=getattr(settings, "request_max_json_depth", DEFAULT_MAX_JSON_DEPTH),
    )
    app.add_exception_handler(CoreError, core_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ValidationError, pydantic_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(json.JSONDecodeError, json_decode_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, server_error)
