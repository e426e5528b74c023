"""already_processed and @idempotent: one effect per event and group, in the handler's own
transaction."""

from __future__ import annotations

from typing import Any

import pytest

from core import CoreApp
from core.errors import ConfigurationError
from core.messaging import Event, ProcessedEvent, already_processed, idempotent
from core.messaging.consumers import _group


async def test_the_first_call_records_the_event_and_later_ones_see_it(shop: CoreApp) -> None:
    event = Event.new("order.created", {"id": 1})

    async with shop.session() as db:
        assert await already_processed(event, db, group="billing") is False
        assert await already_processed(event, db, group="billing") is True
        assert await already_processed(event, db, group="shipping") is False
    async with shop.session() as db:
        assert await already_processed(event, db, group="billing") is True
        assert await ProcessedEvent.objects.using(db).count() == 2


async def test_a_rolled_back_handler_leaves_no_record(shop: CoreApp) -> None:
    event = Event.new("order.created", {"id": 1})

    with pytest.raises(RuntimeError):
        async with shop.session() as db:
            assert await already_processed(event, db, group="billing") is False
            raise RuntimeError("the handler failed")

    async with shop.session() as db:
        assert await already_processed(event, db, group="billing") is False


async def test_idempotent_runs_a_handler_once_per_event(shop: CoreApp) -> None:
    calls: list[str] = []

    class Handlers:
        @idempotent
        async def handle(self, event: Event, db: Any) -> str:
            calls.append(event.name)
            return "done"

    event = Event.new("x", None)
    token = _group.set("billing")
    try:
        async with shop.session() as db:
            assert await Handlers().handle(event, db) == "done"
            assert await Handlers().handle(event, db=db) is None
    finally:
        _group.reset(token)
    assert calls == ["x"]


async def test_outside_a_consumer_the_group_is_required(shop: CoreApp) -> None:
    async with shop.session() as db:
        with pytest.raises(ConfigurationError, match="group="):
            await already_processed(Event.new("x", None), db)
