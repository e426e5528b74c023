"""Units of work: one database session per request, message or task, committed on success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from core.context import current_container, use_session

if TYPE_CHECKING:
    from core.containers.core import CoreContainer


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
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
