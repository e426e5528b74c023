"""InMemoryTaskQueue: the TaskQueue contract on a manual clock, plus what only it does."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.containers import build_container
from core.ports.tasks import TaskQueue, TaskStatus
from core.settings import Settings
from core.testing import TaskQueueContract, TaskQueueHarness


async def _spin(turns: int = 50) -> None:
    # Lets every ready callback run without reading a clock: the in-memory workers need only
    # a few loop turns to pick up and finish a task.
    for _ in range(turns):
        await asyncio.sleep(0)


@dataclass
class MemoryHarness(TaskQueueHarness):
    clock: ManualClock = field(default_factory=ManualClock)
    eta_seconds: float = 3600.0
    poll_interval: float = 0.0

    def now(self) -> datetime:
        return self.clock.now()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await _spin()

    async def settle(self) -> None:
        await _spin()


class TestInMemoryTaskQueueContract(TaskQueueContract):
    @pytest.fixture
    def harness(self) -> TaskQueueHarness:
        clock = ManualClock()
        return MemoryHarness(InMemoryTaskQueue(clock=clock, embedded_worker=False), clock=clock)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock()


async def _wait(queue: InMemoryTaskQueue, task_id: str) -> object:
    for _ in range(200):
        result = await queue.result(task_id)
        if result.ready:
            return result.value
        await asyncio.sleep(0)
    pytest.fail(f"task {task_id} did not finish")


async def test_start_runs_every_queue_in_process(clock: ManualClock) -> None:
    queue = InMemoryTaskQueue(clock=clock)
    seen: list[str] = []

    async def note(queue_name: str) -> None:
        seen.append(queue_name)

    queue.register("note", note, queue="emails")
    await queue.start()
    try:
        ids = [await queue.enqueue("note", (name,), queue=name) for name in ("emails", "reports")]
        for task_id in ids:
            await _wait(queue, task_id)
    finally:
        await queue.stop()

    assert sorted(seen) == ["emails", "reports"]


async def test_tasks_enqueued_before_start_run_once_started(clock: ManualClock) -> None:
    queue = InMemoryTaskQueue(clock=clock)

    async def double(n: int) -> int:
        return n * 2

    queue.register("double", double, queue="default")
    task_id = await queue.enqueue("double", (21,), queue="default")
    await _spin()
    assert (await queue.result(task_id)).status is TaskStatus.PENDING

    await queue.start()
    try:
        assert await _wait(queue, task_id) == 42
    finally:
        await queue.stop()


async def test_a_second_cancellation_hands_the_running_task_to_another_worker(
    clock: ManualClock,
) -> None:
    queue = InMemoryTaskQueue(clock=clock, embedded_worker=False)
    attempts: list[int] = []
    never = asyncio.Event()

    async def stubborn() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            await never.wait()
        return "done"

    queue.register("stubborn", stubborn, queue="default")
    first = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
    task_id = await queue.enqueue("stubborn", queue="default")
    await _spin()
    idle = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
    await _spin()
    assert attempts == [1]  # the idle worker found nothing to take

    first.cancel()
    await _spin()
    first.cancel()  # the hard stop: the running attempt is abandoned, not lost
    with pytest.raises(asyncio.CancelledError):
        await first
    try:
        assert await _wait(queue, task_id) == "done"
    finally:
        idle.cancel()
        with suppress(asyncio.CancelledError):
            await idle
    assert attempts == [1, 2]


async def test_only_the_newest_results_are_kept(clock: ManualClock) -> None:
    queue = InMemoryTaskQueue(clock=clock, max_results=2)

    async def same(n: int) -> int:
        return n

    queue.register("same", same, queue="default")
    await queue.start()
    try:
        ids = [await queue.enqueue("same", (n,), queue="default") for n in range(3)]
        await _wait(queue, ids[-1])
        await _spin()
        statuses = [(await queue.result(task_id)).status for task_id in ids]
    finally:
        await queue.stop()

    assert statuses == [TaskStatus.PENDING, TaskStatus.SUCCESS, TaskStatus.SUCCESS]


async def test_the_manual_clock_wakes_sleepers_only_when_advanced_past_them() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(10))
    await _spin(5)
    clock.advance(timedelta(seconds=9))
    await _spin(5)
    assert not sleeper.done()
    clock.advance(1)
    await _spin(5)
    assert sleeper.done()
    with pytest.raises(ValueError):
        clock.advance(-1)


@pytest.mark.parametrize("concurrency", [0, -1])
async def test_a_worker_needs_queues_and_positive_concurrency(concurrency: int) -> None:
    queue = InMemoryTaskQueue()
    with pytest.raises(ValueError):
        await queue.run_worker(["default"], concurrency=concurrency)
    with pytest.raises(ValueError):
        await queue.run_worker([], concurrency=1)


async def test_the_container_serves_the_in_memory_queue_by_default() -> None:
    container = build_container(Settings(task_broker="memory"))

    queue = container.tasks.queue()

    assert isinstance(queue, InMemoryTaskQueue)
    assert isinstance(queue, TaskQueue)
    assert container.tasks.queue() is queue


async def test_an_override_replaces_the_queue_the_container_serves() -> None:
    container = build_container(Settings(task_broker="memory"))
    fake = InMemoryTaskQueue(embedded_worker=False)

    with container.tasks.queue.override(fake):
        assert container.tasks.queue() is fake
