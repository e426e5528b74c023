"""Cancellation checks for the framework's loops that call Redis (workers, schedulers, polling).

On Python 3.11, `asyncio.wait_for` returns the inner result instead of raising when a
`cancel()` arrives just as the inner awaitable finishes (CPython issue #86296, fixed in 3.12).
redis-py sends every command through `wait_for`, so a loop making Redis calls can lose the one
`cancel()` meant to stop it and run on forever. The request is still counted by
`Task.cancelling()`, so a loop that calls `raise_if_cancelled()` each turn stops anyway.
"""

from __future__ import annotations

import asyncio

__all__ = ("cancel_requested", "raise_if_cancelled")


def cancel_requested() -> bool:
    """Whether the running asyncio task has been asked to cancel (and has not uncancelled)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelled() -> None:
    """Raise `CancelledError` when the running task was asked to cancel, even if a library
    swallowed the `CancelledError` that request delivered."""
    if cancel_requested():
        raise asyncio.CancelledError
