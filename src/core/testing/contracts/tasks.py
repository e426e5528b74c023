"""The TaskQueue contract: one suite every task-queue adapter must pass.

Subclass `TaskQueueContract` and provide a `harness` fixture yielding a `TaskQueueHarness`
around a fresh queue whose tasks run only in workers the tests start with `run_worker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.ports.tasks import (
    DeadLetters,
    TaskFunction,
    TaskQueue,
    TaskResult,
    TaskStatus,
    UnknownTaskError,
)


@dataclass
class TaskQueueHarness:
    """What the suite needs besides the queue: time control and patience, per engine.

    Subclasses override `now`, `advance` and `settle`; the defaults suit a real clock.
    """

    queue: TaskQueue
    eta_seconds: float = 1.0
    """How far ahead the eta tests schedule; short for real clocks."""
    timeout: float = 10.0
    """How long to wait for a result before failing, in real seconds."""
    poll_interval: float = 0.02
    calls: list[Any] = field(default_factory=list)

    def now(self) -> datetime:
        """The time on the clock etas are measured against."""
        raise NotImplementedError

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass on that clock."""
        await asyncio.sleep(seconds)

    async def settle(self) -> None:
        """Give the workers every chance to run whatever they would run now."""
        await asyncio.sleep(0.3)

    async def wait(self, task_id: str) -> TaskResult:
        """Poll `result` until the task finished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            result = await self.queue.result(task_id)
            if result.ready:
                return result
            if loop.time() > deadline:
                pytest.fail(f"task {task_id} did not finish within {self.timeout}s")
            await asyncio.sleep(self.poll_interval)

    @asynccontextmanager
    async def worker(self, queues: Sequence[str], *, concurrency: int = 4) -> AsyncIterator[None]:
        """A worker on `queues` for the block's duration, stopped gracefully after it."""
        running = asyncio.create_task(self.queue.run_worker(queues, concurrency=concurrency))
        try:
            yield
        finally:
            running.cancel()
            with suppress(asyncio.CancelledError):
                await running


class TaskQueueContract:
    """Behaviour every TaskQueue adapter shares; see the port's docstring."""

    @pytest.fixture
    def harness(self) -> TaskQueueHarness:
        raise NotImplementedError("provide a `harness` fixture in the adapter's test module")

    @pytest.fixture
    async def tasks(self, harness: TaskQueueHarness) -> AsyncIterator[TaskQueueHarness]:
        """The harness with the suite's tasks registered and the queue started."""
        queue = harness.queue

        async def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
            harness.calls.append(("echo", args, kwargs))
            return {"args": args, "kwargs": kwargs}

        async def fail(message: str) -> None:
            raise ValueError(message)

        async def stamp(label: str) -> str:
            harness.calls.append(("stamp", label, harness.now()))
            return label

        async def unencodable() -> object:
            return object()

        functions: dict[str, TaskFunction] = {
            "echo": echo,
            "fail": fail,
            "stamp": stamp,
            "unencodable": unencodable,
        }
        for name, function in functions.items():
            queue.register(name, function, queue="contract-a")
        await queue.start()
        try:
            yield harness
        finally:
            await queue.stop()

    async def test_check_answers_when_the_engine_is_up(self, tasks: TaskQueueHarness) -> None:
        await tasks.queue.check()  # returns: the backend answered

    async def test_an_enqueued_task_runs_with_its_args_and_kwargs(
        self, tasks: TaskQueueHarness
    ) -> None:
        async with tasks.worker(["contract-a"]):
            task_id = await tasks.queue.enqueue(
                "echo", (1, "two", [3]), {"four": {"five": None}}, queue="contract-a"
            )
            result = await tasks.wait(task_id)

        assert isinstance(task_id, str) and task_id
        assert result == TaskResult(
            task_id,
            TaskStatus.SUCCESS,
            {"args": [1, "two", [3]], "kwargs": {"four": {"five": None}}},
        )
        assert tasks.calls == [("echo", (1, "two", [3]), {"four": {"five": None}})]

    async def test_every_enqueue_gets_its_own_id_and_result(self, tasks: TaskQueueHarness) -> None:
        async with tasks.worker(["contract-a"]):
            ids = [await tasks.queue.enqueue("echo", (n,), queue="contract-a") for n in range(3)]
            results = [await tasks.wait(task_id) for task_id in ids]

        assert len(set(ids)) == 3
        assert [result.value["args"] for result in results] == [[0], [1], [2]]

    async def test_a_failing_task_reports_its_error(self, tasks: TaskQueueHarness) -> None:
        async with tasks.worker(["contract-a"]):
            task_id = await tasks.queue.enqueue("fail", ("boom",), queue="contract-a")
            result = await tasks.wait(task_id)

        assert result.status is TaskStatus.FAILURE
        assert result.error == "ValueError: boom"
        assert result.value is None

    async def test_a_failing_task_lands_in_the_dead_letter_list(
        self, tasks: TaskQueueHarness
    ) -> None:
        queue: Any = tasks.queue
        if not isinstance(tasks.queue, DeadLetters):
            pytest.skip("this queue keeps no dead letters (the DeadLetters port is optional)")
        async with tasks.worker(["contract-a"]):
            task_id = await queue.enqueue("fail", (), {"message": "boom"}, queue="contract-a")
            await tasks.wait(task_id)
            ok_id = await queue.enqueue("echo", (1,), queue="contract-a")
            await tasks.wait(ok_id)

        letters = await queue.failed_tasks()
        assert [(f.task_id, f.name, f.queue, f.error) for f in letters] == [
            (task_id, "fail", "contract-a", "ValueError: boom")
        ]
        [letter] = letters
        assert (letter.reason, letter.args, dict(letter.kwargs)) == (
            "failed",
            (),
            {"message": "boom"},
        )
        assert await queue.failed_task(task_id) == letter
        assert await queue.failed_task(letter.id) == letter
        assert await queue.forget_failed(letter.id) is True
        assert await queue.failed_tasks() == []
        assert await queue.failed_task(task_id) is None

    async def test_a_return_value_json_cannot_carry_fails_the_task(
        self, tasks: TaskQueueHarness
    ) -> None:
        async with tasks.worker(["contract-a"]):
            result = await tasks.wait(await tasks.queue.enqueue("unencodable", queue="contract-a"))

        assert result.status is TaskStatus.FAILURE
        assert result.error is not None and result.error.startswith("TypeError:")

    async def test_a_result_is_pending_until_a_worker_ran_the_task(
        self, tasks: TaskQueueHarness
    ) -> None:
        task_id = await tasks.queue.enqueue("echo", queue="contract-a")

        assert await tasks.queue.result(task_id) == TaskResult(task_id, TaskStatus.PENDING)
        assert (await tasks.queue.result("no-such-task")).status is TaskStatus.PENDING
        async with tasks.worker(["contract-a"]):
            assert (await tasks.wait(task_id)).status is TaskStatus.SUCCESS

    async def test_arguments_json_cannot_carry_are_refused_at_enqueue(
        self, tasks: TaskQueueHarness
    ) -> None:
        refused: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
            ((object(),), {}, "positional argument 0"),
            (("ok", {1, 2}), {}, "positional argument 1"),
            ((), {"when": datetime(2030, 1, 1)}, "keyword argument 'when'"),
            ((), {"ratio": float("nan")}, "keyword argument 'ratio'"),
        ]
        for args, kwargs, named in refused:
            with pytest.raises(TypeError, match=named):
                await tasks.queue.enqueue("echo", args, kwargs, queue="contract-a")

        async with tasks.worker(["contract-a"]):
            await tasks.settle()
        assert tasks.calls == []

    async def test_an_unregistered_task_name_is_refused_at_enqueue(
        self, tasks: TaskQueueHarness
    ) -> None:
        with pytest.raises(UnknownTaskError, match="'no_such_task'"):
            await tasks.queue.enqueue("no_such_task", queue="contract-a")
        with pytest.raises(LookupError):
            await tasks.queue.enqueue("ech0", queue="contract-a")

    async def test_a_task_does_not_run_before_its_eta(self, tasks: TaskQueueHarness) -> None:
        eta = tasks.now() + timedelta(seconds=tasks.eta_seconds)

        async with tasks.worker(["contract-a"]):
            task_id = await tasks.queue.enqueue("stamp", ("later",), queue="contract-a", eta=eta)
            await tasks.settle()
            early = await tasks.queue.result(task_id)
            await tasks.advance(tasks.eta_seconds)
            result = await tasks.wait(task_id)

        assert early.status is TaskStatus.PENDING
        assert result.status is TaskStatus.SUCCESS
        [(_, _, ran_at)] = tasks.calls
        assert ran_at >= eta

    async def test_an_eta_in_the_past_runs_at_once(self, tasks: TaskQueueHarness) -> None:
        async with tasks.worker(["contract-a"]):
            task_id = await tasks.queue.enqueue(
                "stamp", ("now",), queue="contract-a", eta=tasks.now() - timedelta(hours=1)
            )
            assert (await tasks.wait(task_id)).value == "now"

    async def test_due_tasks_run_before_later_ones(self, tasks: TaskQueueHarness) -> None:
        later = tasks.now() + timedelta(seconds=tasks.eta_seconds)
        async with tasks.worker(["contract-a"], concurrency=1):
            late_id = await tasks.queue.enqueue("stamp", ("late",), queue="contract-a", eta=later)
            soon_id = await tasks.queue.enqueue("stamp", ("soon",), queue="contract-a")
            await tasks.wait(soon_id)
            await tasks.advance(tasks.eta_seconds)
            await tasks.wait(late_id)

        assert [label for _, label, _ in tasks.calls] == ["soon", "late"]

    async def test_a_naive_eta_is_refused(self, tasks: TaskQueueHarness) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            await tasks.queue.enqueue("echo", queue="contract-a", eta=datetime(2030, 1, 1))

    async def test_a_worker_runs_only_the_queues_it_was_given(
        self, tasks: TaskQueueHarness
    ) -> None:
        other_id = await tasks.queue.enqueue("stamp", ("b",), queue="contract-b")
        async with tasks.worker(["contract-a"]):
            own_id = await tasks.queue.enqueue("stamp", ("a",), queue="contract-a")
            assert (await tasks.wait(own_id)).status is TaskStatus.SUCCESS
            await tasks.settle()
            assert (await tasks.queue.result(other_id)).status is TaskStatus.PENDING

        # Left for its own queue's worker, not lost.
        async with tasks.worker(["contract-b"]):
            assert (await tasks.wait(other_id)).value == "b"
        assert [label for _, label, _ in tasks.calls] == ["a", "b"]

    async def test_one_worker_serves_several_queues(self, tasks: TaskQueueHarness) -> None:
        async with tasks.worker(["contract-a", "contract-b"]):
            first = await tasks.queue.enqueue("echo", ("a",), queue="contract-a")
            second = await tasks.queue.enqueue("echo", ("b",), queue="contract-b")
            assert (await tasks.wait(first)).status is TaskStatus.SUCCESS
            assert (await tasks.wait(second)).status is TaskStatus.SUCCESS

    async def test_concurrency_bounds_the_tasks_running_at_once(
        self, harness: TaskQueueHarness
    ) -> None:
        started: list[int] = []
        release = asyncio.Event()

        async def block(n: int) -> int:
            started.append(n)
            await release.wait()
            return n

        harness.queue.register("block", block, queue="contract-a")
        await harness.queue.start()
        try:
            async with harness.worker(["contract-a"], concurrency=2):
                ids = [
                    await harness.queue.enqueue("block", (n,), queue="contract-a") for n in range(3)
                ]
                await harness.settle()
                running_at_once = len(started)
                release.set()
                values = [(await harness.wait(task_id)).value for task_id in ids]
        finally:
            await harness.queue.stop()

        assert running_at_once == 2
        assert sorted(values) == [0, 1, 2]

    async def test_stopping_a_worker_lets_running_tasks_finish(
        self, harness: TaskQueueHarness
    ) -> None:
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow() -> str:
            started.set()
            await release.wait()
            return "finished"

        harness.queue.register("slow", slow, queue="contract-a")
        await harness.queue.start()
        try:
            worker = asyncio.create_task(harness.queue.run_worker(["contract-a"], concurrency=1))
            task_id = await harness.queue.enqueue("slow", queue="contract-a")
            await asyncio.wait_for(started.wait(), harness.timeout)

            worker.cancel()
            await harness.settle()
            assert not worker.done()  # still waiting for the running task
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await worker

            assert await harness.queue.result(task_id) == TaskResult(
                task_id, TaskStatus.SUCCESS, "finished"
            )
        finally:
            await harness.queue.stop()
