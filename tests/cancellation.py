"""Helpers for tests of loops that must stop on one `cancel()`, even when a library loses it.

Python 3.11's `asyncio.wait_for` returns normally when a cancel lands just as the awaited call
finishes (CPython #86296); redis-py sends every command through it. `lose_a_cancellation` does
the same on purpose, so a test can check the loop stops anyway (see `core.cancellation`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest


async def lose_a_cancellation(waiting: asyncio.Event) -> None:
    """Set `waiting`, then wait for a cancellation and swallow it."""
    waiting.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


async def assert_stops_when_cancelled(task: asyncio.Task[Any], *, within: float) -> None:
    """Cancel `task` once and check that it ends, cancelled, within `within` seconds."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=within)
    assert done, f"{task.get_name()} kept running after it was cancelled"
    with pytest.raises(asyncio.CancelledError):
        await task
