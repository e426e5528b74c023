"""`core worker`, `core scheduler` and `core tasks`: run, schedule and list the project's tasks,
and the tasks that failed for good (`core tasks failed`, `core tasks retry ID`).

Each loads the project's app (APP_MODULE, default `src.main:app`), so the tasks its modules
declare and the container its settings build are the ones used, and starts the app's
resources as the server would.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from cyclopts import App, Parameter

from core.cli.app import app
from core.discovery import load_app, read_settings
from core.errors import ConfigurationError
from core.logs import configure_logging

__all__ = ("failed", "retry", "scheduler", "tasks", "tasks_app", "worker")

AppOption = Annotated[
    str | None, Parameter(name="--app", help="module:attr of the CoreApp (APP_MODULE).")
]


@app.command
def worker(
    *,
    queue: Annotated[list[str] | None, Parameter(name=("--queue", "-q"), negative="")] = None,
    concurrency: Annotated[int, Parameter(name=("--concurrency", "-c"))] = 4,
    app_module: AppOption = None,
) -> None:
    """Run the project's tasks from the task queue (TASK_BROKER=redis) until stopped.

    SIGTERM or Ctrl-C stops it gracefully: it takes no new task and finishes the running
    ones. A second signal stops it at once; the tasks it abandons run again on another worker
    after TASK_REDELIVERY_TIMEOUT.

    Args:
        queue: A queue to consume; repeat for several. Default: TASK_DEFAULT_QUEUE and every
            queue a declared task names.
        concurrency: How many tasks run at once.
    """
    if concurrency < 1:
        raise ConfigurationError(f"--concurrency must be at least 1, got {concurrency}.")
    application = _core_app(app_module)
    settings = application.settings
    if settings.task_broker == "memory":
        raise ConfigurationError(
            "TASK_BROKER=memory runs tasks inside the app's own process; set TASK_BROKER=redis "
            "(and REDIS_URL) to run them in `core worker` processes."
        )
    from core.tasks import declared_tasks

    declared = declared_tasks(application.container.declarations())
    queues = list(
        dict.fromkeys(
            queue or [settings.task_default_queue, *(t.queue for t in declared if t.queue)]
        )
    )
    for declared_task in declared:
        if declared_task.timeout and declared_task.timeout > settings.task_redelivery_timeout:
            print(
                f"warning: task {declared_task.name} may run {declared_task.timeout:g}s, longer "
                f"than TASK_REDELIVERY_TIMEOUT={settings.task_redelivery_timeout:g}s: another "
                "worker would start it again while it still runs.",
                file=sys.stderr,
            )

    configure_logging(settings, process=True)

    async def serve() -> None:
        from core.metrics import metrics_server

        async with application.lifespan(), metrics_server(application.container):
            task_queue = application.container.tasks.queue()
            print(
                f"worker: consuming {', '.join(queues)} with concurrency {concurrency}; "
                f"{len(declared)} task(s) declared",
                flush=True,
            )
            await _until_signalled(
                lambda: task_queue.run_worker(queues, concurrency=concurrency),
                first="worker: finishing the running tasks (signal again to stop at once)",
                second="worker: stopping at once; unfinished tasks will run again elsewhere",
            )
        print("worker: stopped", flush=True)

    asyncio.run(serve())


@app.command
def scheduler(*, app_module: AppOption = None) -> None:
    """Send the project's periodic tasks to the task queue on their schedules until stopped.

    Run one or several: each tick of each task is sent once (a Redis claim per tick). With
    TASK_BROKER=memory the tasks also run in this process. Cron schedules are read in
    TIMEZONE; ticks missed while no scheduler ran are not caught up. With no periodic task
    declared it says so once and stays up, idle, until stopped.
    """
    application = _core_app(app_module)
    from core.tasks import Scheduler

    periodic = Scheduler(application.container)
    if not periodic.tasks:
        # Stay up: a scheduler Deployment or PM2 process that exited would be restarted in a
        # loop. Nothing to connect to either, so no lifespan.
        asyncio.run(
            _until_signalled(_idle, first="scheduler: stopping", second="scheduler: stopping")
        )
        print("scheduler: stopped", flush=True)
        return

    async def serve() -> None:
        async with application.lifespan():
            print(f"scheduler: {len(periodic.tasks)} periodic task(s)", flush=True)
            for run in periodic.upcoming():
                print(f"  {run.task.name}: next at {_local(run.at, periodic)}", flush=True)
            await _until_signalled(
                periodic.run,
                first="scheduler: stopping",
                second="scheduler: stopping",
            )
        print("scheduler: stopped", flush=True)

    asyncio.run(serve())


tasks_app = App(
    name="tasks", help="List the project's tasks; `failed` and `retry` for the dead letters."
)
app.command(tasks_app)


@tasks_app.default
def tasks(*, app_module: AppOption = None) -> None:
    """List the project's tasks: name, queue, retries, timeout, schedule and next run."""
    application = _core_app(app_module)
    from core.tasks import PeriodicTask, Scheduler, declared_tasks

    declared = declared_tasks(application.container.declarations())
    if not declared:
        print("No tasks: the app module declares no @task or @periodic_task.")
        return
    settings = application.settings
    timeline = Scheduler(application.container)
    upcoming = {run.task.name: run.at for run in timeline.upcoming()}
    rows = [
        (
            t.name,
            t.queue or settings.task_default_queue,
            str(t.retry),
            f"{t.timeout:g}s" if t.timeout else "-",
            t.schedule.describe() if isinstance(t, PeriodicTask) else "-",
            _local(upcoming[t.name], timeline) if t.name in upcoming else "-",
        )
        for t in declared
    ]
    header = ("NAME", "QUEUE", "RETRY", "TIMEOUT", "SCHEDULE", f"NEXT RUN ({settings.timezone})")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@tasks_app.command
def failed(*, limit: int = 50, app_module: AppOption = None) -> None:
    """List the tasks that failed for good and the task messages no worker could read.

    Newest first: a run that raised on its last allowed attempt (`failed`), or a message the
    worker acknowledged and set aside (`malformed`: no data, not a task message, a bad label).

    Args:
        limit: Show at most this many.
    """
    application = _core_app(app_module)
    from core.tasks.dead_letters import failed_tasks

    async def read() -> list[Any]:
        async with application.lifespan():
            return await failed_tasks(application.container, limit)

    letters = asyncio.run(read())
    if not letters:
        if application.settings.task_broker == "memory":
            print(
                "No failed tasks in this process: with TASK_BROKER=memory the dead letters "
                "live in the app's own process (see core.tasks.dead_letters)."
            )
        else:
            print("No failed tasks.")
        return
    rows = [("ID", "FAILED AT (UTC)", "REASON", "TASK", "QUEUE", "TASK ID", "ERROR")]
    for letter in letters:
        error = letter.error.splitlines()[0] if letter.error else "-"
        rows.append(
            (
                letter.id,
                letter.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                letter.reason,
                letter.name or "-",
                letter.queue or "-",
                letter.task_id or "-",
                error if len(error) <= 80 else error[:77] + "...",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@tasks_app.command
def retry(key: str, /, *, app_module: AppOption = None) -> None:
    """Send a failed task again, as a new run with its retries afresh, and forget its failure.

    Args:
        key: The ID `core tasks failed` shows, or the failed run's task id.
    """
    application = _core_app(app_module)
    from core.tasks.dead_letters import retry_failed

    async def send() -> str:
        async with application.lifespan():
            return await retry_failed(application.container, key)

    print(f"Sent again as task {asyncio.run(send())}.")


async def _until_signalled(run: Callable[[], Awaitable[None]], *, first: str, second: str) -> None:
    """Run `run()` until SIGINT/SIGTERM: the first signal cancels it once, the second again.

    Cancelling `run_worker` once is its graceful stop, twice its hard stop.
    """
    loop = asyncio.get_running_loop()
    work = asyncio.ensure_future(run())
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        print(first if received == 1 else second, file=sys.stderr, flush=True)
        work.cancel()

    handled = (signal.SIGINT, signal.SIGTERM)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal)
    try:
        await work
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _idle() -> None:
    # Said once the signal handlers are in place: a SIGTERM after this line stops it cleanly.
    print("scheduler: no periodic tasks declared by the app module; idle until stopped", flush=True)
    await asyncio.Event().wait()


def _core_app(app_module: str | None) -> Any:
    spec = app_module or read_settings().app_module
    application = load_app(spec)
    if not hasattr(application, "container") or not hasattr(application, "lifespan"):
        raise ConfigurationError(f"{spec!r} is not a CoreApp.")
    return application


def _local(moment: datetime, timeline: Any) -> str:
    return moment.astimezone(timeline.timezone).strftime("%Y-%m-%d %H:%M:%S %Z")
