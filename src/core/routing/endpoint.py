"""The FastAPI endpoint of one ViewSet action: its unit of work, user, permissions, handler and
one JSON pass."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from core.context import current_container, reset_session, set_session
from core.idempotency import Claim
from core.models.session import close, commit, rollback
from core.views.base import ViewSet
from core.views.body import (
    LIMITED_KEY,
    MAX_BODY_SIZE_KEY,
    MAX_JSON_DEPTH_KEY,
    CoreRequest,
    limit_receive,
    read_json,
)
from core.views.errors import InvalidBodyError

__all__ = ("action_endpoint",)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def action_endpoint(
    view_class: type[ViewSet],
    action: str,
    handler_name: str,
    status_code: int,
    parameters: list[inspect.Parameter],
    passthrough: tuple[str, ...],
    action_permissions: tuple[Any, ...] | None,
    with_db: bool = True,
    body_schema: type[BaseModel] | None = None,
    idempotent: bool = False,
) -> Callable[..., Any]:
    """The FastAPI endpoint for one action: unit of work, user, permissions, body, handler, one
    JSON pass.

    The body is read only once the user is known and allowed: a refused caller gets its 401
    or 403 whatever it sent, and nothing it sent is parsed. With `idempotent`, a request
    carrying `Idempotency-Key` (other than GET, HEAD or OPTIONS) claims its key then, and the
    response is saved with the unit of work; a retry gets the saved response back.
    """

    async def endpoint(request: Request, **params: Any) -> Response:
        container = current_container()
        if view_class.max_body_size is not None:
            request.scope[MAX_BODY_SIZE_KEY] = view_class.max_body_size
        if LIMITED_KEY not in request.scope:
            # Served by a host app (`CoreApp.attach`) without Core's middleware: count here.
            settings = container.settings()
            request.scope.setdefault(MAX_JSON_DEPTH_KEY, settings.request_max_json_depth)
            request._receive = limit_receive(
                request.scope, request.receive, settings.request_max_body_size
            )
        # Handlers' `await request.json()` parses strictly, within the limits.
        request.__class__ = CoreRequest
        view = view_class()
        view.request = request
        view.action = action
        view.container = container
        view.kwargs = params
        view._action_permissions = action_permissions
        db = container.database.database().session()
        token = set_session(db)
        claim: Claim | None = None
        try:
            request.state.user = await view.authenticate(db)
            await view.check_permissions()
            await view.check_throttles()
            if idempotent and request.method not in _SAFE_METHODS:
                claim = await container.idempotency.keys().begin(request, db)
                if claim is not None and claim.replayed is not None:
                    # The key's first request answered: that answer again, nothing run.
                    return claim.replayed
            values = {name: params[name] for name in passthrough}
            if body_schema is not None:
                values["data"] = await _validated_body(view_class, request, body_schema)
            handler = getattr(view, handler_name)
            result = await (
                handler(request, db, **values) if with_db else handler(request, **values)
            )
            response = view.render(result, status_code)
            if claim is not None:
                await claim.before_commit(db, response)
            await commit(db)
            if claim is not None:
                await claim.after_commit(db)
        except BaseException:
            await rollback(db)
            if claim is not None:
                await claim.failed(db)
            raise
        finally:
            reset_session(token)
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
    raw = await read_json(request)  # the parser's limits, and 400 on a malformed body
    if raw is ...:
        raise InvalidBodyError([{"loc": ["body"], "msg": "Field required", "type": "missing"}])
    try:
        # JSON's own types, as the OpenAPI document states them: `0` is no boolean and `"5"`
        # no integer (pydantic's strict JSON mode; dates, UUIDs and enums still come as strings).
        body = await request.body()
        if b"." in body or b"e" in body or b"E" in body:
            # The parser reads 5.0 as 5 (JSON Schema counts it an integer): validate what it read.
            body = to_json(raw)
        return schema.model_validate_json(body, strict=True)
    except ValidationError as exc:
        write_only = getattr(view_class, "write_only_fields", ())
        raise InvalidBodyError.from_validation(exc, schema, write_only) from None
