"""Who resolves what: the project's ViewSet actions (through its AutoRouters), its consumers and
its tasks (through their declarations), and the providers each resolves when it runs.

What the framework's own code resolves is declared below; a handler the project wrote itself
is listed with what the framework resolves around it (the unit of work and the user), since
what its body resolves is only known by running it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from core.containers.graph.model import ProviderUser
from core.declarations import Declarations

#: Said of an action whose handler the project wrote.
PROJECT_HANDLER: Final = "(its own code may resolve more)"
#: Every ViewSet and APIView route: the request's unit of work, then `request.user`; then its
#: throttles, if it has any.
ROUTE: Final = ("database.database", "auth.authenticator")
#: A throttle counting a request: the client's address, the rate, the count.
THROTTLE: Final = ("throttling.trusted_proxies", "throttling.rates", "throttling.rate_limiter")
#: A route that accepts `Idempotency-Key` claims its key and saves its response.
IDEMPOTENCY: Final = ("idempotency.keys",)
#: A view without `throttle_classes` of its own reads THROTTLE_DEFAULT_CLASSES.
DEFAULT_THROTTLES: Final = "throttling.default_throttle_classes"
#: A consumer's message: the broker feeds it, the runtime dispatches it in a unit of work.
CONSUMER: Final = ("messaging.broker", "messaging.runtime", "database.database")
#: A task: sent and retried through the queue, run in a unit of work.
TASK: Final = ("tasks.queue", "database.database")

_CRUD_REPOSITORY = ("database.repository",)
#: The framework's own handlers (module.qualname) and the providers their bodies resolve.
HANDLERS: Final[Mapping[str, tuple[str, ...]]] = {
    "core.views.viewsets.ListModelMixin.list": _CRUD_REPOSITORY,
    "core.views.viewsets.RetrieveModelMixin.retrieve": _CRUD_REPOSITORY,
    "core.views.viewsets.CreateModelMixin.create": _CRUD_REPOSITORY,
    "core.views.viewsets.UpdateModelMixin.update": _CRUD_REPOSITORY,
    "core.views.viewsets.UpdateModelMixin.partial_update": _CRUD_REPOSITORY,
    "core.views.viewsets.DestroyModelMixin.destroy": _CRUD_REPOSITORY,
    "core.auth.views.AuthViewSet.register": (
        "auth.user_model",
        "database.repository",
        "auth.password_policy",
        "auth.password_hasher",
    ),
    "core.auth.views.AuthViewSet.login": (
        "auth.authenticator",
        "database.repository",
        "auth.password_hasher",
        "auth.refresh_tokens",
    ),
    "core.auth.views.AuthViewSet.refresh": ("auth.refresh_tokens", "auth.authenticator"),
    "core.auth.views.AuthViewSet.me": (),
    "core.auth.views.AuthViewSet.logout": ("auth.refresh_tokens",),
}


def find_users(
    app: Any | None, config: Mapping[str, Any], declarations: Declarations
) -> tuple[ProviderUser, ...]:
    """The ViewSet actions of `app`'s AutoRouters, then the declared consumers and tasks.

    Args:
        app: A CoreApp (its `routes`), or None when there is no app: consumers and tasks only.
        config: The container's configuration values (which throttles views get by default).
        declarations: The container's declarations, where `@consumer` and `@task` recorded.
    """
    return (
        *_viewset_users(app, config),
        *_consumer_users(declarations),
        *_task_users(declarations),
    )


def _throttles(view: type, action: str, config: Mapping[str, Any]) -> tuple[str, ...]:
    own = getattr(view, "throttle_classes", None)
    resolved: tuple[str, ...] = () if own is not None else (DEFAULT_THROTTLES,)
    throttles = own if own is not None else config.get("throttle_default_classes")
    # AuthViewSet throttles its `throttled_actions` itself, per address and per account.
    if throttles or action in getattr(view, "throttled_actions", ()):
        resolved += THROTTLE
    return resolved


def _viewset_users(app: Any | None, config: Mapping[str, Any]) -> list[ProviderUser]:
    users: list[ProviderUser] = []
    for spec in getattr(app, "routes", None) or ():
        handler = getattr(spec.view, spec.action, None)
        qualified = f"{getattr(handler, '__module__', '')}.{getattr(handler, '__qualname__', '')}"
        own = HANDLERS.get(qualified)
        detail = f"{' '.join(spec.methods)} {spec.path}"
        if own is None:
            detail += f" {PROJECT_HANDLER}"
        throttles = _throttles(spec.view, spec.action, config)
        keys = IDEMPOTENCY if getattr(spec, "idempotent", False) else ()
        resolved = tuple(dict.fromkeys((*ROUTE, *throttles, *keys, *(own or ()))))
        users.append(
            ProviderUser(
                kind="viewset",
                name=spec.view.__name__,
                action=spec.action,
                detail=detail,
                providers=resolved,
            )
        )
    return users


def _consumer_users(declarations: Declarations) -> list[ProviderUser]:
    return [
        ProviderUser(
            kind="consumer",
            name=declaration.name,
            action=", ".join(declaration.handlers),
            detail=f"group {declaration.group}, topics {', '.join(declaration.topics)}",
            providers=CONSUMER,
        )
        for declaration in declarations.consumers.values()
    ]


def _task_users(declarations: Declarations) -> list[ProviderUser]:
    return [
        ProviderUser(
            kind="task",
            name=task.name,
            action=None,
            detail=f"queue {task.queue}" if task.queue else "default queue",
            providers=TASK,
        )
        for task in declarations.tasks.values()
    ]
