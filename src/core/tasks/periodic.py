"""`@periodic_task`: a task with a schedule, sent to the workers by `core scheduler`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.tasks.schedules import Cron, Interval, Schedule
from core.tasks.task import Task, TaskOptions

__all__ = ("PeriodicTask", "periodic_task")

R = TypeVar("R")


class PeriodicTask(Task[R]):
    """A task the scheduler sends on every tick of `schedule`; still awaitable and `delay`-able.

    Attributes:
        schedule: when it runs (`Cron` or `Interval`).

    Example:
        >>> from core.tasks import periodic_task
        >>> @periodic_task(interval=300)
        ... async def sync_data() -> None:
        ...     ...
        >>> sync_data.schedule.describe()
        'every 300s'
    """

    def __init__(
        self, function: Callable[..., Awaitable[R]], *, schedule: Schedule, **options: Any
    ) -> None:
        self.schedule = schedule
        super().__init__(function, **options)

    def _check_declaration(self) -> None:
        try:
            self.check_call((), {})
        except TypeError:
            raise TypeError(
                f"Periodic task {self.name!r} is called with no arguments on each tick: give "
                "its parameters defaults (only `db` and `container` are filled in)."
            ) from None


def periodic_task(
    *,
    cron: str | None = None,
    interval: float | None = None,
    name: str | None = None,
    queue: str | None = None,
    retry: int = 0,
    timeout: float | None = None,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 600.0,
    retry_jitter: bool = True,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Callable[[Callable[..., Awaitable[R]]], PeriodicTask[R]]:
    """Declare a task that `core scheduler` sends to the workers on a schedule.

    Give exactly one of `cron` (5 fields, read in `TIMEZONE`) or `interval` (seconds, ticks
    aligned to the Unix epoch). Each tick is sent once, however many schedulers run; ticks
    missed while no scheduler ran are not caught up. The other options are `@task`'s.

    Raises:
        ValueError: neither or both schedules, or an invalid cron expression.
        TypeError: the function needs arguments besides `db` and `container`.

    Example:
        >>> from core.tasks import periodic_task
        >>> @periodic_task(cron="0 0 * * *")  # midnight
        ... async def daily_cleanup() -> None:
        ...     ...
        >>> @periodic_task(interval=300)  # every 5 minutes
        ... async def sync_data() -> None:
        ...     ...
    """
    if (cron is None) == (interval is None):
        raise ValueError("@periodic_task needs one of cron='m h dom mon dow' or interval=seconds.")
    schedule: Schedule = Cron(cron) if cron is not None else Interval(interval or 0)
    options = TaskOptions(
        name=name,
        queue=queue,
        retry=retry,
        timeout=timeout,
        retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max,
        retry_jitter=retry_jitter,
        retry_on=retry_on,
    )

    def declare_periodic(function: Callable[..., Awaitable[R]]) -> PeriodicTask[R]:
        return PeriodicTask(function, schedule=schedule, options=options)

    return declare_periodic
