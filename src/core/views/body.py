"""Request bodies: a size limit enforced while they stream in, and strict JSON parsing.

`BodyLimitMiddleware` counts the bytes of every HTTP request body as the server hands them over
and refuses the request (413) as soon as they pass the limit: a 64 MB body is never held in
memory. A view lowers or raises the limit for its own routes (`ViewSet.max_body_size`), which
the router sets in the scope before reading the body.

`parse_json` accepts only what RFC 8259 allows and this process can hold: valid UTF-8, no lone
surrogate escapes, no `NaN`/`Infinity`, no number that overflows a double or a 64-bit integer,
no nesting deeper than the depth limit. Anything else is a 400, never a 500.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic_core import from_json
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import CoreError

MAX_BODY_SIZE_KEY = "core.max_body_size"
MAX_JSON_DEPTH_KEY = "core.max_json_depth"
LIMITED_KEY = "core.body_limited"
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 32
_INT64 = 2**63


class RequestBodyTooLargeError(CoreError, HTTPException):  # type: ignore[misc]
    """The request body passed the size limit (413).

    Also a Starlette `HTTPException`, so FastAPI's own body reading (plain FastAPI routes)
    passes it on instead of turning it into a 400.
    """

    status_code = 413
    code = "request_too_large"
    default_detail = "Request body too large."

    def __init__(self, limit: int) -> None:
        self.detail = f"Request body too large: the limit is {limit} bytes."
        self.limit = limit
        Exception.__init__(self, self.detail)


class MalformedBodyError(CoreError, ValueError):
    """The body is not JSON this server accepts (400)."""

    status_code = 400
    code = "parse_error"
    default_detail = "Malformed JSON body."


class UnsupportedMediaTypeError(CoreError, ValueError):
    """The body is not `application/json` (415)."""

    status_code = 415
    code = "unsupported_media_type"
    default_detail = "Send the body as application/json."


class BodyLimitMiddleware:
    """ASGI middleware: refuse a request body past `max_body_size` bytes while it streams.

    The limit in force is the scope's `core.max_body_size` when a view set one, else
    `max_body_size`. A `Content-Length` over the limit is refused before a byte is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault(MAX_JSON_DEPTH_KEY, self.max_json_depth)
        await self.app(scope, limit_receive(scope, receive, self.max_body_size), send)


def limit_receive(scope: Scope, receive: Receive, max_body_size: int) -> Receive:
    """`receive`, refusing the body past the scope's `core.max_body_size` (set to
    `max_body_size` unless a view set it) with RequestBodyTooLargeError.

    Marks the scope as limited, so an endpoint knows no second counter is needed.
    """
    scope.setdefault(MAX_BODY_SIZE_KEY, max_body_size)
    scope[LIMITED_KEY] = True
    received = 0
    declared = _content_length(scope)

    async def limited() -> Message:
        nonlocal received
        limit: int = scope[MAX_BODY_SIZE_KEY]
        if declared is not None and declared > limit:
            raise RequestBodyTooLargeError(limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestBodyTooLargeError(limit)
        return message

    return limited


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def parse_json(body: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """The JSON value of `body`, refusing what the module docstring lists.

    Raises:
        MalformedBodyError: with a short reason (never the body itself).
    """
    try:
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        reason = str(exc)
        if "recursion limit" in reason:
            reason = f"nested deeper than {max_depth} levels"
        raise MalformedBodyError(f"Malformed JSON body: {reason}.") from None
    if _check_value(value, max_depth):
        # JSON Schema counts 5.0 as an integer: read it as one, so strict validation takes it.
        value = _integral_floats_as_ints(value)
    return value


def _integral(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < _INT64


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return int(value) if _integral(value) else value


def _check_value(value: Any, max_depth: int) -> bool:
    """Refuse what cannot be held; answers whether `value` holds an integral float."""
    integral = False
    # Iterative, so a deep document cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, float) and not math.isfinite(item):
                raise MalformedBodyError("Malformed JSON body: a number is out of range.")
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT64:
                raise MalformedBodyError("Malformed JSON body: an integer is out of range.")
            integral = integral or _integral(item)
            continue
        if depth > max_depth:
            raise MalformedBodyError(f"Malformed JSON body: nested deeper than {max_depth} levels.")
        stack.extend((child, depth + 1) for child in children)
    return integral


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class CoreRequest(Request):
    """The request handlers receive: `await request.json()` parses strictly (see `parse_json`)
    and within the body limit."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = parse_json(
                body, self.scope.get(MAX_JSON_DEPTH_KEY, DEFAULT_MAX_JSON_DEPTH)
            )
        return self._json


async def read_json(request: Request) -> Any:
    """The request's JSON body, parsed strictly; `...` when there is none.

    Raises:
        RequestBodyTooLargeError, MalformedBodyError, UnsupportedMediaTypeError.
    """
    if not is_json_content_type(request.headers.get("content-type")):
        raise UnsupportedMediaTypeError()
    body = await request.body()
    if not body.strip():
        return ...
    return parse_json(body, request.scope.get(MAX_JSON_DEPTH_KEY, DEFAULT_MAX_JSON_DEPTH))
