"""The task queue's dead letters: tasks that failed for good and messages no worker could read.

`core tasks failed` and `core tasks retry` run on these; so can a script or an admin view.
"""

from __future__ import annotations

from typing import Any

from core.errors import ConfigurationError, NotFoundError
from core.ports.tasks import DeadLetters, FailedTask
from core.tasks.task import RETRY_KEY

__all__ = ("failed_tasks", "retry_failed")


def _dead_letters(container: Any) -> DeadLetters:
    queue = container.tasks.queue()
    if not isinstance(queue, DeadLetters):
        raise ConfigurationError(
            f"The task queue {type(queue).__name__} keeps no dead letters "
            "(it has no failed_tasks/failed_task/forget_failed)."
        )
    return queue


async def failed_tasks(container: Any, limit: int = 100) -> list[FailedTask]:
    """The newest `limit` dead letters of `container`'s task queue, newest first.

    Example:
        >>> [f.name for f in await failed_tasks(app.container)]  # doctest: +SKIP
        ['emails.send_email']
    """
    return await _dead_letters(container).failed_tasks(limit)


async def retry_failed(container: Any, key: str) -> str:
    """Send a dead-lettered task again, as a new run with its retries afresh; return its id.

    The dead letter is deleted once the run is enqueued. It goes to the queue it was sent to,
    with the arguments it was sent with.

    Args:
        key: the dead letter's id, or the id of the task run that failed.

    Raises:
        NotFoundError: no dead letter has that id.
        ConfigurationError: the dead letter is a message that named no task.
    """
    letters = _dead_letters(container)
    letter = await letters.failed_task(key)
    if letter is None:
        raise NotFoundError(f"No failed task has id {key!r} (see `core tasks failed`).")
    if letter.name is None:
        raise ConfigurationError(
            f"Failed task {letter.id} cannot be sent again: the message named no task "
            f"({letter.error})."
        )
    kwargs = dict(letter.kwargs)
    retry = kwargs.pop(RETRY_KEY, None)
    if isinstance(retry, dict) and retry.get("queue"):
        # Sent to another queue than the task's own: its retries go on following it there.
        kwargs[RETRY_KEY] = {"attempt": 0, "queue": retry["queue"]}
    queue = container.tasks.queue()
    target = letter.queue or container.settings().task_default_queue
    task_id: str = await queue.enqueue(letter.name, letter.args, kwargs, queue=target)
    await letters.forget_failed(letter.id)
    return task_id
