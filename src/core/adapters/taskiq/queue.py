"""TaskiqTaskQueue: the task queue on Taskiq over Redis streams (needs the `redis` extra)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from taskiq.acks import AcknowledgeType
from taskiq.message import TaskiqMessage
from taskiq.serializers import JSONSerializer
from taskiq_redis.exceptions import ResultIsMissingError

from core.adapters.taskiq.broker import (
    DELAYED_BATCH,
    ERROR_LABEL,
    GROUP,
    MOVE_DUE,
    RECEIVER_LOGGER,
    UNREACHABLE,
    CoreReceiver,
    CoreResults,
    ResultStore,
    RunLinesFilter,
    StreamBroker,
    plain,
)
from core.cancellation import raise_if_cancelled
from core.errors import TaskQueueUnavailableError
from core.ports.tasks import (
    FailedTask,
    QueueStats,
    TaskFunction,
    TaskResult,
    TaskStatus,
    UnknownTaskError,
    check_json_arguments,
    describe_error,
    resolve_eta,
)

logger = logging.getLogger("core.tasks.taskiq")


class TaskiqTaskQueue:
    """The task queue on Taskiq with Redis: a stream per queue, acknowledgements, Redis results.

    How the port's guarantees are kept:

    - Each queue is a Redis stream (`<key_prefix>:stream:<queue>`) read by one consumer group.
      A worker reads the streams of its queues and runs their tasks with Taskiq's `Receiver`,
      at most `concurrency` at a time.
    - An entry is acknowledged (and deleted) only after its result is stored. A worker killed
      mid-task leaves it pending in the group; any worker claims it once it has been pending
      for `redelivery_timeout` seconds. That timeout must exceed the longest task's run time,
      or a slow task is run a second time while the first run goes on.
    - Delayed tasks wait in a ZSET per queue (`<key_prefix>:delayed:<queue>`) scored by eta;
      every worker moves the due ones into the stream with one atomic script. Taskiq's Redis
      schedule sources were not used: they need a separate scheduler process, bucket times
      by the minute and give a schedule id instead of the task id `result()` needs.
    - Results are JSON under `<key_prefix>:result:<task id>` for `result_ttl` seconds.
    - `claim` sets `<key_prefix>:claim:<key>` with `SET NX PX`: one caller wins per key.
    - A worker stopped gracefully finishes its running tasks and hands the entries it had
      fetched but not started back to the group at once.
    - Dead letters go to the stream `<key_prefix>:dead`: a run that raised on its last allowed
      attempt (before its entry is acknowledged), and a message no worker can run (no `data`
      field, not a task message, a bad `ack_type` label), which is acknowledged at once so it
      neither stops the worker nor comes back. `failed_tasks` reads them, newest first.

    Args:
        url: the Redis URL (`REDIS_URL`).
        key_prefix: the prefix of every Redis key this queue uses.
        result_ttl: how long results are kept, in seconds; `None` keeps them forever.
        redelivery_timeout: how long a fetched, unacknowledged task may stay pending before
            another worker runs it again, in seconds.
        delayed_poll_interval: the longest a worker waits before looking for due delayed
            tasks, in seconds; it wakes sooner when it knows the next eta.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "core:tasks",
        result_ttl: int | None = 86_400,
        redelivery_timeout: float = 600.0,
        delayed_poll_interval: float = 1.0,
    ) -> None:
        if redelivery_timeout <= 0 or delayed_poll_interval <= 0:
            raise ValueError("redelivery_timeout and delayed_poll_interval must be positive.")
        self._url = url
        self._prefix = key_prefix
        self._result_ttl = result_ttl
        self._redelivery_timeout = redelivery_timeout
        self._delayed_poll_interval = delayed_poll_interval
        self._functions: dict[str, TaskFunction] = {}
        self._queues: dict[str, None] = {}
        self._producer = self._broker(["default"], worker=False)
        self._results = self._result_backend()

    def register(self, name: str, function: TaskFunction, *, queue: str) -> None:
        self._functions[name] = function
        self._queues[queue] = None

    async def stats(self) -> list[QueueStats]:
        """Each registered queue's stream length, pending entries of the workers' group and
        delayed runs: one pipelined round trip (metrics scrapes)."""
        queues = list(self._queues)
        if not queues:
            return []
        try:
            async with self._producer.client().pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.xlen(self._stream(queue))
                    pipe.xpending(self._stream(queue), GROUP)
                    pipe.zcard(self._delayed(queue))
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError("Could not read the task queues' sizes.") from exc
        stats = []
        for index, queue in enumerate(queues):
            depth, pending, delayed = replies[3 * index : 3 * index + 3]
            if isinstance(depth, Exception) or isinstance(delayed, Exception):
                raise TaskQueueUnavailableError("Could not read the task queues' sizes.")
            # No group yet (no worker ever read this queue): nothing is pending.
            count = 0 if isinstance(pending, Exception) else int(pending["pending"])
            stats.append(QueueStats(queue, int(depth), count, int(delayed)))
        return stats

    async def start(self) -> None:
        try:
            async with Redis(connection_pool=self._producer.connection_pool) as redis:
                await redis.ping()
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError(f"Redis at {self._url} is unreachable.") from exc

    async def check(self) -> None:
        """Readiness (GET /health/ready, `core status`): Redis answers PING."""
        async with Redis(connection_pool=self._producer.connection_pool) as redis:
            await redis.ping()

    async def stop(self) -> None:
        await self._producer.shutdown()
        await self._results.shutdown()

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
        call = json.loads(check_json_arguments(args, kwargs or {}))
        # Countdowns are measured on this machine's clock; the workers judge etas on the Redis
        # server's, so machines whose clocks disagree shift countdowns by the difference.
        eta = resolve_eta(datetime.now(UTC), eta, countdown)
        task_id = str(uuid.uuid4())
        message = self._producer.formatter.dumps(
            TaskiqMessage(
                task_id=task_id,
                task_name=name,
                labels={"queue_name": self._stream(queue)},
                args=call["args"],
                kwargs=call["kwargs"],
            )
        )
        try:
            if eta is None or eta <= datetime.now(UTC):
                await self._producer.kick(message)
            else:
                score = eta.timestamp() * 1000
                await self._producer.client().zadd(self._delayed(queue), {message.message: score})
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError(f"Could not enqueue task {name!r}.") from exc
        return task_id

    async def claim(self, key: str, *, ttl: float) -> bool:
        try:
            # SET NX is atomic on the server: of all the processes asking, one gets True.
            claimed = await self._producer.client().set(
                f"{self._prefix}:claim:{key}", "1", nx=True, px=max(1, int(ttl * 1000))
            )
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError(f"Could not claim {key!r} in Redis.") from exc
        return bool(claimed)

    async def result(self, task_id: str) -> TaskResult:
        try:
            stored = await self._results.get_result(task_id)
        except ResultIsMissingError:
            return TaskResult(task_id, TaskStatus.PENDING)
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError(f"Could not read task {task_id}'s result.") from exc
        if stored.is_err:
            error = stored.labels.get(ERROR_LABEL) or describe_error(
                stored.error or RuntimeError("failed")
            )
            return TaskResult(task_id, TaskStatus.FAILURE, error=str(error))
        return TaskResult(task_id, TaskStatus.SUCCESS, stored.return_value)

    async def run_worker(self, queues: Sequence[str], *, concurrency: int) -> None:
        if not queues:
            raise ValueError("run_worker needs at least one queue.")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}.")
        queues = list(dict.fromkeys(queues))
        broker = self._broker(
            queues, worker=True, connections=concurrency + 10, concurrency=concurrency
        )
        for name, function in self._functions.items():
            broker.register_task(plain(function), task_name=name)
        receiver = CoreReceiver(
            broker,
            max_async_tasks=concurrency,
            max_prefetch=0,
            # Arguments arrive as decoded JSON, exactly as the in-memory queue passes them;
            # Taskiq's type-hint coercion would make the engines differ.
            validate_params=False,
            ack_type=AcknowledgeType.WHEN_SAVED,
            wait_tasks_timeout=None,
        )
        run_lines = RunLinesFilter()
        logging.getLogger(RECEIVER_LOGGER).addFilter(run_lines)
        finish = asyncio.Event()
        listening = asyncio.create_task(receiver.listen(finish), name="core-taskiq-listen")
        moving = asyncio.create_task(self._move_delayed(broker, queues), name="core-taskiq-eta")
        try:
            done, _ = await asyncio.wait({listening, moving}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise RuntimeError("The task worker stopped on its own.")
        except asyncio.CancelledError:
            finish.set()
            try:
                # Graceful: the receiver stops fetching and waits for the running tasks.
                await listening
            except asyncio.CancelledError:
                # Cancelled again: stop now; the running tasks stay unacknowledged.
                await receiver.cancel_running()
                raise
            raise
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError(f"Redis at {self._url} is unreachable.") from exc
        finally:
            logging.getLogger(RECEIVER_LOGGER).removeFilter(run_lines)
            for task in (moving, listening):
                task.cancel()
            await asyncio.gather(moving, listening, return_exceptions=True)
            await broker.release_unstarted(idle=self._redelivery_ms)
            await broker.shutdown()

    @property
    def _redelivery_ms(self) -> int:
        return int(self._redelivery_timeout * 1000)

    def _stream(self, queue: str) -> str:
        return f"{self._prefix}:stream:{queue}"

    @property
    def _dead(self) -> str:
        return f"{self._prefix}:dead"

    async def failed_tasks(self, limit: int = 100) -> list[FailedTask]:
        entries: Any
        try:
            entries = await self._producer.client().xrevrange(self._dead, count=limit)
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError("Could not read the failed tasks.") from exc
        return [self._failed(entry_id, fields) for entry_id, fields in entries]

    async def failed_task(self, key: str) -> FailedTask | None:
        client = self._producer.client()
        entries: Any
        try:
            if _looks_like_entry_id(key):
                entries = await client.xrange(self._dead, key, key)
                if entries:
                    return self._failed(*entries[0])
            # A task id: the newest dead letter of that run.
            async for entry_id, fields in _newest_first(client, self._dead):
                if fields.get(b"task_id") == key.encode():
                    return self._failed(entry_id, fields)
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError("Could not read the failed tasks.") from exc
        return None

    async def forget_failed(self, key: str) -> bool:
        if not _looks_like_entry_id(key):
            return False
        try:
            return bool(await self._producer.client().xdel(self._dead, key))
        except UNREACHABLE as exc:
            raise TaskQueueUnavailableError("Could not delete the failed task.") from exc

    def _failed(self, entry_id: Any, fields: dict[bytes, bytes]) -> FailedTask:
        text = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        stream = text.get("stream") or ""
        queue = stream.removeprefix(f"{self._prefix}:stream:") if stream else None
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if "data" in text:
            try:
                message = json.loads(text["data"])
                args, kwargs = tuple(message.get("args") or ()), dict(message.get("kwargs") or {})
            except (ValueError, AttributeError, TypeError):
                pass
        failed_at = datetime.fromtimestamp(int(text.get("failed_at") or 0) / 1000, UTC)
        return FailedTask(
            id=entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
            reason=text.get("reason") or "failed",
            error=text.get("error") or "",
            failed_at=failed_at,
            task_id=text.get("task_id"),
            name=text.get("task_name"),
            queue=queue or None,
            args=args,
            kwargs=kwargs,
            raw=text.get("raw"),
        )

    def _delayed(self, queue: str) -> str:
        return f"{self._prefix}:delayed:{queue}"

    def _broker(
        self,
        queues: Sequence[str],
        *,
        worker: bool,
        connections: int | None = None,
        concurrency: int = 1,
    ) -> StreamBroker:
        broker = StreamBroker(
            self._url,
            streams=[self._stream(queue) for queue in queues],
            idle_timeout=self._redelivery_ms,
            claim_interval=min(2.0, self._redelivery_timeout / 2),
            dead_letters=self._dead,
            concurrency=concurrency,
            max_connection_pool_size=connections,
        )
        broker.with_result_backend(self._result_backend())
        broker.add_middlewares(CoreResults())
        broker.is_worker_process = worker
        return broker

    def _result_backend(self) -> ResultStore:
        return ResultStore(
            self._url,
            result_ex_time=self._result_ttl,
            # JSON, not taskiq-redis's default pickle: unpickling what a Redis holds would run
            # code anyone with write access to it chose.
            serializer=JSONSerializer(),
            prefix_str=f"{self._prefix}:result",
        )

    async def _move_delayed(self, broker: StreamBroker, queues: Sequence[str]) -> None:
        async with Redis(connection_pool=broker.connection_pool) as redis:
            move = redis.register_script(MOVE_DUE)
            while True:
                raise_if_cancelled()
                wait = self._delayed_poll_interval
                for queue in queues:
                    try:
                        moved, next_ms = await move(
                            keys=[self._delayed(queue), self._stream(queue)],
                            args=[DELAYED_BATCH],
                        )
                    except UNREACHABLE:
                        logger.warning("Could not move due delayed tasks", exc_info=True)
                        continue
                    if moved >= DELAYED_BATCH:
                        wait = 0
                    elif next_ms >= 0:
                        wait = min(wait, next_ms / 1000)
                await asyncio.sleep(wait)


def _looks_like_entry_id(key: str) -> bool:
    milliseconds, _, sequence = key.partition("-")
    return milliseconds.isdigit() and sequence.isdigit()


async def _newest_first(client: Redis, stream: str, batch: int = 500) -> Any:
    """Every entry of `stream`, newest first, read `batch` at a time."""
    end = "+"
    while True:
        entries: Any = await client.xrevrange(stream, max=end, count=batch)
        for entry in entries:
            yield entry
        if len(entries) < batch:
            return
        last = entries[-1][0]
        last = last.decode() if isinstance(last, bytes) else str(last)
        end = f"({last}"
