"""InMemoryTaskQueue: a real in-process task queue, the embedded default and the tests' fake."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from core.ports.tasks import (
    FailedTask,
    TaskFunction,
    TaskResult,
    TaskStatus,
    UnknownTaskError,
    check_json_arguments,
    check_json_result,
    describe_error,
    resolve_eta,
    running_task_id,
)

logger = logging.getLogger("core.tasks.memory")


class Clock(Protocol):
    """Where the in-memory queue reads the time and waits for an eta; swap it in tests."""

    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class SystemClock:
    """The real clock: UTC wall time and `asyncio.sleep`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to, so tests check etas without waiting.

    Example:
        >>> clock = ManualClock()
        >>> queue = InMemoryTaskQueue(clock=clock)
        >>> # enqueue(..., eta=clock.now() + timedelta(minutes=5)) stays pending until:
        >>> clock.advance(300)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else datetime(2030, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake_at = self._now + timedelta(seconds=seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (wake_at, next(self._order), future))
        # A cancelled sleeper stays in the heap until its time passes; advance() skips it.
        await future

    def advance(self, seconds: float | timedelta) -> None:
        """Move the time forward and wake every sleeper whose time has come."""
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError("ManualClock only moves forward.")
        self._now += delta
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


@dataclass(order=True)
class _Job:
    due: datetime
    order: int
    task_id: str = field(compare=False)
    queue: str = field(compare=False)
    name: str = field(compare=False)
    payload: str = field(compare=False)  # {"args": [...], "kwargs": {...}} as JSON


_ALL_QUEUES = None


class InMemoryTaskQueue:
    """A task queue inside the process: queues, etas, results, bounded concurrency, no server.

    It keeps the semantics the Redis adapter has, so code and tests written against it hold there:

    - `enqueue` encodes the arguments as JSON at once (a value JSON cannot carry raises
      `TypeError` naming the argument) and the function gets a fresh decoded copy; the return
      value is stored after a JSON round trip too, and one JSON cannot carry fails the task.
    - A task waits in its queue until its eta on `clock`, then runs in a worker consuming that
      queue. Among due tasks the earliest eta runs first.
    - `start()` runs an embedded worker over every queue when `embedded_worker` is true, so the
      embedded default (no `core worker` process) still runs tasks; pass `False` where workers
      are run explicitly with `run_worker`, as tests of queue isolation do.
    - Workers stop gracefully: running tasks finish, queued ones stay queued. A task cancelled
      mid-run (a second cancellation, or the event loop closing) goes back to its queue.
    - `claim` is a lock held inside this process only, measured on `clock`: with the memory
      engine there is one scheduler, in the process that runs the tasks.
    - A task that raises (on its last allowed attempt: retries are the `@task` layer's) is
      also kept in the dead-letter list, the newest `max_failed` of them, for
      `failed_tasks` / `core tasks failed`.
    - Nothing survives the process: queued tasks and results live in memory. The newest
      `max_results` finished results are kept; older ones read as `PENDING`, like an expired
      result in Redis.

    Args:
        clock: the time source for etas; `ManualClock` in tests.
        embedded_worker: whether `start()` runs a worker over every queue in this process.
        concurrency: how many tasks the embedded worker runs at once.
        max_results: how many finished results to keep.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        embedded_worker: bool = True,
        concurrency: int = 10,
        max_results: int = 10_000,
        max_failed: int = 1_000,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}.")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._embedded_worker = embedded_worker
        self._concurrency = concurrency
        self._max_results = max_results
        self._functions: dict[str, TaskFunction] = {}
        self._queued: dict[str, list[_Job]] = {}
        self._order = itertools.count()
        self._finished: OrderedDict[str, TaskResult] = OrderedDict()
        self._wakeups: set[asyncio.Event] = set()
        self._worker: asyncio.Task[None] | None = None
        self._claims: dict[str, datetime] = {}
        self._max_failed = max_failed
        self._failed: OrderedDict[str, FailedTask] = OrderedDict()

    @property
    def clock(self) -> Clock:
        """The clock etas are measured on."""
        return self._clock

    def register(self, name: str, function: TaskFunction, *, queue: str) -> None:
        self._functions[name] = function

    async def start(self) -> None:
        if self._embedded_worker and self._worker is None:
            self._worker = asyncio.create_task(
                self._work(_ALL_QUEUES, self._concurrency), name="core-tasks-memory-worker"
            )

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): always ready, nothing to reach."""
        return None

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                # Re-raise only if our own caller was cancelled, not because we cancelled it.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def enqueue(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str,
        eta: datetime | None = None,
        countdown: float | None = None,
    ) -> str:
        if name not in self._functions:
            raise UnknownTaskError(f"No task is registered as {name!r}.")
        payload = check_json_arguments(args, kwargs or {})
        now = self._clock.now()
        due = resolve_eta(now, eta, countdown) or now
        task_id = str(uuid.uuid4())
        self._push(_Job(due, next(self._order), task_id, queue, name, payload))
        return task_id

    async def claim(self, key: str, *, ttl: float) -> bool:
        now = self._clock.now()
        expires = self._claims.pop(key, None)
        if expires is not None and expires > now:
            self._claims[key] = expires
            return False
        # Drop expired claims from the oldest end, so a long-running scheduler's claims don't
        # pile up; one that outlives an older one is dropped once that one is.
        while self._claims:
            oldest = next(iter(self._claims))
            if self._claims[oldest] > now:
                break
            del self._claims[oldest]
        self._claims[key] = now + timedelta(seconds=ttl)
        return True

    async def result(self, task_id: str) -> TaskResult:
        return self._finished.get(task_id) or TaskResult(task_id, TaskStatus.PENDING)

    async def run_worker(self, queues: Sequence[str], *, concurrency: int) -> None:
        if not queues:
            raise ValueError("run_worker needs at least one queue.")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}.")
        await self._work(frozenset(queues), concurrency)

    async def failed_tasks(self, limit: int = 100) -> list[FailedTask]:
        return list(reversed(self._failed.values()))[:limit]

    async def failed_task(self, key: str) -> FailedTask | None:
        found = self._failed.get(key)
        if found is None:
            found = next((f for f in reversed(self._failed.values()) if f.task_id == key), None)
        return found

    async def forget_failed(self, key: str) -> bool:
        return self._failed.pop(key, None) is not None

    def _dead_letter(self, job: _Job, call: Mapping[str, Any], error: str) -> None:
        letter = FailedTask(
            id=str(uuid.uuid4()),
            reason="failed",
            error=error,
            failed_at=self._clock.now(),
            task_id=job.task_id,
            name=job.name,
            queue=job.queue,
            args=tuple(call["args"]),
            kwargs=dict(call["kwargs"]),
        )
        self._failed[letter.id] = letter
        while len(self._failed) > self._max_failed:
            self._failed.popitem(last=False)

    def _push(self, job: _Job) -> None:
        heapq.heappush(self._queued.setdefault(job.queue, []), job)
        for wakeup in self._wakeups:
            wakeup.set()

    async def _work(self, queues: Collection[str] | None, concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        try:
            while True:
                await slots.acquire()
                try:
                    job = await self._next_job(queues, wakeup)
                except BaseException:
                    slots.release()
                    raise
                task = asyncio.create_task(self._run(job), name=f"core-task-{job.name}")
                running.add(task)
                task.add_done_callback(finished)
        except asyncio.CancelledError:
            # Graceful stop: take nothing new, let the running tasks finish. A second
            # cancellation while waiting cancels them, and _run puts them back in their queue.
            try:
                if running:
                    await asyncio.wait(set(running))
            except asyncio.CancelledError:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            self._wakeups.discard(wakeup)

    async def _next_job(self, queues: Collection[str] | None, wakeup: asyncio.Event) -> _Job:
        while True:
            # Cleared before looking, so an enqueue after the look still wakes us.
            wakeup.clear()
            now = self._clock.now()
            heads = [
                heap
                for name, heap in self._queued.items()
                if heap and (queues is None or name in queues)
            ]
            if not heads:
                await wakeup.wait()
                continue
            first = min(heads, key=lambda heap: heap[0])
            if first[0].due <= now:
                return heapq.heappop(first)
            delay = (first[0].due - now).total_seconds()
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            woken = asyncio.ensure_future(wakeup.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()

    async def _run(self, job: _Job) -> None:
        call = json.loads(job.payload)
        # Each run is its own asyncio task, so the id is never seen by another run.
        running_task_id.set(job.task_id)
        try:
            value = await self._functions[job.name](*call["args"], **call["kwargs"])
            outcome = TaskResult(job.task_id, TaskStatus.SUCCESS, check_json_result(value))
        except asyncio.CancelledError:
            # Killed mid-run: at-least-once delivery means it runs again later.
            self._push(job)
            raise
        except Exception as exc:
            logger.warning("Task %s (%s) failed", job.name, job.task_id, exc_info=True)
            outcome = TaskResult(job.task_id, TaskStatus.FAILURE, error=describe_error(exc))
            self._dead_letter(job, call, outcome.error or "")
        self._finished[job.task_id] = outcome
        while len(self._finished) > self._max_results:
            self._finished.popitem(last=False)
