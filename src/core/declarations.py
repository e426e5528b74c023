"""Declarations: what user code declares at import time, kept in one object.

`@task`, `@periodic_task`, `@event`, `@consumer`, `register_password_hasher`,
`register_token_backend`, `register_auth_backend` and `configure_auth` only record what they are
given, like Celery's task registry. They record into the process default (`declarations()`), so
the spec's global decorator style works. The composition root is handed a `Declarations`
(`build_container(settings, declarations=...)`, by default the process one) and binds what it
holds to adapters when an app or a worker starts, so what it binds to (queue, broker, hasher
instance) stays per container.

`snapshot()` and `restore()` put a `Declarations` back as it was: `core.testing`'s
`isolated_declarations` uses them so one test's declarations don't leak into the next.

This module imports only the standard library, `core.errors` and the ports: every area imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from core.ports.auth import AuthBackend
from core.ports.hashing import PasswordHasher
from core.ports.tokens import TokenBackend

if TYPE_CHECKING:
    from collections.abc import Mapping

    from core.messaging.consumers import ConsumerDeclaration
    from core.messaging.producer import EventDeclaration
    from core.tasks.periodic import PeriodicTask
    from core.tasks.task import Task

__all__ = (
    "AuthDeclaration",
    "Declarations",
    "DeclarationsSnapshot",
    "PasswordValidator",
    "declarations",
)

_T = TypeVar("_T")

#: A password validator: returns why `password` is refused, or None to accept it.
PasswordValidator = Callable[[str, Any], "str | None"]


@dataclass(frozen=True)
class AuthDeclaration:
    """What `configure_auth` recorded; None means "not declared, use the setting"."""

    secret_key: str | None = None
    access_token_expire_minutes: int | None = None
    refresh_token_expire_days: int | None = None
    password_hasher: str | None = None
    token_backend: str | None = None
    algorithm: str | None = None
    user_model: type[Any] | None = None
    password_min_length: int | None = None
    password_max_length: int | None = None
    password_validators: tuple[PasswordValidator, ...] | None = None

    def value(self, name: str, setting: _T) -> _T:
        """The declared value of `name` when there is one, else `setting`."""
        declared = getattr(self, name)
        return setting if declared is None else declared


@dataclass(frozen=True)
class DeclarationsSnapshot:
    """An immutable copy of a `Declarations`, for `Declarations.restore`."""

    tasks: Mapping[str, Task[Any]]
    events: Mapping[tuple[str, str, str], EventDeclaration]
    consumers: Mapping[str, ConsumerDeclaration]
    password_hashers: Mapping[str, PasswordHasher]
    token_backends: Mapping[str, TokenBackend]
    auth_backends: Mapping[str, AuthBackend]
    auth: AuthDeclaration


@dataclass(eq=False)
class Declarations:
    """Everything declared for an app: tasks, events, consumers, auth adapters and settings.

    Each mapping keeps declaration order. The decorators and `register_*` functions validate
    what they are given and write it here; containers read it when they build and bind.

    Attributes:
        tasks: `@task` and `@periodic_task` tasks, by task name.
        events: `@event` declarations, by (event name, topic, emitter's qualname).
        consumers: `@consumer` declarations, by the class's dotted name.
        password_hashers: registered hashers, by `AUTH_PASSWORD_HASHER` name.
        token_backends: registered token backends, by `AUTH_TOKEN_BACKEND` name.
        auth_backends: registered auth backends, in chain order, by name.
        auth: what `configure_auth` declared.

    Example:
        >>> from core.declarations import Declarations, declarations
        >>> saved = declarations().snapshot()
        >>> # ... declare tasks, register hashers ...
        >>> declarations().restore(saved)
        >>> Declarations().tasks  # a fresh one holds nothing
        {}
    """

    tasks: dict[str, Task[Any]] = field(default_factory=dict)
    events: dict[tuple[str, str, str], EventDeclaration] = field(default_factory=dict)
    consumers: dict[str, ConsumerDeclaration] = field(default_factory=dict)
    password_hashers: dict[str, PasswordHasher] = field(default_factory=dict)
    token_backends: dict[str, TokenBackend] = field(default_factory=dict)
    auth_backends: dict[str, AuthBackend] = field(default_factory=dict)
    auth: AuthDeclaration = field(default_factory=AuthDeclaration)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{name}={len(getattr(self, name))}"
            for name in (
                "tasks",
                "events",
                "consumers",
                "password_hashers",
                "token_backends",
                "auth_backends",
            )
        )
        return f"<Declarations {counts}>"

    def periodic_tasks(self) -> tuple[PeriodicTask[Any], ...]:
        """The declared tasks that have a schedule, in declaration order."""
        if not self.tasks:
            return ()  # and `core.tasks` may not be imported at all
        from core.tasks.periodic import PeriodicTask

        return tuple(task for task in self.tasks.values() if isinstance(task, PeriodicTask))

    def snapshot(self) -> DeclarationsSnapshot:
        """A copy of everything declared now, for `restore`."""
        with self.lock:
            return DeclarationsSnapshot(
                tasks=MappingProxyType(dict(self.tasks)),
                events=MappingProxyType(dict(self.events)),
                consumers=MappingProxyType(dict(self.consumers)),
                password_hashers=MappingProxyType(dict(self.password_hashers)),
                token_backends=MappingProxyType(dict(self.token_backends)),
                auth_backends=MappingProxyType(dict(self.auth_backends)),
                auth=self.auth,
            )

    def restore(self, snapshot: DeclarationsSnapshot) -> None:
        """Put back what `snapshot` holds, forgetting what was declared since.

        The mappings are refilled in place, so anything holding one sees the restored content.
        """
        with self.lock:
            for name in (
                "tasks",
                "events",
                "consumers",
                "password_hashers",
                "token_backends",
                "auth_backends",
            ):
                current: dict[Any, Any] = getattr(self, name)
                current.clear()
                current.update(getattr(snapshot, name))
            self.auth = snapshot.auth


_default = Declarations()


def declarations() -> Declarations:
    """The process's default `Declarations`: where decorators and `register_*` record.

    Example:
        >>> from core.declarations import declarations
        >>> [task.name for task in declarations().tasks.values()]  # doctest: +SKIP
        ['src.main.send_email']
    """
    return _default
