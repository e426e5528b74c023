"""Declared tasks, like Celery's registry: `@task` records, containers bind.

Declaring records a name and a function in the process's `Declarations` (`core.declarations`),
nothing else; each container's task queue gets every task of the `Declarations` it was given
when it starts (see `core.tasks.binding`), so two apps in one process share the declarations and
nothing mutable.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.declarations import Declarations, declarations

if TYPE_CHECKING:
    from core.tasks.periodic import PeriodicTask
    from core.tasks.task import Task

__all__ = ("declare", "declared_task", "declared_tasks", "periodic_tasks")

logger = logging.getLogger("core.tasks")


def declare(task: Task[Any], declared: Declarations | None = None) -> None:
    """Record `task` under its name; a later declaration of the same name replaces it.

    Replacing (rather than refusing) keeps `importlib.reload` and tests that declare a task
    again working; a different function taking a name already used is logged, since two
    functions under one name would run whichever was declared last, in every process.
    """
    tasks = (declared or declarations()).tasks
    previous = tasks.get(task.name)
    if previous is not None and _origin(previous.function) != _origin(task.function):
        logger.warning(
            "Task name %r was declared by %s and is now declared by %s; the latter wins. "
            "Pass @task(name=...) to keep both.",
            task.name,
            _origin(previous.function),
            _origin(task.function),
        )
    tasks[task.name] = task


def declared_task(name: str, declared: Declarations | None = None) -> Task[Any] | None:
    """The task declared under `name`, or None."""
    return (declared or declarations()).tasks.get(name)


def declared_tasks(declared: Declarations | None = None) -> tuple[Task[Any], ...]:
    """Every declared task, periodic ones included, in declaration order.

    Example:
        >>> from core.tasks import declared_tasks
        >>> [t.name for t in declared_tasks()]  # doctest: +SKIP
        ['src.main.send_email', 'src.main.daily_cleanup']
    """
    return tuple((declared or declarations()).tasks.values())


def periodic_tasks(declared: Declarations | None = None) -> tuple[PeriodicTask[Any], ...]:
    """The declared tasks that have a schedule (`@periodic_task`), in declaration order.

    Example:
        >>> from core.tasks import periodic_tasks
        >>> [(t.name, t.schedule.describe()) for t in periodic_tasks()]  # doctest: +SKIP
        [('src.main.daily_cleanup', 'cron 0 0 * * *'), ('src.main.sync_data', 'every 300s')]
    """
    return (declared or declarations()).periodic_tasks()


def _origin(function: Any) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
