"""on_commit: callbacks after a unit of work commits, none after a rollback."""

from __future__ import annotations

import pytest

from core import CoreApp
from core.errors import NoActiveContextError
from core.models.session import on_commit, unit_of_work


async def test_callbacks_run_after_commit_in_order(shop: CoreApp) -> None:
    calls: list[str] = []
    async with unit_of_work(shop.container) as db:
        on_commit(lambda: calls.append("first"), db)
        on_commit(lambda: calls.append("second"))  # the ambient session
        assert calls == []
    assert calls == ["first", "second"]


async def test_a_rollback_drops_the_callbacks(shop: CoreApp) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        async with unit_of_work(shop.container):
            on_commit(lambda: calls.append("never"))
            raise RuntimeError("rolled back")
    assert calls == []


async def test_a_failing_callback_is_logged_and_the_others_still_run(
    shop: CoreApp, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("oops")

    async with unit_of_work(shop.container):
        on_commit(broken)
        on_commit(lambda: calls.append("after"))
    assert calls == ["after"]
    assert "on_commit callback" in caplog.text


def test_outside_a_unit_of_work_a_session_is_required() -> None:
    with pytest.raises(NoActiveContextError):
        on_commit(lambda: None)
