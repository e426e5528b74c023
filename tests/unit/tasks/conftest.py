"""Fixtures for the task layer: a manual clock, an app whose task queue runs on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.app import CoreApp
from core.declarations import Declarations
from core.ports.tasks import TaskResult
from core.tasks import get_result
from core.testing.plugin import test_settings


@pytest.fixture(autouse=True)
def _isolated(isolated_declarations: Declarations) -> Declarations:
    """Tasks a test declares are forgotten after it, as if each test were its own process."""
    return isolated_declarations


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_app(clock: ManualClock, **settings: Any) -> CoreApp:
    """A CoreApp on the memory backends whose task queue measures etas on `clock`."""
    application = CoreApp(settings=test_settings(**settings))
    # Overridden before first use, so the container's Singleton never builds its own.
    application.container.tasks.queue.override(InMemoryTaskQueue(clock=clock))
    return application


@pytest.fixture
async def app(clock: ManualClock) -> AsyncIterator[CoreApp]:
    """A running app (its queue started, embedded worker included), its container ambient."""
    application = make_app(clock)
    async with application.lifespan():
        await application.create_all()
        yield application


async def settle(turns: int = 50) -> None:
    """Let the in-memory worker pick up and finish what is due, without reading a clock."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def finished(task_id: str) -> TaskResult:
    """The task's result once it is ready; fails the test if the worker never finishes it."""
    for _ in range(20):
        result = await get_result(task_id)
        if result.ready:
            return result
        await settle()
    pytest.fail(f"task {task_id} did not finish")
