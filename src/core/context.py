"""Ambient context: the running app's container and the current unit of work.

CoreApp sets them for a request, the consumer runner for a message and the worker for a task.
Module-level helpers (`Model.objects`, `publish_event`, `Task.delay`) read them here, never
from a module global, so two apps in one process never see each other's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from core.errors import NoActiveContextError

if TYPE_CHECKING:
    from core.containers.core import CoreContainer

_container: ContextVar[CoreContainer | None] = ContextVar("core_container", default=None)
_session: ContextVar[Any | None] = ContextVar("core_session", default=None)


def current_container() -> CoreContainer:
    """The container of the app, consumer or worker running this code.

    Raises:
        NoActiveContextError: outside a request, message, task or `use_container` block.
    """
    container = _container.get()
    if container is None:
        raise NoActiveContextError(
            "No Core container is active here: run this inside a request, consumer or task, "
            "or inside `with use_container(app.container):`."
        )
    return container


def get_container() -> CoreContainer | None:
    """The active container, or None outside any."""
    return _container.get()


@contextmanager
def use_container(container: CoreContainer) -> Iterator[CoreContainer]:
    """Make `container` the ambient one for the code in the block."""
    token = _container.set(container)
    try:
        yield container
    finally:
        _container.reset(token)


def current_session() -> Any:
    """The unit of work (database session) of the current request, message or task.

    Raises:
        NoActiveContextError: outside one; pass the session explicitly with `.using(db)`.
    """
    session = _session.get()
    if session is None:
        raise NoActiveContextError(
            "No database session is active here: call `.using(db)` with a session, or run "
            "inside a request, consumer or task, which open one for you."
        )
    return session


@contextmanager
def use_session(session: Any) -> Iterator[Any]:
    """Make `session` the ambient unit of work for the code in the block."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)
