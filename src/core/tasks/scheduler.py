"""The scheduler `core scheduler` runs: sends each periodic task once per tick.

Several schedulers may run at once (for availability); each tick still fires once. Every
scheduler computes the same ticks (see `core.tasks.schedules`) and, when one comes, claims
the key `schedule:<task name>:<tick in ms>` on the task queue (`SET NX PX` in Redis); only
the claimant sends the task. No leader is elected: there is no lease to renew and no gap when
a scheduler dies, since the next tick is claimed by whichever is alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.cancellation import raise_if_cancelled
from core.context import use_container
from core.errors import ConfigurationError
from core.ports.tasks import TaskQueue
from core.tasks.periodic import PeriodicTask
from core.tasks.registry import periodic_tasks

__all__ = ("Clock", "Scheduler", "ScheduledRun", "settings_timezone")

logger = logging.getLogger("core.tasks.scheduler")

# A wall clock can jump (NTP, a suspended VM): never sleep longer than this without looking
# at it again.
MAX_SLEEP = 30.0


class Clock(Protocol):
    """Where the scheduler reads the time and waits; tests pass a manual clock."""

    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScheduledRun:
    """One periodic task and its next tick, as `Scheduler.upcoming` reports them."""

    __slots__ = ("at", "task")

    def __init__(self, task: PeriodicTask[Any], at: datetime) -> None:
        self.task = task
        self.at = at

    def __repr__(self) -> str:
        return f"ScheduledRun({self.task.name!r}, {self.at.isoformat()})"


def settings_timezone(name: str) -> ZoneInfo:
    """The `TIMEZONE` setting as a ZoneInfo.

    Raises:
        ConfigurationError: no such IANA timezone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"TIMEZONE={name!r} is not an IANA timezone name such as 'UTC' or 'America/Sao_Paulo'."
        ) from None


class Scheduler:
    """Sends periodic tasks to the app's task queue on their schedules, once per tick.

    Args:
        container: the app's container: its queue receives the runs and claims the ticks,
            its `TIMEZONE` setting is where cron schedules are read.
        tasks: the periodic tasks to schedule; every declared one by default.
        clock: the time source; `ManualClock` in tests.
        misfire_grace: a tick noticed later than this many seconds (the process was paused,
            the event loop blocked) is skipped rather than sent late.
        claim_ttl: how long a tick's claim lives, in seconds. It must exceed `misfire_grace`
            plus the largest clock difference between scheduler machines: past it, a
            scheduler that is that late could claim the same tick again.

    Example:
        >>> scheduler = Scheduler(app.container)  # doctest: +SKIP
        >>> async with app.lifespan():  # doctest: +SKIP
        ...     await scheduler.run()  # until cancelled
    """

    def __init__(
        self,
        container: Any,
        *,
        tasks: Iterable[PeriodicTask[Any]] | None = None,
        clock: Clock | None = None,
        misfire_grace: float = 60.0,
        claim_ttl: float = 600.0,
    ) -> None:
        if claim_ttl <= misfire_grace:
            raise ValueError("claim_ttl must exceed misfire_grace, or a late tick fires twice.")
        self.container = container
        self.tasks = tuple(tasks) if tasks is not None else periodic_tasks(container.declarations())
        self.clock: Clock = clock if clock is not None else _WallClock()
        self.misfire_grace = timedelta(seconds=misfire_grace)
        self.claim_ttl = claim_ttl
        self.timezone: tzinfo = settings_timezone(container.settings().timezone)

    def upcoming(self, after: datetime | None = None) -> list[ScheduledRun]:
        """Each task's next tick after `after` (now by default), soonest first."""
        moment = after if after is not None else self.clock.now()
        runs = [ScheduledRun(t, t.schedule.next_after(moment, self.timezone)) for t in self.tasks]
        return sorted(runs, key=lambda run: run.at)

    async def run(self) -> None:
        """Send every tick's runs until cancelled. Ticks before the call are not caught up."""
        if not self.tasks:
            raise ConfigurationError("No periodic tasks are declared: nothing to schedule.")
        with use_container(self.container):
            runs = self.upcoming()
            while True:
                raise_if_cancelled()
                now = self.clock.now()
                due = [run for run in runs if run.at <= now]
                if not due:
                    wait = (min(run.at for run in runs) - now).total_seconds()
                    await self.clock.sleep(min(wait, MAX_SLEEP))
                    continue
                for run in due:
                    if now - run.at <= self.misfire_grace:
                        await self.fire(run.task, run.at)
                    else:
                        logger.warning(
                            "Skipped %s's tick of %s: noticed %.0fs late",
                            run.task.name,
                            run.at.isoformat(),
                            (now - run.at).total_seconds(),
                        )
                    run.at = run.task.schedule.next_after(now, self.timezone)

    async def fire(self, task: PeriodicTask[Any], tick: datetime) -> str | None:
        """Send `task`'s run for `tick` unless another scheduler did; return its task id.

        Returns:
            The task id, or None when another scheduler claimed the tick or the queue could
            not be reached (logged; the scheduler carries on with the next tick).
        """
        queue: TaskQueue = self.container.tasks.queue()
        key = f"schedule:{task.name}:{round(tick.timestamp() * 1000)}"
        try:
            if not await queue.claim(key, ttl=self.claim_ttl):
                return None
            with use_container(self.container):
                task_id = await task.apply_async()
        except Exception:
            # A scheduler outlives a broken tick (Redis restarting, a task declared wrongly):
            # the next tick is tried afresh.
            logger.exception("Could not send %s for its tick of %s", task.name, tick.isoformat())
            return None
        logger.info("Sent %s for its tick of %s as %s", task.name, tick.isoformat(), task_id)
        return task_id
