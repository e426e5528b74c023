"""Dead letters on the in-memory queue: a task that exhausts its retries is kept, listed, and
sent again by `retry_failed` (what `core tasks failed` and `core tasks retry` run)."""

from __future__ import annotations

import pytest

from core.adapters.memory.tasks import ManualClock
from core.app import CoreApp
from core.errors import NotFoundError
from core.ports.tasks import TaskStatus
from core.tasks import task
from core.tasks.dead_letters import failed_tasks, retry_failed
from tests.unit.tasks.conftest import finished, settle


async def test_a_task_that_exhausts_its_retries_is_dead_lettered_and_can_be_sent_again(
    app: CoreApp, clock: ManualClock
) -> None:
    attempts: list[str] = []

    @task(queue="billing", retry=1, retry_backoff=1, retry_jitter=False)
    async def charge(order: int, *, cents: int) -> str:
        attempts.append(f"{order}:{cents}")
        if len(attempts) < 3:
            raise RuntimeError(f"declined {len(attempts)}")
        return "charged"

    @task
    async def fine() -> str:
        return "ok"

    first = await charge.delay(7, cents=250)
    await finished(await fine.delay())
    for _ in range(3):
        await settle()
        clock.advance(60)
    await settle()

    [letter] = await failed_tasks(app.container)
    assert (letter.reason, letter.name, letter.queue) == ("failed", charge.name, "billing")
    assert letter.error == "RuntimeError: declined 2"
    assert (letter.args, dict(letter.kwargs)["cents"]) == ((7,), 250)
    assert letter.task_id != first, "the last attempt's run failed, after a retry"
    assert letter.retryable

    again = await retry_failed(app.container, letter.task_id or "")
    result = await finished(again)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "charged")
    assert attempts == ["7:250"] * 3
    assert await failed_tasks(app.container) == [], "the dead letter is gone once sent again"

    with pytest.raises(NotFoundError):
        await retry_failed(app.container, letter.id)
