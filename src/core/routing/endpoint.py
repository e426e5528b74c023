"""The FastAPI endpoint of one ViewSet action: its unit of work, user, permissions, handler and
one JSON pass."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from core.context import current_container, reset_session, set_session
from core.models.session import close, commit, rollback
from core.views.base import ViewSet

__all__ = ("action_endpoint",)


def action_endpoint(
    view_class: type[ViewSet],
    action: str,
    handler_name: str,
    status_code: int,
    parameters: list[inspect.Parameter],
    passthrough: tuple[str, ...],
    action_permissions: tuple[Any, ...] | None,
    with_db: bool = True,
) -> Callable[..., Any]:
    """The FastAPI endpoint for one action: unit of work, user, permissions, handler, one JSON
    pass."""

    async def endpoint(request: Request, **params: Any) -> Response:
        container = current_container()
        view = view_class()
        view.request = request
        view.action = action
        view.container = container
        view.kwargs = params
        view._action_permissions = action_permissions
        db = container.database.database().session()
        token = set_session(db)
        try:
            request.state.user = await view.authenticate(db)
            await view.check_permissions()
            await view.check_throttles()
            handler = getattr(view, handler_name)
            values = {name: params[name] for name in passthrough}
            result = await (
                handler(request, db, **values) if with_db else handler(request, **values)
            )
            response = view.render(result, status_code)
            await commit(db)
        except BaseException:
            await rollback(db)
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
