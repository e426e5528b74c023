"""Background and periodic tasks: `@task`, `@periodic_task`, and reading their results.

Example:
    >>> from core.tasks import periodic_task, task
    >>> @task(queue="emails", retry=3, timeout=300)
    ... async def send_email(to: str, subject: str, body: str) -> None:
    ...     ...
    >>> @periodic_task(interval=300)
    ... async def sync_data() -> None:
    ...     ...
"""

from core.ports.tasks import TaskResult, TaskStatus
from core.tasks.periodic import PeriodicTask, periodic_task
from core.tasks.registry import declared_tasks, periodic_tasks
from core.tasks.results import get_result, get_status, wait_for_result
from core.tasks.scheduler import Scheduler
from core.tasks.schedules import Cron, Interval, Schedule
from core.tasks.task import Task, TaskOptions, TaskTimeoutError, task

__all__ = (
    "Cron",
    "Interval",
    "PeriodicTask",
    "Schedule",
    "Scheduler",
    "Task",
    "TaskOptions",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "declared_tasks",
    "get_result",
    "get_status",
    "periodic_task",
    "periodic_tasks",
    "task",
    "wait_for_result",
)
