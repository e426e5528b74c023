"""`@task`: declare a background job; await it to run it now, `.delay()` it to run in a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from core.context import ambient_session, current_container, is_running
from core.declarations import Declarations
from core.errors import CoreError, NoActiveContextError, NotRunningError
from core.models.session import deferred_unit_of_work, unit_of_work
from core.tasks.registry import declare

__all__ = ("INJECTED_PARAMETERS", "Task", "TaskOptions", "TaskTimeoutError", "task")

R = TypeVar("R")

INJECTED_PARAMETERS = ("db", "container")
"""Parameter names the framework fills in when a task runs, never sent through the queue:
`db` gets the run's unit of work (database session), `container` the app's container."""

# Reserved keyword of the messages that carry a retry: the attempt number (and the queue when
# not the task's home queue). The runner strips it before calling the function.
RETRY_KEY = "__core_retry__"


class TaskTimeoutError(CoreError, TimeoutError):
    """An attempt ran longer than its task's `timeout` and was cancelled; it counts as a failure.

    Example:
        >>> TaskTimeoutError("Task 'report' took longer than its 5s timeout").code
        'task_timeout'
    """

    code = "task_timeout"


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task is sent and run: the options `@task`, `@periodic_task` and `Task` share.

    Checked when built, so a bad option fails at the decorator line, at import time.

    Attributes:
        name: the name workers know the task by; None for the function's `module.qualname`.
        queue: the task's home queue; None means `TASK_DEFAULT_QUEUE` of the app sending it.
        retry: how many times a failed run is retried (so at most `retry + 1` runs).
        timeout: seconds one attempt may run before it is cancelled; None for no limit.
        retry_backoff: seconds before the first retry; each next one waits twice as long.
        retry_backoff_max: the longest wait between two attempts, in seconds.
        retry_jitter: draw each wait at random between 0 and its value, as Celery does.
        retry_on: the exception types that are retried (a tuple, however it was given).

    Raises:
        ValueError: a negative or non-integer `retry`, a `timeout` that is not positive, a
            negative backoff, or an empty `name` or `queue`.
        TypeError: `retry_on` holds something other than exception classes.

    Example:
        >>> from core.tasks import TaskOptions
        >>> TaskOptions(queue="emails", retry=3, timeout=300).retry_on
        (<class 'Exception'>,)
    """

    name: str | None = None
    queue: str | None = None
    retry: int = 0
    timeout: float | None = None
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0:
            raise ValueError(f"retry must be a whole number >= 0, got {self.retry!r}.")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or self.timeout <= 0
        ):
            raise ValueError(f"timeout must be positive seconds or None, got {self.timeout!r}.")
        for value in (self.retry_backoff, self.retry_backoff_max):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError("retry_backoff and retry_backoff_max must be >= 0 seconds.")
        if self.queue is not None and (not isinstance(self.queue, str) or not self.queue):
            raise ValueError("queue must be a non-empty name, or None for TASK_DEFAULT_QUEUE.")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ValueError("name must be a non-empty string, or None for module.qualname.")
        retry_on = self.retry_on if isinstance(self.retry_on, tuple) else (self.retry_on,)
        for kind in retry_on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise TypeError(f"retry_on takes exception classes, got {kind!r}.")
        object.__setattr__(self, "retry_on", retry_on)


class Task(Generic[R]):
    """A declared background job: awaitable inline, sendable to a worker with `delay`.

    Build it with `@task(...)`, or `Task(function, **fields)` where `fields` are `TaskOptions`'
    (or `options=TaskOptions(...)`). Declaring records the task in the process's
    `Declarations` (or the `declarations=` given); each app's task queue gets the declared tasks
    when it starts, under `name`, on `queue`. The options read through as attributes: `queue`,
    `retry`, `timeout`, `retry_backoff`, `retry_backoff_max`, `retry_jitter`, `retry_on`.

    Attributes:
        name: the name workers know it by; `module.qualname` unless given.
        options: the validated `TaskOptions`.

    Example:
        >>> from core.tasks import task
        >>> @task(queue="emails", retry=3, timeout=300)
        ... async def send_email(to: str, subject: str, body: str) -> None:
        ...     ...
        >>> send_email.queue, send_email.retry, send_email.timeout
        ('emails', 3, 300)
    """

    def __init__(
        self,
        function: Callable[..., Awaitable[R]],
        *,
        options: TaskOptions | None = None,
        declarations: Declarations | None = None,
        **fields: Any,
    ) -> None:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"@task needs an `async def` function, got {function!r}: tasks run on the "
                "event loop, in a worker or inline."
            )
        if options is None:
            options = TaskOptions(**fields)
        elif fields:
            options = dataclasses.replace(options, **fields)
        self.options = options
        self.function = function
        self.name = options.name or f"{function.__module__}.{function.__qualname__}"
        signature = inspect.signature(function)
        self.injects = frozenset(p for p in INJECTED_PARAMETERS if p in signature.parameters)
        # The call a sender makes: the function's parameters minus the injected ones, so
        # `delay` refuses a wrong call at once instead of in a worker, later.
        self._call_signature = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name not in self.injects]
        )
        self._positions = {
            p.name: index
            for index, p in enumerate(signature.parameters.values())
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
        functools.update_wrapper(self, function)
        self._check_declaration()
        declare(self, declarations)

    @property
    def queue(self) -> str | None:
        """The home queue; None for `TASK_DEFAULT_QUEUE`."""
        return self.options.queue

    @property
    def retry(self) -> int:
        """Retries after a failed first run."""
        return self.options.retry

    @property
    def timeout(self) -> float | None:
        """Seconds one attempt may run; None for no limit."""
        return self.options.timeout

    @property
    def retry_backoff(self) -> float:
        """Seconds before the first retry."""
        return self.options.retry_backoff

    @property
    def retry_backoff_max(self) -> float:
        """The longest wait between two attempts."""
        return self.options.retry_backoff_max

    @property
    def retry_jitter(self) -> bool:
        """Whether waits are drawn at random below their value."""
        return self.options.retry_jitter

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        """The exception types that are retried."""
        return self.options.retry_on  # type: ignore[return-value]  # a tuple once built

    def _check_declaration(self) -> None:
        """Refuse a declaration before it is recorded; subclasses add their own rules."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} queue={self.queue or '(default)'}>"

    async def __call__(self, *args: Any, **kwargs: Any) -> R:
        """Run the task now, in this process: no queue, no retries, no timeout.

        It runs on the caller's database session when there is one (a request's, another
        task's), else in a unit of work of its own on the container `current_container()`
        finds (the running app's, or the process default in a script); `db` and `container`
        parameters the caller leaves out are filled in from those.
        """
        session = ambient_session()
        container = current_container()
        if session is None:
            async with unit_of_work(container) as db:
                return await self.function(*args, **self._inject(args, kwargs, db, container))
        return await self.function(*args, **self._inject(args, kwargs, session, container))

    async def delay(self, *args: Any, **kwargs: Any) -> str:
        """Send one run to a worker, as soon as one is free; return its task id at once.

        Raises:
            TypeError: the arguments don't fit the function, or JSON cannot carry one (the
                message names the task and the argument).
            NotRunningError: nothing in this process would run it (see `apply_async`).

        Example:
            >>> task_id = await send_email.delay(  # doctest: +SKIP
            ...     "user@example.com", "Hello", "World"
            ... )
        """
        return await self._send(args, kwargs)

    async def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
    ) -> str:
        """Send one run to a worker, no earlier than asked; return its task id at once.

        It goes to the task queue of the container `current_container()` finds: the current
        request's, message's or task's, else the running app's, else the process default
        (a script sends through `TASK_BROKER=redis` to `core worker` processes, as Celery does).

        Args:
            args: the positional arguments; JSON-serializable.
            kwargs: the keyword arguments; JSON-serializable.
            countdown: run no earlier than this many seconds from now.
            eta: run no earlier than this timezone-aware moment (not with `countdown`).
            queue: send to this queue instead of the task's own (retries follow it).

        Raises:
            TypeError: the arguments don't fit the function, or JSON cannot carry one.
            ValueError: both `countdown` and `eta`, or a naive `eta`.
            NotRunningError: the task queue is the in-memory one and its app is not running
                here, so nothing would ever run the task.
            TaskQueueUnavailableError: the queue's engine cannot be reached.

        Example:
            >>> task_id = await send_email.apply_async(  # doctest: +SKIP
            ...     args=("user@example.com", "Hello", "World"), countdown=60
            ... )
        """
        return await self._send(
            tuple(args), dict(kwargs or {}), countdown=countdown, eta=eta, queue=queue
        )

    def retry_delay(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry).

        Example:
            >>> # @task(retry=5, retry_backoff=2, retry_jitter=False)
            >>> [report.retry_delay(n) for n in (1, 2, 3)]  # doctest: +SKIP
            [2.0, 4.0, 8.0]
        """
        ceiling = min(self.retry_backoff * 2.0 ** (retry_number - 1), self.retry_backoff_max)
        return random.uniform(0, ceiling) if self.retry_jitter else float(ceiling)

    async def run_attempt(self, container: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> R:
        """Run one attempt as a worker does: in a unit of work, within `timeout`.

        The unit of work is committed when the function returns and rolled back when it
        raises or is cancelled; its commit counts towards the timeout.

        Raises:
            TaskTimeoutError: the attempt took longer than `timeout` and was cancelled.
        """
        if self.timeout is None:
            return await self._in_unit_of_work(container, args, kwargs)
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await self._in_unit_of_work(container, args, kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise  # the function's own TimeoutError, not ours
            raise TaskTimeoutError(
                f"Task {self.name!r} took longer than its {self.timeout:g}s timeout and was "
                "cancelled."
            ) from None

    async def _in_unit_of_work(
        self, container: Any, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> R:
        if "db" in self.injects:
            async with unit_of_work(container) as db:
                return await self.function(*args, **self._inject(args, kwargs, db, container))
        # A task without `db` still runs in a unit of work: its QuerySets use the ambient
        # session (`await Session.objects.filter(...).delete()` in the spec). It is opened on
        # first use, so a run that never touches the database opens none.
        async with deferred_unit_of_work(container):
            return await self.function(*args, **self._inject(args, kwargs, None, container))

    def _inject(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], db: Any, container: Any
    ) -> dict[str, Any]:
        if not self.injects:
            return dict(kwargs)
        filled = dict(kwargs)
        for parameter, value in (("db", db), ("container", container)):
            if parameter not in self.injects or parameter in filled:
                continue
            if self._positions.get(parameter, len(args)) < len(args):
                continue  # the caller passed it positionally
            if value is None:
                raise NoActiveContextError(
                    f"Task {self.name!r} takes `{parameter}`, but no app is running here: "
                    f"pass {parameter}= yourself, or run it inside `async with app.lifespan():`."
                )
            filled[parameter] = value
        return filled

    def check_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Refuse, at send time, a call the function could not take in a worker.

        Raises:
            TypeError: naming the task and what is wrong.
        """
        for reserved in (*self.injects, RETRY_KEY):
            if reserved in kwargs:
                raise TypeError(
                    f"Cannot send task {self.name!r}: {reserved!r} is filled in by the worker "
                    "that runs it; don't pass it."
                )
        try:
            self._call_signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"Cannot send task {self.name!r}: {exc}.") from None

    async def _send(
        self,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
    ) -> str:
        from core.tasks.binding import send

        self.check_call(args, kwargs)
        container = current_container()
        if not is_running(container) and container.settings().task_broker == "memory":
            raise NotRunningError(
                f"Task {self.name!r} was not sent: TASK_BROKER=memory runs tasks inside a "
                "running app, and this one is not running (a mounted CoreApp needs "
                "`core_app.attach(host)`). Set TASK_BROKER=redis and run `core worker`, or send "
                "it inside `async with app.lifespan():`."
            )
        return await send(self, container, args, kwargs, countdown=countdown, eta=eta, queue=queue)


@overload
def task(function: Callable[..., Awaitable[R]], /) -> Task[R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    retry: int = 0,
    timeout: float | None = None,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 600.0,
    retry_jitter: bool = True,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Callable[[Callable[..., Awaitable[R]]], Task[R]]: ...


def task(
    function: Callable[..., Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str | None = None,
    retry: int = 0,
    timeout: float | None = None,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 600.0,
    retry_jitter: bool = True,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Task[R] | Callable[[Callable[..., Awaitable[R]]], Task[R]]:
    """Declare an `async def` function as a task: `await` it to run it now, `.delay()` it to
    run it in a worker.

    Args:
        name: the name workers know it by; `module.qualname` by default. Give one when the
            module path differs between the processes that send and run it.
        queue: its home queue; `TASK_DEFAULT_QUEUE` (`default`) when None.
        retry: retries after a failed first run (Celery's `max_retries`): `retry=3` runs it at
            most 4 times.
        timeout: seconds one attempt may run; a slower one is cancelled and counts as failed.
        retry_backoff: seconds before the first retry, doubling for each next one.
        retry_backoff_max: the cap on that wait.
        retry_jitter: wait a random time between 0 and the backoff instead (default on).
        retry_on: the exception types worth retrying (default: any `Exception`).

    A parameter named `db` receives the run's database session (committed when the task
    returns, rolled back when it raises); one named `container` receives the app's container.

    Example:
        >>> from core.tasks import task
        >>> @task(queue="emails", retry=3, timeout=300)
        ... async def send_email(to: str, subject: str, body: str) -> None:
        ...     ...
        >>> @task
        ... async def touch(user_id: int, db) -> None:
        ...     ...
        >>> # await send_email("user@example.com", "Hello", "World")    runs it now
        >>> # await send_email.delay("user@example.com", "Hello", "World")    in a worker
    """

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

    def declare_task(fn: Callable[..., Awaitable[R]]) -> Task[R]:
        return Task(fn, options=options)

    if function is not None:
        return declare_task(function)
    return declare_task
