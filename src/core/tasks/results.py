"""Reading what became of a sent task: `get_result`, `get_status`, `wait_for_result`."""

from __future__ import annotations

import asyncio
from typing import Any

from core.cancellation import raise_if_cancelled
from core.context import current_container
from core.ports.tasks import TaskQueue, TaskResult, TaskStatus
from core.tasks.binding import RETRIED_KEY

__all__ = ("get_result", "get_status", "wait_for_result")


async def get_result(task_id: str) -> TaskResult:
    """Where the task sent as `task_id` stands now, retries included; never waits.

    A failed attempt that will be retried does not end the task: its result stays `PENDING`
    until the last attempt finished, then reports that attempt's value or error.

    Raises:
        TaskQueueUnavailableError: the queue's engine cannot be reached.

    Example:
        >>> from core.tasks import get_result
        >>> result = await get_result(task_id)  # doctest: +SKIP
        >>> result.status, result.value  # doctest: +SKIP
        (<TaskStatus.SUCCESS: 'success'>, 42)
    """
    queue = _queue()
    result = await queue.result(task_id)
    # Each retried attempt links to the next; the chain is at most `retry + 1` long.
    while result.status is TaskStatus.SUCCESS and _retried_as(result.value) is not None:
        result = await queue.result(_retried_as(result.value) or "")
    return TaskResult(task_id, result.status, result.value, result.error)


async def get_status(task_id: str) -> TaskStatus:
    """`PENDING`, `SUCCESS` or `FAILURE`: the status `get_result` reports.

    Example:
        >>> from core.tasks import get_status
        >>> await get_status(task_id)  # doctest: +SKIP
        <TaskStatus.PENDING: 'pending'>
    """
    return (await get_result(task_id)).status


async def wait_for_result(task_id: str, *, poll_interval: float = 0.1) -> TaskResult:
    """Poll `get_result` until the task finished (success or failure) and return it.

    For scripts and tests; a request handler should not wait for a background task. Bound
    the wait with `asyncio.timeout`.

    Args:
        poll_interval: seconds between two reads.

    Example:
        >>> import asyncio
        >>> from core.tasks import wait_for_result
        >>> async with asyncio.timeout(30):  # doctest: +SKIP
        ...     result = await wait_for_result(task_id)
    """
    while True:
        # An expired asyncio.timeout that a Redis call swallowed still ends the wait.
        raise_if_cancelled()
        result = await get_result(task_id)
        if result.ready:
            return result
        await asyncio.sleep(poll_interval)


def _retried_as(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        linked = value.get(RETRIED_KEY)
        return linked if isinstance(linked, str) else None
    return None


def _queue() -> TaskQueue:
    # The queue of the container `current_container()` finds (a script: the process default).
    queue: TaskQueue = current_container().tasks.queue()
    return queue
