"""`@task`: inline calls, delay, countdown/eta, retries, timeouts, arguments, sessions."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import core.context
from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.app import CoreApp
from core.context import current_container, current_session
from core.errors import NotRunningError
from core.ports.tasks import TaskResult, TaskStatus
from core.tasks import (
    Task,
    TaskTimeoutError,
    declared_tasks,
    get_result,
    get_status,
    task,
    wait_for_result,
)
from core.tasks.binding import RETRIED_KEY
from tests.cancellation import assert_stops_when_cancelled, lose_a_cancellation
from tests.models import Author
from tests.unit.tasks.conftest import finished, make_app, settle


async def test_awaiting_a_task_runs_it_inline_without_the_queue(app: CoreApp) -> None:
    calls: list[tuple[str, str, str]] = []

    @task(queue="emails", retry=3, timeout=300)
    async def send_email(to: str, subject: str, body: str) -> str:
        calls.append((to, subject, body))
        return f"sent to {to}"

    assert await send_email("user@example.com", "Hello", "World") == "sent to user@example.com"
    assert calls == [("user@example.com", "Hello", "World")]
    queue: Any = app.container.tasks.queue()
    assert queue._queued == {}  # nothing went through the queue


async def test_an_inline_call_works_with_no_app_running() -> None:
    @task
    async def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, Task)
    assert await add(2, 3) == 5


async def test_delay_sends_a_run_to_the_queue_and_returns_its_id(app: CoreApp) -> None:
    ran: list[dict[str, Any]] = []

    @task(queue="emails")
    async def send_email(to: str, subject: str, body: str = "") -> str:
        ran.append({"to": to, "subject": subject, "body": body})
        return "ok"

    task_id = await send_email.delay("user@example.com", "Hello", body="World")

    assert isinstance(task_id, str) and task_id
    assert await finished(task_id) == TaskResult(task_id, TaskStatus.SUCCESS, "ok")
    assert ran == [{"to": "user@example.com", "subject": "Hello", "body": "World"}]
    assert await get_status(task_id) is TaskStatus.SUCCESS


async def test_delay_sends_to_the_task_queue_or_the_default_one(clock: ManualClock) -> None:
    @task(queue="emails")
    async def on_emails() -> None:
        return None

    @task
    async def on_default() -> None:
        return None

    application = make_app(clock, task_default_queue="general")
    queue: Any = application.container.tasks.queue()
    async with application.lifespan():
        # Only a worker on "general" is started, so what it runs shows where each one went.
        await queue.stop()
        worker = asyncio.create_task(queue.run_worker(["general"], concurrency=1))
        try:
            default_id = await on_default.delay()
            emails_id = await on_emails.delay()
            other_id = await on_emails.apply_async(queue="general")
            await settle()
            assert (await get_result(default_id)).status is TaskStatus.SUCCESS
            assert (await get_result(emails_id)).status is TaskStatus.PENDING
            assert (await get_result(other_id)).status is TaskStatus.SUCCESS
        finally:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker


async def test_countdown_runs_no_earlier_than_asked(app: CoreApp, clock: ManualClock) -> None:
    ran_at: list[datetime] = []

    @task
    async def remind(text: str) -> str:
        ran_at.append(clock.now())
        return text

    sent_at = clock.now()
    task_id = await remind.apply_async(args=("call mom",), countdown=60)

    await settle()
    clock.advance(59)
    await settle()
    assert (await get_result(task_id)).status is TaskStatus.PENDING
    clock.advance(1)
    assert (await finished(task_id)).value == "call mom"
    assert ran_at == [sent_at + timedelta(seconds=60)]


async def test_eta_runs_no_earlier_than_asked(app: CoreApp, clock: ManualClock) -> None:
    @task
    async def remind(text: str) -> str:
        return text

    eta = clock.now() + timedelta(hours=2)
    task_id = await remind.apply_async(kwargs={"text": "later"}, eta=eta)

    clock.advance(timedelta(hours=1))
    await settle()
    assert (await get_result(task_id)).status is TaskStatus.PENDING
    clock.advance(timedelta(hours=1))
    assert (await finished(task_id)).value == "later"


async def test_countdown_and_eta_together_or_a_naive_eta_are_refused(app: CoreApp) -> None:
    @task
    async def noop() -> None:
        return None

    with pytest.raises(ValueError, match="not both"):
        await noop.apply_async(countdown=5, eta=datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        await noop.apply_async(eta=datetime(2030, 1, 1))


async def test_a_task_that_fails_twice_then_succeeds_runs_three_times(
    app: CoreApp, clock: ManualClock
) -> None:
    attempts: list[datetime] = []

    @task(retry=3, retry_backoff=10, retry_jitter=False)
    async def flaky(n: int) -> int:
        attempts.append(clock.now())
        if len(attempts) < 3:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        return n * 2

    started = clock.now()
    task_id = await flaky.delay(21)
    await settle()
    assert len(attempts) == 1
    assert (await get_result(task_id)).status is TaskStatus.PENDING  # a retry is coming

    clock.advance(10)  # first retry after retry_backoff
    await settle()
    assert len(attempts) == 2
    clock.advance(19)  # the second waits twice as long
    await settle()
    assert len(attempts) == 2
    clock.advance(1)

    assert await finished(task_id) == TaskResult(task_id, TaskStatus.SUCCESS, 42)
    assert [(moment - started).total_seconds() for moment in attempts] == [0, 10, 30]


async def test_retries_stop_after_retry_times_and_report_the_last_error(
    app: CoreApp, clock: ManualClock
) -> None:
    attempts: list[int] = []

    @task(retry=2, retry_backoff=1, retry_jitter=False)
    async def doomed() -> None:
        attempts.append(len(attempts) + 1)
        raise ValueError(f"no luck {len(attempts)}")

    task_id = await doomed.delay()
    for _ in range(5):
        await settle()
        clock.advance(60)

    result = await finished(task_id)
    assert attempts == [1, 2, 3]  # the first run and its two retries
    assert result == TaskResult(task_id, TaskStatus.FAILURE, error="ValueError: no luck 3")


async def test_only_the_exceptions_in_retry_on_are_retried(
    app: CoreApp, clock: ManualClock
) -> None:
    attempts: list[str] = []

    @task(retry=3, retry_on=ConnectionError, retry_jitter=False)
    async def strict(kind: str) -> None:
        attempts.append(kind)
        raise (ConnectionError if kind == "network" else ValueError)(kind)

    bad_input = await strict.delay("input")
    assert (await finished(bad_input)).error == "ValueError: input"
    assert attempts == ["input"]


async def test_retries_follow_the_queue_a_task_was_sent_to(
    app: CoreApp, clock: ManualClock
) -> None:
    @task(queue="home", retry=1, retry_backoff=5, retry_jitter=False)
    async def flaky() -> None:
        raise ValueError("again")

    queue: Any = app.container.tasks.queue()
    task_id = await flaky.apply_async(queue="elsewhere")
    await settle()
    [retry_job] = queue._queued["elsewhere"]
    assert retry_job.queue == "elsewhere"
    assert (await queue.result(task_id)).value == {RETRIED_KEY: retry_job.task_id}


async def test_the_retry_backoff_doubles_up_to_its_cap_with_optional_jitter() -> None:
    @task(retry=10, retry_backoff=2, retry_backoff_max=30, retry_jitter=False)
    async def steady() -> None:
        return None

    @task(retry=10, retry_backoff=2, retry_backoff_max=30)
    async def jittery() -> None:
        return None

    assert [steady.retry_delay(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    for n in range(1, 7):
        assert all(0 <= jittery.retry_delay(n) <= steady.retry_delay(n) for _ in range(50))
    assert len({jittery.retry_delay(5) for _ in range(20)}) > 1


async def test_an_attempt_over_its_timeout_is_cancelled_and_fails(app: CoreApp) -> None:
    cancelled: list[bool] = []

    @task(timeout=0.01)
    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    task_id = await stuck.delay()
    async with asyncio.timeout(5):  # the attempt's timeout is real time: a few ms here
        result = await wait_for_result(task_id, poll_interval=0.005)

    assert result.status is TaskStatus.FAILURE
    assert result.error is not None
    assert result.error.startswith("TaskTimeoutError: Task ")
    assert "0.01s timeout" in result.error
    assert cancelled == [True]


async def test_a_timeout_around_wait_for_result_ends_it_even_when_a_read_loses_it(
    clock: ManualClock,
) -> None:
    # Python 3.11's asyncio.wait_for (inside every redis-py call) can swallow the cancel that
    # asyncio.timeout sends; the wait must end anyway.
    reading = asyncio.Event()

    class LosesOneCancel(InMemoryTaskQueue):
        async def result(self, task_id: str) -> TaskResult:
            found = await super().result(task_id)
            if not reading.is_set():
                await lose_a_cancellation(reading)
            return found

    application = make_app(clock)
    application.container.tasks.queue.override(LosesOneCancel(clock=clock))
    async with application.lifespan():

        @task
        async def never_runs() -> None:
            return None

        task_id = await never_runs.apply_async(countdown=3600)
        waiting = asyncio.create_task(wait_for_result(task_id, poll_interval=0.01))
        await asyncio.wait_for(reading.wait(), 5)
        # An expiring asyncio.timeout cancels the task it guards, once.
        await assert_stops_when_cancelled(waiting, within=5)


async def test_a_timed_out_attempt_is_retried_when_retries_remain(
    app: CoreApp, clock: ManualClock
) -> None:
    attempts: list[int] = []

    @task(timeout=0.01, retry=1, retry_backoff=0)
    async def slow_then_fast() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            await asyncio.Event().wait()
        return "done"

    task_id = await slow_then_fast.delay()
    async with asyncio.timeout(5):  # the attempt's timeout is real time: a few ms here
        result = await wait_for_result(task_id, poll_interval=0.005)

    assert result.value == "done"
    assert attempts == [1, 2]


async def test_a_timeout_error_raised_by_the_task_itself_is_not_relabelled(app: CoreApp) -> None:
    @task(timeout=60)
    async def upstream_timeout() -> None:
        raise TimeoutError("the API timed out")

    result = await finished(await upstream_timeout.delay())
    assert result.error == "TimeoutError: the API timed out"
    assert issubclass(TaskTimeoutError, TimeoutError)


async def test_arguments_json_cannot_carry_are_refused_naming_task_and_argument(
    app: CoreApp,
) -> None:
    @task(name="reports.build")
    async def build(when: Any, *, owner: Any = None) -> None:
        return None

    with pytest.raises(TypeError, match=r"task 'reports\.build'.*positional argument 0"):
        await build.delay(datetime(2030, 1, 1))
    with pytest.raises(TypeError, match=r"task 'reports\.build'.*keyword argument 'owner'"):
        await build.delay("2030-01-01", owner=object())
    with pytest.raises(TypeError, match=r"task 'reports\.build'.*keyword argument 'owner'"):
        await build.apply_async(args=["2030-01-01"], kwargs={"owner": {1, 2}})


async def test_a_call_the_function_cannot_take_is_refused_at_send_time(app: CoreApp) -> None:
    @task(name="emails.send")
    async def send_email(to: str, subject: str) -> None:
        return None

    with pytest.raises(TypeError, match=r"task 'emails\.send'.*missing a required argument"):
        await send_email.delay("user@example.com")
    with pytest.raises(TypeError, match=r"task 'emails\.send'.*unexpected keyword"):
        await send_email.delay("a", "b", cc="c")


async def test_sending_to_the_memory_queue_with_no_app_running_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env: the process default is the embedded one
    monkeypatch.setenv("TASK_BROKER", "memory")

    @task(name="emails.send")
    async def send_email(to: str) -> None:
        return None

    # Nothing in this process would ever run it: an error, never a task id.
    with pytest.raises(NotRunningError, match=r"'emails\.send'.*TASK_BROKER=redis.*worker"):
        await send_email.delay("user@example.com")
    with pytest.raises(NotRunningError):
        await send_email.apply_async(args=("user@example.com",), countdown=5)


async def test_a_db_parameter_gets_a_session_committed_on_success(app: CoreApp) -> None:
    @task
    async def register(email: str, db: Any) -> int:
        author = await Author.objects.create(email=email, name="A", db=db)
        return int(author.id)

    task_id = await register.delay("a@x.io")

    assert (await finished(task_id)).status is TaskStatus.SUCCESS
    async with app.session() as db:
        assert [a.email for a in await Author.objects.using(db).all()] == ["a@x.io"]


async def test_a_failed_attempt_rolls_its_session_back(app: CoreApp) -> None:
    @task
    async def half_done(db: Any) -> None:
        await Author.objects.create(email="ghost@x.io", name="Ghost", db=db)
        raise RuntimeError("after the write")

    result = await finished(await half_done.delay())

    assert result.error == "RuntimeError: after the write"
    async with app.session() as db:
        assert await Author.objects.using(db).count() == 0


async def test_a_task_without_db_still_has_an_ambient_session(app: CoreApp) -> None:
    @task
    async def count_authors() -> int:
        # No `db` parameter: QuerySets use the run's session, as the spec's cleanup task does.
        await Author.objects.create(email="b@x.io", name="B")
        return await Author.objects.count()

    assert (await finished(await count_authors.delay())).value == 1
    async with app.session() as db:
        assert await Author.objects.using(db).count() == 1, "the ambient session was committed"


async def test_a_task_without_db_rolls_its_ambient_session_back_when_it_fails(
    app: CoreApp,
) -> None:
    @task
    async def half_done() -> None:
        await Author.objects.create(email="ghost@x.io", name="Ghost")
        raise RuntimeError("after the write")

    assert (await finished(await half_done.delay())).error == "RuntimeError: after the write"
    async with app.session() as db:
        assert await Author.objects.using(db).count() == 0


async def test_a_run_that_never_touches_the_database_opens_no_session(
    app: CoreApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = app.container.database.database()
    opened: list[Any] = []
    open_session = database.session

    def counting() -> Any:
        opened.append(session := open_session())
        return session

    monkeypatch.setattr(database, "session", counting)

    @task
    async def pure(n: int) -> int:
        return n * 2

    @task
    async def reads() -> int:
        return await Author.objects.count()

    assert (await finished(await pure.delay(21))).value == 42
    assert opened == []
    assert (await finished(await reads.delay())).value == 0
    assert len(opened) == 1, "opened on first use, once"


async def test_a_container_parameter_gets_the_app_container(app: CoreApp) -> None:
    seen: list[Any] = []

    @task
    async def inspect_container(container: Any) -> str:
        seen.append(container)
        return str(container.settings().app_name)

    assert (await finished(await inspect_container.delay())).value == app.settings.app_name
    assert seen == [app.container]
    assert await inspect_container() == app.settings.app_name  # inline too


async def test_injected_parameters_cannot_be_sent(app: CoreApp) -> None:
    @task
    async def needs_db(n: int, db: Any) -> None:
        return None

    with pytest.raises(TypeError, match="'db' is filled in by the worker"):
        await needs_db.delay(1, db="mine")


async def test_an_inline_call_joins_the_callers_session(app: CoreApp) -> None:
    @task
    async def add_author(email: str, db: Any) -> None:
        await Author.objects.create(email=email, name="C", db=db)

    async with app.session() as db:
        await add_author("c@x.io")
        await add_author("d@x.io", db)  # passed positionally: used as given
        await db.rollback()  # the caller's transaction decides
    async with app.session() as db:
        assert await Author.objects.using(db).count() == 0

    await add_author("e@x.io")  # no caller session: a unit of work of its own, committed
    async with app.session() as db:
        assert await Author.objects.using(db).count() == 1


async def test_an_inline_call_outside_an_app_runs_in_a_unit_of_work_of_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "memory://")

    @task(name="needs.db")
    async def needs_db(db: Any, container: Any) -> bool:
        return db is current_session() and container is core.context.default_container()

    assert await needs_db() is True


async def test_two_apps_run_tasks_with_their_own_container(clock: ManualClock) -> None:
    ran_in: list[Any] = []

    @task
    async def where() -> str:
        ran_in.append(current_container())
        return str(current_container().settings().app_name)

    first, second = make_app(clock, app_name="first"), make_app(clock, app_name="second")
    async with first.lifespan():
        first_id = await where.delay()
        assert (await finished(first_id)).value == "first"
    async with second.lifespan():
        second_id = await where.delay()
        assert (await finished(second_id)).value == "second"
        # The first app's task ids mean nothing to the second app's queue.
        assert (await get_result(first_id)).status is TaskStatus.PENDING
    assert ran_in == [first.container, second.container]


async def test_a_task_declared_after_the_app_started_is_bound_on_first_send(
    app: CoreApp,
) -> None:
    @task
    async def late() -> str:
        return "bound"

    assert (await finished(await late.delay())).value == "bound"


async def test_the_container_binds_every_declared_task_when_its_queue_starts(
    clock: ManualClock,
) -> None:
    @task(queue="emails")
    async def early() -> None:
        return None

    queue = InMemoryTaskQueue(clock=clock)
    application = make_app(clock)
    application.container.tasks.queue.override(queue)
    async with application.lifespan():
        registered: Any = queue._functions
        assert set(registered) >= {t.name for t in declared_tasks()}
        assert registered[early.name].home == "emails"
        assert registered[early.name].container is application.container


async def test_bad_declarations_are_refused_at_import_time() -> None:
    def not_async() -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        task(not_async)  # type: ignore[arg-type]
    for options in ({"retry": -1}, {"timeout": 0}, {"retry_backoff": -1}, {"queue": ""}):
        with pytest.raises(ValueError):

            @task(**options)
            async def bad() -> None:
                return None


async def test_declaring_a_name_again_replaces_it_and_warns_on_another_function(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @task(name="dup")
    async def first() -> str:
        return "first"

    with caplog.at_level(logging.WARNING, logger="core.tasks"):

        @task(name="dup")
        async def second() -> str:
            return "second"

    assert [t for t in declared_tasks() if t.name == "dup"] == [second]
    assert "declared by" in caplog.text


async def test_a_task_keeps_the_function_name_and_doc() -> None:
    @task
    async def documented() -> None:
        """Does a thing."""

    assert documented.__doc__ == "Does a thing."
    assert documented.__name__ == "documented"
    assert documented.name == f"{__name__}.{documented.__qualname__}"
    assert documented.__qualname__.endswith("<locals>.documented")
    assert repr(documented).startswith("<Task ")
