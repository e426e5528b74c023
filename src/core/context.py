"""Which container and unit of work code runs on: one rule, for every module-level helper.

`current_container()` answers, in this order:

1. the container of the current request, consumer message, task or `use_container` block;
2. else the container of the one CoreApp whose lifespan is running in this process (two or
   more running: `AmbiguousContainerError`, which points to `use_container`);
3. else the process default container: the one `core.setup()` built or, on first use, one
   built from the settings (environment, `.env`). `await core.shutdown()` closes it, and so
   does the end of the event loop that used it (`asyncio.run`), or else interpreter exit.

QuerySets, `Model.save`, `create_user`, the token helpers, `publish_event`, `Task.delay` and
task results all find their container here, and their session with `current_session()`.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from core.errors import AmbiguousContainerError, ConfigurationError, NoActiveContextError

if TYPE_CHECKING:
    from core.containers.core import CoreContainer
    from core.settings import Settings

__all__ = (
    "DeferredSession",
    "ambient_container",
    "ambient_session",
    "current_container",
    "current_session",
    "default_container",
    "has_default",
    "is_running",
    "reset_container",
    "reset_session",
    "running",
    "running_apps",
    "set_container",
    "set_session",
    "setup",
    "shutdown",
    "use_container",
    "use_session",
)

logger = logging.getLogger("core.context")

_container: ContextVar[CoreContainer | None] = ContextVar("core_container", default=None)
_session: ContextVar[Any | None] = ContextVar("core_session", default=None)


# -- 1. the ambient container ---------------------------------------------------------------
def current_container() -> CoreContainer:
    """The container code runs on: the ambient one, else the one running app's, else the
    process default (see the module docstring).

    Raises:
        AmbiguousContainerError: no ambient container and several apps are running.
        ConfigurationError: the process default cannot be built from the settings.
    """
    container = _container.get()
    if container is not None:
        return container
    return _running_or_default()


def ambient_container() -> CoreContainer | None:
    """The container of the current request, message, task or `use_container` block, or None.

    Unlike `current_container()` this never looks further: no running app, no default.
    """
    return _container.get()


@contextmanager
def use_container(container: CoreContainer) -> Iterator[CoreContainer]:
    """Make `container` the ambient one for the code in the block.

    Example:
        >>> with use_container(app.container):  # doctest: +SKIP
        ...     await send_email.delay("user@example.com", "Hi", "There")
    """
    token = _container.set(container)
    try:
        yield container
    finally:
        _container.reset(token)


def set_container(container: CoreContainer | None) -> Token[CoreContainer | None]:
    """Make `container` ambient until `reset_container(token)`: `use_container` without a
    context manager, for the framework's per-request and per-task paths."""
    return _container.set(container)


def reset_container(token: Token[CoreContainer | None]) -> None:
    """Undo the `set_container` call that returned `token`."""
    _container.reset(token)


# -- the unit of work -----------------------------------------------------------------------
class DeferredSession:
    """An ambient unit of work whose session is opened on first use.

    A task run without a `db` parameter makes one of these ambient instead of a session, so a
    run that never touches the database opens none; `current_session()` and
    `ambient_session()` open it (once) and give the session itself.

    Args:
        open_session: builds the session, called at most once.
    """

    __slots__ = ("_open", "session")

    def __init__(self, open_session: Callable[[], Any]) -> None:
        self._open = open_session
        self.session: Any | None = None

    def get(self) -> Any:
        """The session, opened now if it was not yet."""
        if self.session is None:
            self.session = self._open()
        return self.session


def current_session() -> Any:
    """The unit of work (database session) of the current request, message, task or shell.

    Raises:
        NoActiveContextError: outside one; pass the session explicitly with `.using(db)`.
    """
    session = _session.get()
    if type(session) is DeferredSession:
        return session.get()
    if session is None:
        raise NoActiveContextError(
            "No database session is active here: call `.using(db)` with a session, or run "
            "inside a request, consumer or task, which open one for you."
        )
    return session


def ambient_session() -> Any | None:
    """The ambient unit of work, or None outside one."""
    session = _session.get()
    if type(session) is DeferredSession:
        return session.get()
    return session


@contextmanager
def use_session(session: Any) -> Iterator[Any]:
    """Make `session` the ambient unit of work for the code in the block."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


def set_session(session: Any) -> Token[Any]:
    """Make `session` the ambient unit of work until `reset_session(token)`."""
    return _session.set(session)


def reset_session(token: Token[Any]) -> None:
    """Undo the `set_session` call that returned `token`."""
    _session.reset(token)


# -- 2. running apps ------------------------------------------------------------------------
# id(container) -> [name, container, how many lifespans of it are running]. Process-wide: an
# app served in another thread still runs in this process.
_running: dict[int, list[Any]] = {}
_running_lock = threading.Lock()


@contextmanager
def running(container: CoreContainer, name: str) -> Iterator[None]:
    """Count `container` as a running app's for the block (CoreApp's lifespan uses it)."""
    key = id(container)
    with _running_lock:
        entry = _running.setdefault(key, [name, container, 0])
        entry[2] += 1
    try:
        yield
    finally:
        with _running_lock:
            entry[2] -= 1
            if entry[2] <= 0:
                _running.pop(key, None)


def is_running(container: Any) -> bool:
    """Whether `container` belongs to an app whose lifespan is running in this process."""
    return id(container) in _running


def running_apps() -> list[str]:
    """The names of the apps whose lifespan is running in this process."""
    with _running_lock:
        return [entry[0] for entry in _running.values()]


def _running_or_default() -> CoreContainer:
    if _running:
        with _running_lock:
            entries = list(_running.values())
        if len(entries) == 1:
            container: CoreContainer = entries[0][1]
            return container
        if entries:
            names = ", ".join(repr(entry[0]) for entry in entries)
            raise AmbiguousContainerError(
                f"{len(entries)} Core apps are running in this process ({names}) and this code "
                "runs outside any of their requests: say which with "
                "`with use_container(app.container):`."
            )
    return default_container()


# -- 3. the process default -----------------------------------------------------------------
class _ProcessDefault:
    """The process default container and the event loop its clients were used on."""

    def __init__(self, container: CoreContainer) -> None:
        self.container = container
        self.loop: asyncio.AbstractEventLoop | None = None
        # Kept alive here: the loop only holds its async generators weakly.
        self.guard: Any = None

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is self.loop:
            return
        # Clients made on an earlier loop cannot be used on this one: start afresh. The
        # earlier loop's guard closed them when that loop shut down.
        if self.loop is not None:
            self.container.reset_singletons()
        self.loop = loop
        self.guard = _close_with_the_loop(self)
        # Start the guard now, synchronously, so the loop knows it: `asyncio.run` closes every
        # async generator started on its loop before closing the loop (`shutdown_asyncgens`),
        # which runs the guard's `finally` on the loop the clients belong to.
        step = self.guard.asend(None)
        with suppress(StopIteration):
            step.send(None)

    async def aclose(self) -> None:
        """Close what the container's clients hold open: the database engine's pool, the task
        queue's and the event broker's connections, the token store."""
        container: Any = self.container
        for provider, method in (
            (container.tasks.queue, "stop"),
            (container.messaging.broker, "stop"),
            (container.auth.token_store, "close"),
            (container.database.database, "dispose"),
        ):
            try:
                await getattr(provider(), method)()
            except Exception:  # an extra not installed, a server already gone: nothing to free
                logger.debug("ignored error closing the process default container", exc_info=True)
        container.reset_singletons()
        self.loop = None


async def _close_with_the_loop(default: _ProcessDefault) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    try:
        yield
    finally:
        if default.loop is loop:
            await default.aclose()


_default: _ProcessDefault | None = None
_default_lock = threading.Lock()
_atexit_registered = False


def setup(settings: Settings | None = None) -> CoreContainer:
    """Build the process default container, for scripts, shells and notebooks.

    Optional: the first helper that needs a container builds the same one from the settings
    (environment, then `.env`). Call it to pass settings, or to fail early on bad ones.

    Args:
        settings: what to build from; the environment and `.env` when None.

    Returns:
        The process default container (the same one on a second call without settings).

    Raises:
        ConfigurationError: a default container exists and other settings were given
            (`await core.shutdown()` first), or the settings must not run.

    Example:
        >>> import core
        >>> from core.settings import Settings
        >>> container = core.setup(Settings(_env_file=None, database_url="memory://"))
        >>> container.settings().database_url
        'memory://'
        >>> import asyncio; asyncio.run(core.shutdown())
    """
    global _default
    with _default_lock:
        if _default is not None:
            if settings is None:
                return _default.container
            raise ConfigurationError(
                "core.setup(settings) was called after the process default container was built:"
                " `await core.shutdown()` first, or call core.setup() before anything uses it."
            )
        _default = _build(settings)
        return _default.container


def default_container() -> CoreContainer:
    """The process default container, built from the settings on first use (rule 3)."""
    global _default
    default = _default
    if default is None:
        with _default_lock:
            if _default is None:
                _default = _build(None)
            default = _default
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        default.on_loop(loop)
    return default.container


def has_default() -> bool:
    """Whether the process default container has been built (and not shut down since)."""
    return _default is not None


async def shutdown() -> None:
    """Close the process default container, if one was built; the next use builds a new one.

    Example:
        >>> import asyncio, core
        >>> asyncio.run(core.shutdown())
    """
    global _default
    with _default_lock:
        default, _default = _default, None
    if default is None:
        return
    guard, default.guard = default.guard, None
    if guard is not None and default.loop is asyncio.get_running_loop():
        await guard.aclose()  # its `finally` closes the clients, on this loop
    else:
        await default.aclose()


def _build(settings: Settings | None) -> _ProcessDefault:
    global _atexit_registered
    # Imported here: `import core` builds nothing and imports no container.
    from core.containers.core import build_container

    default = _ProcessDefault(build_container(settings))
    if not _atexit_registered:
        atexit.register(_close_at_exit)
        _atexit_registered = True
    return default


def _close_at_exit() -> None:
    # A loop left open (a shell, a notebook, `loop.run_until_complete` without `close`) never
    # ran the guard: close the clients on it now, briefly. A closed loop already ran it, or
    # left nothing this process can still close.
    default = _default
    loop = default.loop if default is not None else None
    guard = default.guard if default is not None else None
    if guard is None or loop is None or loop.is_closed() or loop.is_running():
        return
    try:
        # Through the guard, so it is finished too and nothing is left for the loop to run.
        loop.run_until_complete(asyncio.wait_for(guard.aclose(), timeout=5))
    except Exception:
        logger.debug("ignored error closing the process default container at exit", exc_info=True)
