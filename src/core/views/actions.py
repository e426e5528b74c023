"""@action: extra routes on a ViewSet, as in DRF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ActionInfo:
    name: str
    methods: tuple[str, ...]
    detail: bool
    permission_classes: tuple[Any, ...] | None
    url_path: str
    url_name: str
    status_code: int | None = None
    summary: str | None = None
    request_model: Any = None
    idempotent: bool = False
    route_options: dict[str, Any] = field(default_factory=dict)


def action(
    methods: Sequence[str] = ("GET",),
    detail: bool = False,
    permission_classes: Sequence[Any] | None = None,
    url_path: str | None = None,
    url_name: str | None = None,
    status_code: int | None = None,
    request_model: Any = None,
    idempotent: bool = False,
    **route_options: Any,
) -> Callable[[F], F]:
    """Mark a ViewSet method as an extra route.

    `detail=True` routes under the object (`/posts/{id}/publish/`), `detail=False` under the
    collection (`/posts/featured/`). The handler is `async def name(self, request, db, **kwargs)`
    where kwargs hold the lookup value for detail routes. It may return a dict, a list, a model
    instance (serialized with the ViewSet's output schema), a pydantic model or a Response.

    Args:
        methods: HTTP methods, e.g. `["POST"]`.
        detail: whether the route acts on one object.
        permission_classes: replaces the ViewSet's permissions for this action.
        url_path: the path segment; the method's name (dashes for underscores kept) by default.
        url_name: the route name's suffix (`post-<url_name>`); the method's name by default.
        status_code: the success status; 200 by default.
        request_model: the pydantic model of the JSON body the handler reads
            (`await request.json()`), documented in OpenAPI as a named component. The handler
            validates the body itself, as the spec's handlers do (`Model.model_validate(body)`).
        idempotent: accept an `Idempotency-Key` header on its POST, PUT, PATCH and DELETE
            requests: a retry with the same key gets the first response back and runs nothing
            (see docs/idempotency.md).
        route_options: passed to FastAPI's `add_api_route` (e.g. `response_model`, `summary`).

    Example:
        >>> class PostViewSet(ModelViewSet):  # doctest: +SKIP
        ...     @action(methods=["POST"], detail=True, permission_classes=[IsAuthenticated])
        ...     async def publish(self, request, db, **kwargs):
        ...         post = await self.get_object(db, **kwargs)
        ...         post.is_published = True
        ...         await post.save(db)
        ...         return {"published": True}
    """

    def decorate(function: F) -> F:
        name = function.__name__
        function.action = ActionInfo(  # type: ignore[attr-defined]
            name=name,
            methods=tuple(m.upper() for m in methods),
            detail=detail,
            permission_classes=tuple(permission_classes)
            if permission_classes is not None
            else None,
            url_path=(url_path if url_path is not None else name).strip("/"),
            url_name=url_name or name,
            status_code=status_code,
            request_model=request_model,
            idempotent=idempotent,
            route_options=route_options,
        )
        return function

    return decorate


def actions_of(cls: type) -> list[ActionInfo]:
    """The @action methods of a ViewSet class (inherited ones included), in definition order."""
    found: dict[str, ActionInfo] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            info = getattr(value, "action", None)
            if isinstance(info, ActionInfo):
                found[name] = info
    return list(found.values())
