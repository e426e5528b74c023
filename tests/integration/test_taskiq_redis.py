"""TaskiqTaskQueue on a real Redis: the TaskQueue contract, redelivery, and the container branch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from core.adapters.taskiq.queue import TaskiqTaskQueue
from core.containers import build_container
from core.ports.tasks import TaskResult, TaskStatus
from core.settings import Settings
from core.testing import TaskQueueContract, TaskQueueHarness
from tests import services
from tests.cancellation import assert_stops_when_cancelled, lose_a_cancellation

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RedisHarness(TaskQueueHarness):
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    async with services.redis_prefix(redis_url) as prefix:
        yield prefix


def _queue(redis_url: str, prefix: str, *, redelivery_timeout: float = 600.0) -> TaskiqTaskQueue:
    return TaskiqTaskQueue(
        redis_url,
        key_prefix=prefix,
        redelivery_timeout=redelivery_timeout,
        delayed_poll_interval=0.1,  # short etas in these tests; production polls each second
    )


class TestTaskiqTaskQueueContract(TaskQueueContract):
    @pytest.fixture
    def harness(self, redis_url: str, prefix: str) -> TaskQueueHarness:
        return RedisHarness(_queue(redis_url, prefix), eta_seconds=1.0)


async def _wait(queue: TaskiqTaskQueue, task_id: str) -> TaskResult:
    for _ in range(500):  # 10s
        result = await queue.result(task_id)
        if result.ready:
            return result
        await asyncio.sleep(0.02)
    pytest.fail(f"task {task_id} did not finish")


async def test_acknowledged_tasks_leave_nothing_in_the_stream(redis_url: str, prefix: str) -> None:
    queue = _queue(redis_url, prefix)

    async def noop() -> None:
        return None

    queue.register("noop", noop, queue="default")
    await queue.start()
    worker = asyncio.create_task(queue.run_worker(["default"], concurrency=2))
    try:
        ids = [await queue.enqueue("noop", queue="default") for _ in range(5)]
        for task_id in ids:
            await _wait(queue, task_id)
    finally:
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
        await queue.stop()

    async with Redis.from_url(redis_url) as redis:
        assert await redis.xlen(f"{prefix}:stream:default") == 0


@pytest.mark.parametrize(("result_ttl", "expected_ms"), [(60, (50_000, 60_000)), (None, (-1, -1))])
async def test_results_keep_their_ttl_when_stored_with_the_acknowledgement(
    redis_url: str, prefix: str, result_ttl: int | None, expected_ms: tuple[int, int]
) -> None:
    # The worker stores a result and acknowledges its message in one script.
    queue = TaskiqTaskQueue(redis_url, key_prefix=prefix, result_ttl=result_ttl)

    async def same(n: int) -> int:
        return n

    queue.register("same", same, queue="default")
    await queue.start()
    worker = asyncio.create_task(queue.run_worker(["default"], concurrency=2))
    try:
        task_id = await queue.enqueue("same", (7,), queue="default")
        assert (await _wait(queue, task_id)).value == 7
    finally:
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
        await queue.stop()

    async with Redis.from_url(redis_url) as redis:
        low, high = expected_ms
        assert low <= await redis.pttl(f"{prefix}:result:{task_id}") <= high
        assert await redis.xlen(f"{prefix}:stream:default") == 0


async def test_busy_workers_hold_no_more_entries_than_their_slots(
    redis_url: str, prefix: str
) -> None:
    # A finished run reads the next entry for its slot; a busy worker must still never
    # hold entries another worker could run.
    queue = _queue(redis_url, prefix)
    ran: list[int] = []

    async def slow(n: int) -> int:
        await asyncio.sleep(0.02)
        ran.append(n)
        return n

    worker_queues = [_queue(redis_url, prefix) for _ in range(2)]  # two worker processes
    for each in (queue, *worker_queues):
        each.register("slow", slow, queue="default")
    await queue.start()
    workers = [
        asyncio.create_task(each.run_worker(["default"], concurrency=2)) for each in worker_queues
    ]
    held: list[int] = []
    try:
        ids = [await queue.enqueue("slow", (n,), queue="default") for n in range(40)]
        async with Redis.from_url(redis_url) as redis:
            while len(ran) < 40:
                consumers = await redis.xinfo_consumers(f"{prefix}:stream:default", "core-workers")
                held.extend(int(consumer["pending"]) for consumer in consumers)
                await asyncio.sleep(0.005)
        values = [(await _wait(queue, task_id)).value for task_id in ids]
    finally:
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with suppress(asyncio.CancelledError):
                await worker
        await queue.stop()

    assert values == list(range(40))
    assert max(held) <= 2


async def test_a_busy_worker_reads_its_other_queues_too(redis_url: str, prefix: str) -> None:
    queue = _queue(redis_url, prefix)
    order: list[str] = []

    async def step(name: str) -> None:
        await asyncio.sleep(0.01)
        order.append(name)

    queue.register("step", step, queue="a")
    await queue.start()
    worker = asyncio.create_task(queue.run_worker(["a", "b"], concurrency=1))
    try:
        backlog = [await queue.enqueue("step", ("a",), queue="a") for _ in range(30)]
        await _wait(queue, backlog[0])
        other = await queue.enqueue("step", ("b",), queue="b")
        for task_id in [*backlog, other]:
            await _wait(queue, task_id)
    finally:
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
        await queue.stop()

    assert order.index("b") < len(order) - 5, "queue b waited for queue a's whole backlog"


async def test_a_worker_outlives_its_stream_being_deleted(redis_url: str, prefix: str) -> None:
    queue = _queue(redis_url, prefix)

    async def same(n: int) -> int:
        return n

    queue.register("same", same, queue="default")
    await queue.start()
    worker = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
    try:
        assert (await _wait(queue, await queue.enqueue("same", (1,), queue="default"))).value == 1
        async with Redis.from_url(redis_url) as redis:
            await redis.delete(f"{prefix}:stream:default")  # as a FLUSHDB would
        assert (await _wait(queue, await queue.enqueue("same", (2,), queue="default"))).value == 2
        assert not worker.done()
    finally:
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
        await queue.stop()


async def test_a_worker_without_the_task_fails_it_visibly(redis_url: str, prefix: str) -> None:
    producer = _queue(redis_url, prefix)
    worker_side = _queue(redis_url, prefix)  # another process's queue, lacking the task

    async def only_in_producer() -> None:
        return None

    producer.register("only_in_producer", only_in_producer, queue="default")
    await producer.start()
    worker = asyncio.create_task(worker_side.run_worker(["default"], concurrency=1))
    try:
        result = await _wait(producer, await producer.enqueue("only_in_producer", queue="default"))
    finally:
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
        await producer.stop()

    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.startswith("UnknownTaskError:")


async def test_a_task_abandoned_by_a_hard_stop_runs_again(redis_url: str, prefix: str) -> None:
    queue = _queue(redis_url, prefix)
    attempts: list[int] = []
    started = asyncio.Event()

    async def stubborn() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            started.set()
            await asyncio.Event().wait()
        return "done"

    queue.register("stubborn", stubborn, queue="default")
    await queue.start()
    try:
        first = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
        task_id = await queue.enqueue("stubborn", queue="default")
        await asyncio.wait_for(started.wait(), 10)
        first.cancel()
        await asyncio.sleep(0.1)
        first.cancel()  # the hard stop: no acknowledgement, no result stored
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await queue.result(task_id)).status is TaskStatus.PENDING

        second = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
        try:
            result = await _wait(queue, task_id)
        finally:
            second.cancel()
            with suppress(asyncio.CancelledError):
                await second
    finally:
        await queue.stop()

    assert result.value == "done"
    assert attempts == [1, 2]


def _lose_a_cancellation_in(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> asyncio.Event:
    """Make the next call of `owner.name` lose the cancellation that lands in it, as redis-py's
    calls can on Python 3.11; returns an event set once that call waits for one."""
    original = getattr(owner, name)
    waiting = asyncio.Event()

    async def losing(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        if not waiting.is_set():
            await lose_a_cancellation(waiting)
        return result

    monkeypatch.setattr(owner, name, losing)
    return waiting


@pytest.mark.parametrize(
    ("owner", "name"),
    [(AsyncScript, "__call__"), (Redis, "xreadgroup")],
    ids=["delayed-task-mover", "stream-reader"],
)
async def test_a_worker_stops_even_when_redis_py_loses_its_cancellation(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> None:
    queue = _queue(redis_url, prefix, redelivery_timeout=0.2)
    waiting = _lose_a_cancellation_in(monkeypatch, owner, name)
    await queue.start()
    worker = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
    try:
        await asyncio.wait_for(waiting.wait(), 10)
        await assert_stops_when_cancelled(worker, within=10)
    finally:
        if not worker.done():
            worker.cancel()
        await queue.stop()


WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from core.adapters.taskiq.queue import TaskiqTaskQueue

    async def main(url, prefix):
        queue = TaskiqTaskQueue(url, key_prefix=prefix, redelivery_timeout=1.0)

        async def slow():
            print("started", flush=True)
            await asyncio.sleep(60)

        queue.register("slow", slow, queue="default")
        await queue.run_worker(["default"], concurrency=1)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_a_task_whose_worker_process_was_killed_runs_again(
    redis_url: str, prefix: str
) -> None:
    queue = _queue(redis_url, prefix, redelivery_timeout=1.0)

    async def slow() -> str:
        return "rescued"

    queue.register("slow", slow, queue="default")
    await queue.start()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_SCRIPT,
        redis_url,
        prefix,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        task_id = await queue.enqueue("slow", queue="default")
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.strip() == b"started"
        process.send_signal(signal.SIGKILL)  # no graceful stop, no acknowledgement
        await process.wait()

        worker = asyncio.create_task(queue.run_worker(["default"], concurrency=1))
        try:
            result = await _wait(queue, task_id)
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await queue.stop()

    assert result.value == "rescued"


async def test_the_container_serves_taskiq_when_task_broker_is_redis(redis_url: str) -> None:
    container = build_container(Settings(task_broker="redis", redis_url=redis_url))

    queue = container.tasks.queue()

    assert isinstance(queue, TaskiqTaskQueue)
    await queue.start()
    await queue.stop()
