"""`@periodic_task` and the Scheduler on a manual clock: ticks fire once, in the right zone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.app import CoreApp
from core.errors import ConfigurationError, TaskQueueUnavailableError
from core.tasks import (
    Cron,
    Interval,
    PeriodicTask,
    Scheduler,
    get_result,
    periodic_task,
    periodic_tasks,
)
from tests.cancellation import assert_stops_when_cancelled, lose_a_cancellation
from tests.unit.tasks.conftest import finished, make_app, settle


@asynccontextmanager
async def scheduling(*schedulers: Scheduler) -> AsyncIterator[None]:
    """The schedulers running for the block's duration."""
    running = [asyncio.create_task(s.run()) for s in schedulers]
    await settle()
    try:
        yield
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with pytest.raises(asyncio.CancelledError):
                await task


async def tick(clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)
    await settle()


async def test_an_interval_task_is_sent_on_every_tick(app: CoreApp, clock: ManualClock) -> None:
    runs: list[datetime] = []

    @periodic_task(interval=60)
    async def sync_data() -> None:
        runs.append(clock.now())

    start = clock.now()  # 2030-01-01 00:00 UTC, itself a tick: the first is a minute later
    async with scheduling(Scheduler(app.container, tasks=[sync_data], clock=clock)):
        await tick(clock, 59)
        assert runs == []
        for _ in range(3):
            await tick(clock, 60 if runs else 1)

    assert runs == [start + timedelta(minutes=n) for n in (1, 2, 3)]


async def test_two_schedulers_send_each_tick_once(app: CoreApp, clock: ManualClock) -> None:
    runs: list[datetime] = []

    @periodic_task(interval=5)
    async def heartbeat() -> None:
        runs.append(clock.now())

    first = Scheduler(app.container, tasks=[heartbeat], clock=clock)
    second = Scheduler(app.container, tasks=[heartbeat], clock=clock)
    async with scheduling(first, second):
        for _ in range(4):
            await tick(clock, 5)

    assert len(runs) == 4
    assert len(set(runs)) == 4


async def test_a_cron_task_fires_at_midnight_in_the_settings_timezone(clock: ManualClock) -> None:
    runs: list[datetime] = []

    @periodic_task(cron="0 0 * * *")
    async def daily_cleanup() -> None:
        runs.append(clock.now())

    application = make_app(clock, timezone="America/Sao_Paulo")
    async with application.lifespan():
        scheduler = Scheduler(application.container, tasks=[daily_cleanup], clock=clock)
        async with scheduling(scheduler):
            # The clock starts at 00:00 UTC, 21:00 the day before in Sao Paulo.
            await tick(clock, timedelta(hours=2, minutes=59).total_seconds())
            assert runs == []
            await tick(clock, 60)
            assert runs == [datetime(2030, 1, 1, 3, tzinfo=UTC)]
            await tick(clock, timedelta(hours=24).total_seconds())

    assert runs == [datetime(2030, 1, d, 3, tzinfo=UTC) for d in (1, 2)]


async def test_a_tick_noticed_too_late_is_skipped_not_sent_late(
    app: CoreApp, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[datetime] = []

    @periodic_task(interval=3600)
    async def hourly() -> None:
        runs.append(clock.now())

    scheduler = Scheduler(app.container, tasks=[hourly], clock=clock, misfire_grace=60)
    with caplog.at_level(logging.WARNING, logger="core.tasks.scheduler"):
        async with scheduling(scheduler):
            await tick(clock, 3600 + 120)  # woke two minutes after the tick: a paused process
            assert runs == []
            await tick(clock, 3600 - 120)
            assert runs == [datetime(2030, 1, 1, 2, tzinfo=UTC)]

    assert "Skipped" in caplog.text


async def test_fire_sends_a_tick_once_and_returns_its_task_id(
    app: CoreApp, clock: ManualClock
) -> None:
    @periodic_task(interval=10)
    async def ping() -> str:
        return "pong"

    scheduler = Scheduler(app.container, tasks=[ping], clock=clock)
    moment = datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)

    task_id = await scheduler.fire(ping, moment)
    again = await scheduler.fire(ping, moment)

    assert task_id is not None and again is None
    assert (await finished(task_id)).value == "pong"


async def test_a_scheduler_outlives_a_queue_it_cannot_reach(
    app: CoreApp, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    @periodic_task(interval=10)
    async def ping() -> None:
        return None

    class Unreachable(InMemoryTaskQueue):
        async def claim(self, key: str, *, ttl: float) -> bool:
            raise TaskQueueUnavailableError("Redis is down")

    with app.container.tasks.queue.override(Unreachable(clock=clock)):
        scheduler = Scheduler(app.container, tasks=[ping], clock=clock)
        with caplog.at_level(logging.ERROR, logger="core.tasks.scheduler"):
            assert await scheduler.fire(ping, clock.now()) is None
    assert "Could not send" in caplog.text


async def test_a_scheduler_stops_even_when_its_queue_loses_the_cancellation(
    app: CoreApp, clock: ManualClock
) -> None:
    # Python 3.11's asyncio.wait_for (which redis-py sends every command through) can return
    # normally when a cancel lands just as the send finishes (CPython #86296).
    claiming = asyncio.Event()

    @periodic_task(interval=10)
    async def ping() -> None:
        return None

    class LosesOneCancel(InMemoryTaskQueue):
        async def claim(self, key: str, *, ttl: float) -> bool:
            claimed = await super().claim(key, ttl=ttl)
            if not claiming.is_set():
                await lose_a_cancellation(claiming)
            return claimed

    with app.container.tasks.queue.override(LosesOneCancel(clock=clock)):
        running = asyncio.create_task(Scheduler(app.container, tasks=[ping], clock=clock).run())
        await settle()
        clock.advance(10)
        await asyncio.wait_for(claiming.wait(), 5)
        await assert_stops_when_cancelled(running, within=5)


async def test_upcoming_lists_each_task_next_run_soonest_first(
    app: CoreApp, clock: ManualClock
) -> None:
    @periodic_task(cron="0 0 * * *")
    async def nightly() -> None:
        return None

    @periodic_task(interval=300)
    async def often() -> None:
        return None

    runs = Scheduler(app.container, tasks=[nightly, often], clock=clock).upcoming()

    assert [(run.task, run.at) for run in runs] == [
        (often, datetime(2030, 1, 1, 0, 5, tzinfo=UTC)),
        (nightly, datetime(2030, 1, 2, tzinfo=UTC)),
    ]


async def test_a_scheduler_without_periodic_tasks_refuses_to_run(app: CoreApp) -> None:
    with pytest.raises(ConfigurationError, match="No periodic tasks"):
        await Scheduler(app.container, tasks=[]).run()


async def test_the_timezone_setting_must_name_a_real_zone(clock: ManualClock) -> None:
    application = make_app(clock, timezone="Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError, match="TIMEZONE='Mars/Olympus_Mons'"):
        Scheduler(application.container, tasks=[])


async def test_the_claim_must_outlive_the_misfire_grace(app: CoreApp) -> None:
    with pytest.raises(ValueError, match="claim_ttl"):
        Scheduler(app.container, tasks=[], misfire_grace=60, claim_ttl=30)


async def test_periodic_tasks_are_tasks_with_a_schedule(app: CoreApp) -> None:
    @periodic_task(cron="0 0 * * *", queue="maintenance", retry=2, timeout=60)
    async def daily_cleanup(db: Any = None) -> str:
        return "clean"

    @periodic_task(interval=300)
    async def sync_data() -> None:
        return None

    assert isinstance(daily_cleanup, PeriodicTask)
    assert daily_cleanup.schedule == Cron("0 0 * * *")
    assert sync_data.schedule == Interval(300)
    assert (daily_cleanup.queue, daily_cleanup.retry, daily_cleanup.timeout) == (
        "maintenance",
        2,
        60,
    )
    assert set(periodic_tasks()) >= {daily_cleanup, sync_data}
    assert await daily_cleanup() == "clean"
    assert (await finished(await daily_cleanup.delay())).value == "clean"
    assert (await get_result(await sync_data.delay())).task_id


def test_a_periodic_task_needs_exactly_one_schedule() -> None:
    with pytest.raises(ValueError, match="one of cron"):
        periodic_task()
    with pytest.raises(ValueError, match="one of cron"):
        periodic_task(cron="0 0 * * *", interval=60)
    with pytest.raises(ValueError, match="Invalid cron"):
        periodic_task(cron="every day")
    with pytest.raises(ValueError, match="interval"):
        periodic_task(interval=0)


def test_a_periodic_task_cannot_need_arguments() -> None:
    with declaration_count_unchanged(), pytest.raises(TypeError, match="no arguments on each"):

        @periodic_task(interval=60)
        async def needs_input(user_id: int) -> None:
            return None


@contextmanager
def declaration_count_unchanged() -> Iterator[None]:
    before = len(periodic_tasks())
    yield
    assert len(periodic_tasks()) == before


async def test_the_memory_queue_claims_a_key_once_until_it_expires(clock: ManualClock) -> None:
    queue = InMemoryTaskQueue(clock=clock)

    assert await queue.claim("tick", ttl=10) is True
    assert await queue.claim("tick", ttl=10) is False
    assert await queue.claim("other", ttl=10) is True
    clock.advance(10)
    assert await queue.claim("tick", ttl=10) is True
    assert await queue.claim("other", ttl=10) is True
