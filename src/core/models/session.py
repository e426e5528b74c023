"""Units of work: one database session per request, message or task, committed on success."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from core.context import (
    DeferredSession,
    current_container,
    current_session,
    reset_session,
    set_session,
    use_session,
)

if TYPE_CHECKING:
    from core.containers.core import CoreContainer

logger = logging.getLogger("core.models.session")

# Keyed weakly by session: a session dropped without commit or rollback takes its callbacks along.
_on_commit: WeakKeyDictionary[Any, list[Callable[[], None]]] = WeakKeyDictionary()


def on_commit(callback: Callable[[], None], session: Any = None) -> None:
    """Run `callback` once `session` (the ambient unit of work by default) has committed.

    Callbacks run in registration order after a successful `commit(session)`, and are dropped by
    `rollback(session)`; the framework's units of work (requests, consumer messages, tasks) use
    both. Like Django's `transaction.on_commit`, this is for effects that must not happen for
    rolled-back work, e.g. waking the outbox relay. A callback that raises is logged.

    Raises:
        NoActiveContextError: no session given and none is ambient.

    Example:
        >>> async with unit_of_work(app.container) as db:  # doctest: +SKIP
        ...     on_commit(lambda: print("committed"), db)
    """
    session = session if session is not None else current_session()
    _on_commit.setdefault(session, []).append(callback)


def _untouched(session: Any) -> bool:
    # A SQLAlchemy session that ran no statement and holds no pending object has nothing to
    # commit or release; skipping both saves ~60 us a unit of work (reads of nothing, tasks that
    # never touch the database). Other sessions (in-memory) are cheap to commit anyway.
    in_transaction = getattr(session, "in_transaction", None)
    if in_transaction is None or in_transaction():
        return False
    return not (session.new or session.dirty or session.deleted)


async def commit(session: Any) -> None:
    """Commit `session`, then run the callbacks registered with `on_commit`."""
    if not _untouched(session):
        await session.commit()
    for callback in _on_commit.pop(session, ()):
        try:
            callback()
        except Exception:
            # The data is committed whatever a callback does: report, never undo.
            logger.exception("on_commit callback %r failed", callback)


async def close(session: Any) -> None:
    """Release `session` (rolling back anything uncommitted)."""
    if not _untouched(session):
        await session.close()


async def rollback(session: Any) -> None:
    """Roll `session` back and forget its `on_commit` callbacks."""
    _on_commit.pop(session, None)
    await session.rollback()


@asynccontextmanager
async def unit_of_work(container: CoreContainer | None = None) -> AsyncIterator[Any]:
    """Open a session from the container's database, make it the ambient one, and commit on
    success or roll back on error.

    Example:
        >>> async with unit_of_work(app.container) as db:  # doctest: +SKIP
        ...     await Post.objects.create(title="Hi", db=db)
    """
    container = container if container is not None else current_container()
    session = container.database.database().session()
    try:
        with use_session(session):
            yield session
        await commit(session)
    except BaseException:
        await rollback(session)
        raise
    finally:
        await close(session)


@asynccontextmanager
async def deferred_unit_of_work(container: CoreContainer | None = None) -> AsyncIterator[None]:
    """`unit_of_work` whose session is opened only if the code in the block asks for it
    (`current_session()`, a QuerySet without `using`, `publish_event`...): a block that never
    touches the database costs no session. What was opened is committed on success and
    rolled back on error, as `unit_of_work` does.

    Example:
        >>> async with deferred_unit_of_work(app.container):  # doctest: +SKIP
        ...     await Post.objects.filter(draft=True).delete()
    """
    container = container if container is not None else current_container()
    deferred = DeferredSession(lambda: container.database.database().session())
    try:
        token = set_session(deferred)
        try:
            yield
        finally:
            reset_session(token)
        if deferred.session is not None:
            await commit(deferred.session)
    except BaseException:
        if deferred.session is not None:
            await rollback(deferred.session)
        raise
    finally:
        if deferred.session is not None:
            await close(deferred.session)
