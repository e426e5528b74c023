"""ViewSet and APIView: permissions, authentication and rendering shared by every view."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from core.errors import NotAuthenticatedError, PermissionDeniedError, ThrottledError
from core.permissions import AllowAny, Permission, resolve_permissions
from core.throttling import BaseThrottle

if TYPE_CHECKING:
    from core.containers.core import CoreContainer

JSON_MEDIA_TYPE = "application/json"


@cache
def list_adapter(schema: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[schema])  # type: ignore[valid-type]


class JSONBytesResponse(Response):
    """A response whose body is already JSON bytes (pydantic-core made them: one pass)."""

    media_type = JSON_MEDIA_TYPE


class ViewSet:
    """Base of every view: who may run which action, and how results become responses.

    Per request the router creates an instance and sets `request`, `action` (the action's
    name), `container` (the running app's root container) and `kwargs` (path values).

    Permission precedence: `@action(permission_classes=...)` > `permission_classes_by_action`
    > `permission_classes`. Entries may be classes or instances. `partial_update` takes
    `update`'s entry unless it has its own: PATCH is an update.

    `max_body_size` (bytes) overrides REQUEST_MAX_BODY_SIZE for this view's routes.

    Throttles (`core.throttling`) run after the permissions: `throttle_classes`, else the
    THROTTLE_DEFAULT_CLASSES setting; `throttle_scope` names the rate of `ScopedRateThrottle`.
    """

    permission_classes: ClassVar[Sequence[Any]] = (AllowAny,)
    max_body_size: ClassVar[int | None] = None
    permission_classes_by_action: ClassVar[dict[str, Sequence[Any]]] = {}
    tags: ClassVar[list[str] | None] = None
    output_schema: ClassVar[type[BaseModel] | None] = None
    throttle_classes: ClassVar[Sequence[Any] | None] = None
    throttle_scope: ClassVar[str | None] = None

    request: Request
    action: str
    container: CoreContainer
    kwargs: dict[str, Any]
    _action_permissions: tuple[Any, ...] | None = None

    # -- authentication and permissions ------------------------------------------------------
    async def authenticate(self, db: Any) -> Any:
        """The request's user (or None), from the container's authenticator."""
        return await self.container.auth.authenticator().authenticate(self.request, db)

    def get_permissions(self) -> tuple[Permission, ...]:
        """Permission instances for the current action, by precedence."""
        return _permissions(type(self), self.action, self._action_permissions)

    def permission_denied(self, permission: Permission | None = None) -> None:
        """401 when nobody is authenticated (so the client knows to log in), else 403."""
        message = getattr(permission, "message", None)
        if getattr(self.request.state, "user", None) is None:
            raise NotAuthenticatedError()
        raise PermissionDeniedError(message)

    async def check_permissions(self) -> None:
        for permission in self.get_permissions():
            if not await permission.has_permission(self.request, self):
                self.permission_denied(permission)

    async def check_object_permissions(self, obj: Any) -> None:
        for permission in self.get_permissions():
            if not await permission.has_object_permission(self.request, self, obj):
                self.permission_denied(permission)

    # -- throttling ---------------------------------------------------------------------------
    def get_throttles(self) -> list[BaseThrottle]:
        """Throttle instances for this request: `throttle_classes`, else the settings' default."""
        chosen = self.throttle_classes
        if chosen is None:
            chosen = self.container.throttling.default_throttle_classes()
        return [entry() if isinstance(entry, type) else entry for entry in chosen]

    async def check_throttles(self) -> None:
        """Count the request in every throttle; 429 with the longest wait if any refuses."""
        waits: list[float | None] = []
        for throttle in self.get_throttles():
            if not await throttle.allow_request(self.request, self):
                waits.append(throttle.wait())
        if waits:
            known = [wait for wait in waits if wait is not None]
            self.throttled(max(known) if known else None)

    def throttled(self, wait: float | None) -> None:
        """Refuse the request: 429 with `Retry-After` (when the wait is known)."""
        raise ThrottledError(wait)

    # -- rendering --------------------------------------------------------------------------
    def get_output_schema(self) -> type[BaseModel] | None:
        return self.output_schema

    @classmethod
    def response_model_for(cls, handler: str) -> Any:
        """What `handler` (an @action or an APIView method) answers, for OpenAPI; None to use
        its return annotation or `@action(response_model=...)`. Override when the type is
        known only to the class (e.g. a model set on a subclass)."""
        return None

    @classmethod
    def request_model_for(cls, handler: str) -> type[BaseModel] | None:
        """The JSON body `handler` (an @action or an APIView method) reads, for OpenAPI; None
        when it reads none or `@action(request_model=...)` says it. Override when the schema
        is known only to the class (e.g. a schema a subclass sets)."""
        return None

    def render(self, result: Any, status_code: int = 200) -> Response:
        """A response for whatever a handler returned: Response, model instance(s), pydantic, or
        JSON data."""
        if isinstance(result, Response):
            return result
        if status_code == 204:
            return Response(status_code=204)
        return JSONBytesResponse(self.to_json(result), status_code=status_code)

    def to_json(self, result: Any) -> bytes:
        schema = self.get_output_schema()
        if schema is not None and _is_model_instance(result):
            instance = schema.model_validate(result, from_attributes=True)
            return schema.__pydantic_serializer__.to_json(instance, by_alias=True)
        if (
            schema is not None
            and isinstance(result, list)
            and result
            and _is_model_instance(result[0])
        ):
            adapter = list_adapter(schema)
            return adapter.dump_json(
                adapter.validate_python(result, from_attributes=True), by_alias=True
            )
        return to_json(result, by_alias=True)


def _is_model_instance(value: Any) -> bool:
    return hasattr(type(value), "__mapper__")


_permission_cache: dict[tuple[type, str, Any], tuple[Permission, ...]] = {}


def _permissions(
    cls: type[ViewSet], action: str, from_action: tuple[Any, ...] | None
) -> tuple[Permission, ...]:
    key = (cls, action, from_action)
    found = _permission_cache.get(key)
    if found is None:
        if from_action is not None:
            chosen: Any = from_action
        else:
            chosen = permissions_for_action(cls, action)
        found = _permission_cache[key] = resolve_permissions(chosen)
    return found


def permissions_for_action(cls: type[ViewSet], action: str) -> Sequence[Any]:
    """The declared permissions of a CRUD or APIView action (not an @action's own)."""
    by_action = cls.permission_classes_by_action
    if action in by_action:
        return by_action[action]
    if action == "partial_update" and "update" in by_action:
        return by_action["update"]
    return cls.permission_classes


class APIView(ViewSet):
    """Endpoints without a model: methods `get`, `post`, `put`, `patch`, `delete` become routes.

    Handlers are `async def get(self, request, **kwargs)`; kwargs hold path values. A database
    unit of work is open (the ambient session) for code that needs one.

    Example:
        >>> class HealthView(APIView):
        ...     permission_classes = [AllowAny]
        ...     tags = ["System"]
        ...     async def get(self, request, **kwargs):
        ...         return {"status": "healthy"}
    """

    http_methods: ClassVar[tuple[str, ...]] = ("get", "post", "put", "patch", "delete")
