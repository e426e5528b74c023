"""Task-queue port: what the framework needs from a background-job engine."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from core.errors import CoreError

TaskFunction = Callable[..., Awaitable[Any]]

#: The id of the task run a worker is executing (None elsewhere). An adapter sets it around
#: each call of a registered function, so the run's log lines can name it.
running_task_id: ContextVar[str | None] = ContextVar("core_running_task_id", default=None)


class TaskStatus(StrEnum):
    """Where a task stands, as `TaskQueue.result` reports it."""

    PENDING = "pending"
    """Queued, waiting for its eta, running, or unknown to the result store."""
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The outcome of one enqueued task.

    Attributes:
        task_id: the id `enqueue` returned.
        status: `PENDING` until the task finished, then `SUCCESS` or `FAILURE`.
        value: the function's return value after a JSON round trip (a tuple comes back as a
            list); `None` unless `status` is `SUCCESS`.
        error: `"ExceptionType: message"` of the exception that ended the task; `None` unless
            `status` is `FAILURE`.
    """

    task_id: str
    status: TaskStatus
    value: Any = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        """True once the task finished, whether it succeeded or failed."""
        return self.status is not TaskStatus.PENDING


@dataclass(frozen=True, slots=True)
class FailedTask:
    """A task message the queue gave up on, kept in its dead-letter list.

    Attributes:
        id: the dead letter's own id: what `core tasks retry` takes (a task id works too).
        reason: `"failed"` (the task raised on its last allowed attempt) or `"malformed"` (a
            message the worker could not read: no data, bad JSON, a bad label).
        error: what went wrong, `"ExceptionType: message"`.
        failed_at: when it was dead-lettered (UTC).
        task_id: the id of the run that failed, when the message said.
        name: the task's name, when the message said.
        queue: the queue it was sent to, when known.
        args: the call's positional arguments, as sent.
        kwargs: the call's keyword arguments, as sent.
        raw: a malformed message as received (truncated), for a human to look at.
    """

    id: str
    reason: str
    error: str
    failed_at: datetime
    task_id: str | None = None
    name: str | None = None
    queue: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    raw: str | None = None

    @property
    def retryable(self) -> bool:
        """True when the message says which task to run again."""
        return self.name is not None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What one queue holds, as a metrics scrape reads it.

    Attributes:
        queue: the queue's name.
        depth: messages in the queue's stream: waiting, or fetched by a worker and not yet
            acknowledged.
        pending: of those, the ones a worker has fetched and not acknowledged (running, or
            abandoned by a worker that died, until redelivery).
        delayed: runs waiting for their eta (countdown, retry backoff) before they join.
    """

    queue: str
    depth: int
    pending: int
    delayed: int


@runtime_checkable
class QueueDepths(Protocol):
    """A task queue that can say, at scrape time, how full each of its queues is."""

    async def stats(self) -> list[QueueStats]:
        """One `QueueStats` per queue a task is registered on.

        Raises:
            TaskQueueUnavailableError: the engine cannot be reached.
        """
        ...


@runtime_checkable
class DeadLetters(Protocol):
    """The dead-letter list of a task queue: what `core tasks failed` and `core tasks retry` use.

    A queue keeps there every task that raised on its last allowed attempt and every message its
    workers could not read (which they acknowledge, so it never blocks them), newest first.
    """

    async def failed_tasks(self, limit: int = 100) -> list[FailedTask]:
        """The newest `limit` dead letters, newest first."""
        ...

    async def failed_task(self, key: str) -> FailedTask | None:
        """The dead letter with this id, or the newest one of the task id `key`; None if none."""
        ...

    async def forget_failed(self, key: str) -> bool:
        """Delete the dead letter with this id; False if there was none."""
        ...


class UnknownTaskError(CoreError, LookupError):
    """`enqueue` named a task that was never registered with this queue."""

    code = "unknown_task"


@runtime_checkable
class TaskQueue(Protocol):
    """Enqueues calls of registered tasks and runs them in workers.

    Call order: `register` every task, then `start`; `enqueue`, `result` and `claim` between
    `start` and `stop`. A worker process calls `run_worker` (after `start`) instead of serving
    requests.

    Guarantees:
        - `enqueue` returns the task id at once; the task runs no earlier than `eta` (or
          `countdown` seconds on the engine's clock).
        - Arguments must be JSON-serializable; anything else raises `TypeError` at enqueue time,
          naming the argument. The function receives them after a JSON round trip, as it would
          from another machine.
        - A task runs only in a worker consuming its queue.
        - Delivery is at least once: a task may run again after a worker dies mid-task, so
          tasks must tolerate redelivery.
        - Retries and timeouts are not the engine's business: the `@task` layer wraps the
          function it registers.

    Raises:
        TaskQueueUnavailableError: from `enqueue` or `result` when the engine cannot be reached.
        UnknownTaskError: from `enqueue` for a name that was never registered.
    """

    async def start(self) -> None:
        """Connect to the engine (and, for the in-process engine, start running tasks)."""
        ...

    async def stop(self) -> None:
        """Disconnect; tasks already running in this process finish first."""
        ...

    async def check(self) -> None:
        """Readiness: return when the task engine answers, raise when not.

        GET /health/ready and `core status` run it, each within HEALTH_CHECK_TIMEOUT seconds.
        Cheap and side-effect free. An adapter without `check` is reported as "unchecked",
        not as failing.
        """
        ...

    def register(self, name: str, function: TaskFunction, *, queue: str) -> None:
        """Make `function` runnable under `name`, in this process, before `start`.

        Register the same names in producers (`enqueue` refuses others) and in workers. `queue`
        is the task's home queue, the one the `@task` layer passes to `enqueue`; the engine
        itself runs a task on whichever queue it was enqueued to.
        """
        ...

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
        """Send one call of task `name` to `queue`; return its id without waiting for it.

        Args:
            eta: run no earlier than this timezone-aware moment; `None` runs as soon as a
                worker is free. A naive datetime raises `ValueError`.
            countdown: run no earlier than this many seconds from now, measured on the
                engine's own clock (the one its etas are judged on); not with `eta`.
        """
        ...

    async def claim(self, key: str, *, ttl: float) -> bool:
        """Claim `key` for `ttl` seconds: True for exactly one caller in that time.

        One caller across every process sharing this engine (one process for an in-process
        engine). The scheduler claims each (periodic task, tick) pair, so a tick fires once
        however many schedulers run.
        """
        ...

    async def result(self, task_id: str) -> TaskResult:
        """Where task `task_id` stands now; never waits for it to finish."""
        ...

    async def run_worker(self, queues: Sequence[str], *, concurrency: int) -> None:
        """Run the registered tasks sent to `queues`, at most `concurrency` at a time.

        Runs until cancelled. Cancellation is graceful: no new task is taken and the running
        ones finish before this returns by re-raising `CancelledError`.
        """
        ...


def resolve_eta(now: datetime, eta: datetime | None, countdown: float | None) -> datetime | None:
    """The moment a task becomes due from `enqueue`'s `eta` or `countdown`, for the engines.

    Returns:
        `now + countdown`, or `eta`, or `None` (due at once) when neither is given.

    Raises:
        ValueError: both are given, or `eta` is naive.
    """
    if eta is not None:
        if countdown is not None:
            raise ValueError("Pass eta or countdown, not both.")
        if eta.tzinfo is None:
            raise ValueError("eta must be timezone-aware, e.g. datetime.now(UTC) + timedelta(...).")
        return eta
    if countdown is not None:
        return now + timedelta(seconds=countdown)
    return None


def check_json_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """Encode a call's arguments as JSON, the wire format every engine shares.

    Returns:
        `{"args": [...], "kwargs": {...}}` as a JSON string.

    Raises:
        TypeError: naming the first argument that JSON cannot encode.
    """
    for index, value in enumerate(args):
        _check_json_value(value, f"positional argument {index}")
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise TypeError(f"Task keyword argument names must be strings, got {key!r}.")
        _check_json_value(value, f"keyword argument {key!r}")
    return json.dumps({"args": list(args), "kwargs": dict(kwargs)}, allow_nan=False)


def _check_json_value(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Task {where} is not JSON-serializable ({type(value).__name__}: {exc}); "
            "pass plain str/int/float/bool/None, lists and dicts with string keys, "
            "e.g. an id instead of an object."
        ) from exc


def check_json_result(value: Any) -> Any:
    """A task's return value after the JSON round trip every engine stores it with.

    Raises:
        TypeError: the value cannot be encoded; the engine records the task as failed.
    """
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Task return value is not JSON-serializable ({type(value).__name__}: {exc})."
        ) from exc


def describe_error(error: BaseException) -> str:
    """The `TaskResult.error` text for an exception: `"ExceptionType: message"`."""
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
