"""Binding declared tasks to one container's task queue, and what a worker runs for each.

Declarations are process-wide; what runs them is per container. When a container's queue
starts, its `TaskBinder` registers every declared task on it as a `TaskRunner`, which holds that
container's queue and app context, so a run uses that app's database, queue and settings and
never another app's. A task declared after the queue started is bound on its first `delay()`.
Both are providers of `TasksContainer` (`tasks.binder`, `tasks.runner`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from core.context import reset_container, set_container
from core.declarations import Declarations
from core.logs import current_correlation_id, current_request_id, use_log_ids
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.tasks import TaskQueue, describe_error, running_task_id
from core.tasks.registry import declared_tasks
from core.tasks.task import RETRY_KEY, Task

if TYPE_CHECKING:
    from core.tracing import Tracing

__all__ = ("RETRIED_KEY", "TaskBinder", "TaskRunner", "send")

logger = logging.getLogger("core.tasks")

# The result a failed attempt leaves when it handed over to a retry: the retry's task id.
# `get_result` follows these links, so the first id reports the last attempt's outcome.
RETRIED_KEY = "__core_retried_as__"


class TaskRunner:
    """What a task queue runs for one task of one container: retries, timeout, unit of work.

    The engine calls it with the decoded JSON arguments. It runs the attempt with the
    container made ambient. When the attempt fails and retries remain, it enqueues the next
    attempt with a backoff countdown and returns a link to it instead of raising, so the
    engine stores a result that `get_result` follows; the last failure is raised and stored as
    the task's error.

    Args:
        task: the declared task.
        container: the app container a run makes ambient and gives to a `container` parameter.
        queue: the queue it is registered on, which its retries go to.
        home: the task's home queue's name.
        metrics: what each attempt's start, outcome and duration are recorded to.
        tracing: Core's tracer (TRACING_ENABLED): each attempt is a consumer span, the child
            of the span that sent the task (its context travels in the task's message).
    """

    __slots__ = ("container", "home", "metrics", "queue", "task", "tracing")

    def __init__(
        self,
        task: Task[Any],
        container: Any,
        queue: TaskQueue,
        home: str,
        metrics: Metrics = NO_METRICS,
        tracing: Tracing | None = None,
    ) -> None:
        self.task = task
        self.container = container
        self.queue = queue
        self.home = home
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        retry: Mapping[str, Any] = kwargs.pop(RETRY_KEY, None) or {}
        if not retry and self.tracing is None:  # no ids to carry, no span to open
            return await self._run(retry, args, kwargs)
        with use_log_ids(retry.get("request_id"), retry.get("correlation_id")):
            if self.tracing is None:
                return await self._run(retry, args, kwargs)
            with self.tracing.span(
                f"task run {self.task.name}",
                kind="consumer",
                parent=retry,
                attributes={
                    "core.task.name": self.task.name,
                    "core.task.id": running_task_id.get() or "",
                    "core.task.attempt": int(retry.get("attempt", 0)) + 1,
                },
            ):
                return await self._run(retry, args, kwargs)

    async def _run(self, retry: Mapping[str, Any], args: Any, kwargs: dict[str, Any]) -> Any:
        attempt = int(retry.get("attempt", 0))
        task = self.task
        # `use_container`, without a context manager's cost on every run.
        token = set_container(self.container)
        self.metrics.task_started(task.name)
        started = time.perf_counter()
        outcome = "failure"
        try:
            try:
                result = await task.run_attempt(self.container, args, kwargs)
                outcome = "success"
                return result
            except Exception as exc:
                if attempt >= task.retry or not isinstance(exc, task.retry_on):
                    if task.retry:
                        logger.warning(
                            "Task %s failed for good after %d attempt(s): %s",
                            task.name,
                            attempt + 1,
                            describe_error(exc),
                        )
                    raise
                delay = task.retry_delay(attempt + 1)
                target = str(retry.get("queue") or self.home)
                follow_up: dict[str, Any] = {**retry, "attempt": attempt + 1}
                if "queue" in retry:
                    follow_up["queue"] = target
                next_id = await self.queue.enqueue(
                    task.name,
                    args,
                    {**kwargs, RETRY_KEY: follow_up},
                    queue=target,
                    countdown=delay,
                )
                logger.warning(
                    "Task %s attempt %d failed (%s); retry %d/%d in %.1fs as %s",
                    task.name,
                    attempt + 1,
                    describe_error(exc),
                    attempt + 1,
                    task.retry,
                    delay,
                    next_id,
                )
                outcome = "retry"
                return {RETRIED_KEY: next_id}
        finally:
            reset_container(token)
            seconds = time.perf_counter() - started
            self.metrics.task_finished(task.name, outcome, seconds)
            _log_run(task.name, attempt + 1, seconds, outcome)


def _log_run(name: str, attempt: int, seconds: float, outcome: str) -> None:
    # One line per run, its fields also as `extra` for JSON logs: what `core worker` shows.
    task_id = running_task_id.get()
    duration_ms = round(seconds * 1000, 3)
    logger.info(
        "Task %s %s %s (attempt %d) in %.1fms",
        name,
        task_id or "-",
        outcome,
        attempt,
        duration_ms,
        extra={
            "task": name,
            "task_id": task_id,
            "attempt": attempt,
            "duration_ms": duration_ms,
            "outcome": outcome,
        },
    )


class TaskBinder:
    """Registers one container's tasks on its queue and sends their runs there.

    Args:
        queue: gives the container's task queue (its provider: resolved per send, so an
            override wins).
        runner: builds the `TaskRunner` for one task (`runner(task=, queue=, home=)`).
        default_queue: the home queue of tasks that name none (TASK_DEFAULT_QUEUE).
        declarations: where the declared tasks are.
        metrics: what each run sent is recorded to.
        tracing: Core's tracer (TRACING_ENABLED): each send is a producer span, whose context
            the task's message carries to the run.
    """

    def __init__(
        self,
        *,
        queue: Callable[[], TaskQueue],
        runner: Callable[..., TaskRunner],
        default_queue: str,
        declarations: Declarations,
        metrics: Metrics = NO_METRICS,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing
        self.queue = queue
        self.runner = runner
        self.default_queue = default_queue
        self.declarations = declarations
        self.metrics = metrics
        # Queue -> {task name: (the Task bound, its home queue)}. Weak keys: an overriding
        # queue is forgotten with its test; the values hold no reference back to the queue.
        self._bindings: WeakKeyDictionary[TaskQueue, dict[str, tuple[Task[Any], str]]] = (
            WeakKeyDictionary()
        )

    def bind(self, task: Task[Any], queue: TaskQueue) -> str:
        """Register `task` on `queue`; return its home queue's name."""
        home = task.queue or self.default_queue
        queue.register(task.name, self.runner(task=task, queue=queue, home=home), queue=home)
        bound = self._bindings.get(queue)
        if bound is None:
            bound = self._bindings[queue] = {}
        bound[task.name] = (task, home)
        return home

    def bind_declared(self, queue: TaskQueue) -> None:
        """Register every declared task on `queue` (before it starts)."""
        for task in declared_tasks(self.declarations):
            self.bind(task, queue)

    def home_queue(self, task: Task[Any], queue: TaskQueue) -> str:
        """`task`'s home queue on `queue`, binding it first when it is not (or no longer)
        bound."""
        bound = self._bindings.get(queue)
        if bound is not None:
            entry = bound.get(task.name)
            # A task declared again under the same name (a reload) is bound again.
            if entry is not None and entry[0] is task:
                return entry[1]
        return self.bind(task, queue)

    async def send(
        self,
        task: Task[Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
    ) -> str:
        """Enqueue one run of `task` on the container's queue; return the task id."""
        if self.tracing is None:
            return await self._send(task, args, kwargs, countdown, eta, queue)
        with self.tracing.span(
            f"task send {task.name}",
            kind="producer",
            attributes={"core.task.name": task.name},
        ) as span:
            task_id = await self._send(task, args, kwargs, countdown, eta, queue)
            span.set_attribute("core.task.id", task_id)
            return task_id

    async def _send(
        self,
        task: Task[Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        countdown: float | None,
        eta: datetime | None,
        queue: str | None,
    ) -> str:
        task_queue = self.queue()
        home = self.home_queue(task, task_queue)
        context: dict[str, Any] = {}
        if queue is not None and queue != home:
            # Retries go back to the queue the task was sent to, which the runner can't see.
            context["queue"] = queue
        # The sender's ids travel with the run, so its lines (and the events it publishes)
        # correlate with the request or event that sent it.
        if request_id := current_request_id():
            context["request_id"] = request_id
        if correlation_id := current_correlation_id():
            context["correlation_id"] = correlation_id
        if self.tracing is not None:
            # `traceparent` (W3C): the run continues the sender's trace, on any engine.
            self.tracing.inject(context)
        if context:
            kwargs = {**kwargs, RETRY_KEY: {"attempt": 0, **context}}
        try:
            task_id = await task_queue.enqueue(
                task.name, args, kwargs, queue=queue or home, eta=eta, countdown=countdown
            )
        except TypeError as exc:
            raise TypeError(f"Cannot send task {task.name!r}: {exc}") from exc
        self.metrics.task_enqueued(task.name)
        return task_id


async def send(
    task: Task[Any],
    container: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    countdown: float | None = None,
    eta: datetime | None = None,
    queue: str | None = None,
) -> str:
    """Enqueue one run of `task` on `container`'s queue; return the task id."""
    binder: TaskBinder = container.tasks.binder()
    return await binder.send(task, args, kwargs, countdown=countdown, eta=eta, queue=queue)
