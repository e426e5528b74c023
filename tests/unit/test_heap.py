"""A started app freezes the heap it holds, so full garbage collections skip it (core/heap.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core import CoreApp
from core.testing import test_settings


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


async def test_a_started_app_freezes_the_heap_and_unfreezes_it_when_it_stops() -> None:
    before = gc.get_freeze_count()
    app = CoreApp(settings=test_settings())
    async with app.lifespan():
        # The app, its container and every module loaded so far: skipped by collections.
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before


async def test_garbage_made_while_serving_is_still_collected() -> None:
    app = CoreApp(settings=test_settings())
    async with app.lifespan():
        node = _Node()
        dead = weakref.ref(node)
        del node
        gc.collect()
        assert dead() is None


async def test_the_heap_is_frozen_after_the_users_lifespan_has_started() -> None:
    before = gc.get_freeze_count()
    seen: list[int] = []

    @asynccontextmanager
    async def lifespan(_: CoreApp) -> AsyncIterator[None]:
        seen.append(gc.get_freeze_count())  # what it loads here is frozen with the rest
        yield

    async with CoreApp(settings=test_settings(), lifespan=lifespan).lifespan():
        assert seen == [before]
        assert gc.get_freeze_count() > before


async def test_two_started_apps_unfreeze_when_the_last_one_stops() -> None:
    before = gc.get_freeze_count()
    first, second = CoreApp(settings=test_settings()), CoreApp(settings=test_settings())
    async with first.lifespan():
        async with second.lifespan():
            pass
        assert gc.get_freeze_count() > before  # `first` still serves
    assert gc.get_freeze_count() == before


async def test_gc_freeze_after_startup_false_leaves_the_collector_alone() -> None:
    before = gc.get_freeze_count()
    app = CoreApp(settings=test_settings(gc_freeze_after_startup=False))
    async with app.lifespan():
        assert gc.get_freeze_count() == before
