"""What `core worker` logs: one INFO line per task run, with its name, id, attempt, duration
and outcome, and the run's id on every line the task writes."""

from __future__ import annotations

import logging

import pytest

from core.adapters.memory.tasks import ManualClock
from core.app import CoreApp
from core.logs import ContextFilter, use_log_ids
from core.tasks import task
from tests.unit.tasks.conftest import finished, settle


def _runs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "core.tasks" and hasattr(r, "outcome")]


async def test_each_run_logs_one_line_with_its_id_attempt_duration_and_outcome(
    app: CoreApp, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    calls: list[int] = []

    @task(retry=1, retry_backoff=1, retry_jitter=False)
    async def sync_account(account: int) -> str:
        calls.append(account)
        logging.getLogger("billing.client").info("syncing %d", account)
        if len(calls) == 1:
            raise ConnectionError("upstream down")
        return "synced"

    first = await sync_account.delay(42)
    await settle()
    clock.advance(60)
    result = await finished(first)

    assert result.value == "synced"
    retried, succeeded = _runs(caplog)
    assert (retried.levelno, succeeded.levelno) == (logging.INFO, logging.INFO)
    assert (retried.task, retried.attempt, retried.outcome) == (  # type: ignore[attr-defined]
        sync_account.name,
        1,
        "retry",
    )
    assert retried.task_id == first  # type: ignore[attr-defined]
    assert (succeeded.attempt, succeeded.outcome) == (2, "success")  # type: ignore[attr-defined]
    assert succeeded.task_id not in (None, first), "the retry is a run of its own"  # type: ignore[attr-defined]
    assert all(r.duration_ms >= 0 for r in (retried, succeeded))  # type: ignore[attr-defined]
    assert f"Task {sync_account.name} {first} retry (attempt 1)" in retried.getMessage()


async def test_a_run_that_fails_for_good_says_failure(
    app: CoreApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    @task
    async def explode() -> None:
        raise ValueError("no")

    task_id = await explode.delay()
    await finished(task_id)

    [line] = _runs(caplog)
    assert (line.task_id, line.outcome, line.attempt) == (task_id, "failure", 1)  # type: ignore[attr-defined]


async def test_a_run_carries_the_ids_of_the_request_or_event_that_sent_it(
    app: CoreApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())

    @task
    async def notify(user: int) -> None:
        logging.getLogger("mailer").info("mailing %d", user)

    with use_log_ids("req-9", "checkout-9"):
        task_id = await notify.delay(5)
    await finished(task_id)

    [line] = [r for r in caplog.records if r.name == "mailer"]
    assert (line.request_id, line.correlation_id, line.task_id) == (  # type: ignore[attr-defined]
        "req-9",
        "checkout-9",
        task_id,
    )
