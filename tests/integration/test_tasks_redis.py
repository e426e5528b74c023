"""`@task` and `@periodic_task` on Redis, run by real `core worker` and `core scheduler` processes.

Each test writes a tiny project (`src/main.py` declaring the tasks and `app = CoreApp()`) in
its temporary folder and runs the console script there with TASK_BROKER=redis and a key prefix
of its own. This process sends the tasks: it declares tasks under the same names (their
bodies never run here) and uses `.apply_async()` on its own CoreApp, as a web app would. The
tasks record each run in files, which is how attempts are counted across processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import CoreApp
from core.ports.tasks import TaskResult, TaskStatus
from core.settings import Settings
from core.tasks import Task, task, wait_for_result
from core.testing import isolated_declarations
from tests import services
from tests.migration_roundtrip import core_command

pytestmark = pytest.mark.redis

PROJECT = """
    import asyncio
    import os
    import time
    from pathlib import Path

    from core import CoreApp
    from core.tasks import periodic_task, task

    STATE = Path(os.environ["TASKS_STATE_DIR"])


    def record(name: str, line: str = "") -> int:
        # O_APPEND writes of one short line are atomic: several processes may record at once.
        with open(STATE / name, "a") as file:
            file.write(f"{line or time.time()}\\n")
        return len((STATE / name).read_text().splitlines())


    @task(name="it.stamp")
    async def stamp(label: str) -> float:
        record(f"stamp-{label}")
        return time.time()


    @task(name="it.flaky", retry=3, retry_backoff=0.2, retry_jitter=False)
    async def flaky(key: str) -> int:
        attempts = record(f"flaky-{key}")
        if attempts < 3:
            raise ConnectionError(f"attempt {attempts} failed")
        return attempts


    @task(name="it.slow")
    async def slow(key: str, seconds: float) -> str:
        attempts = record(f"slow-{key}")
        if attempts == 1:
            record(f"slow-{key}-started")
            await asyncio.sleep(seconds)
        return f"done on attempt {attempts}"


    @periodic_task(interval=1, name="it.beat")
    async def beat() -> None:
        record("beat")


    app = CoreApp()
"""


@pytest.fixture
def declared() -> Iterator[None]:
    """This process's declarations are forgotten after the test."""
    with isolated_declarations():
        yield


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    async with services.redis_prefix(redis_url, "core-test-tasks") as prefix:
        yield prefix


class Project:
    """The temporary project: its environment, its state folder and its processes."""

    def __init__(self, root: Path, redis_url: str, prefix: str) -> None:
        self.root = root
        self.state = root / "state"
        self.state.mkdir()
        (root / "src").mkdir()
        (root / "src" / "__init__.py").write_text("")
        (root / "src" / "main.py").write_text(textwrap.dedent(PROJECT))
        self.settings = {
            "TASK_BROKER": "redis",
            "REDIS_URL": redis_url,
            "TASK_KEY_PREFIX": prefix,
            "TASK_REDELIVERY_TIMEOUT": "1",
            "DATABASE_URL": "memory://",
        }
        self.env = {**os.environ, **self.settings, "TASKS_STATE_DIR": str(self.state)}
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, *args: str, ready: str) -> subprocess.Popen[str]:
        """Run `core <args>` from the project root and wait for its `ready` line."""
        process = subprocess.Popen(
            [*core_command(), *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            seen.append(line)
            if line.startswith(ready):
                return process
        pytest.fail(f"core {' '.join(args)} did not get ready: {''.join(seen)}")

    def lines(self, name: str) -> list[str]:
        path = self.state / name
        return path.read_text().splitlines() if path.exists() else []

    def app(self) -> CoreApp:
        """This process's CoreApp on the same Redis and prefix: the sending side."""
        values: dict[str, Any] = {key.lower(): value for key, value in self.settings.items()}
        return CoreApp(settings=Settings(_env_file=None, **values))  # type: ignore[call-arg]

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def project(tmp_path: Path, redis_url: str, prefix: str, declared: None) -> Iterator[Project]:
    project = Project(tmp_path, redis_url, prefix)
    try:
        yield project
    finally:
        project.stop_all()


def sender_tasks() -> dict[str, Task[Any]]:
    """The project's tasks as the sending process declares them: same names, unused bodies."""

    @task(name="it.stamp")
    async def stamp(label: str) -> float:
        raise AssertionError("runs in the worker")

    @task(name="it.flaky")
    async def flaky(key: str) -> int:
        raise AssertionError("runs in the worker")

    @task(name="it.slow")
    async def slow(key: str, seconds: float) -> str:
        raise AssertionError("runs in the worker")

    return {"stamp": stamp, "flaky": flaky, "slow": slow}


async def finished(task_id: str, within: float = 20) -> TaskResult:
    async with asyncio.timeout(within):
        return await wait_for_result(task_id, poll_interval=0.05)


async def recorded(project: Project, name: str) -> None:
    """Wait until the worker process recorded `name`."""
    async with asyncio.timeout(20):
        while not project.lines(name):  # noqa: ASYNC110 (another process writes the file)
            await asyncio.sleep(0.05)


async def test_a_task_sent_with_a_countdown_runs_after_it(project: Project) -> None:
    project.start("worker", "--queue", "default", "--concurrency", "4", ready="worker:")
    tasks = sender_tasks()

    async with project.app().lifespan():
        sent_at = time.time()
        task_id = await tasks["stamp"].apply_async(args=("later",), countdown=2)
        now_id = await tasks["stamp"].delay("now")
        assert (await finished(now_id)).status is TaskStatus.SUCCESS
        assert project.lines("stamp-later") == []
        result = await finished(task_id)

    assert result.status is TaskStatus.SUCCESS
    assert result.value - sent_at >= 2.0
    assert len(project.lines("stamp-later")) == 1


async def test_a_task_failing_twice_then_succeeding_runs_three_times(project: Project) -> None:
    project.start("worker", ready="worker:")
    tasks = sender_tasks()

    async with project.app().lifespan():
        task_id = await tasks["flaky"].delay("k1")
        result = await finished(task_id)

    assert result == TaskResult(task_id, TaskStatus.SUCCESS, 3)
    assert len(project.lines("flaky-k1")) == 3


async def test_a_task_whose_worker_was_killed_completes_on_another(project: Project) -> None:
    first = project.start("worker", "--concurrency", "1", ready="worker:")
    tasks = sender_tasks()

    async with project.app().lifespan():
        task_id = await tasks["slow"].delay("k2", 60)
        await recorded(project, "slow-k2-started")
        first.send_signal(signal.SIGKILL)  # no graceful stop, no acknowledgement
        first.wait()
        project.start("worker", "--concurrency", "1", ready="worker:")
        result = await finished(task_id)

    assert result.value == "done on attempt 2"
    assert len(project.lines("slow-k2")) == 2


async def test_sigterm_lets_the_running_task_finish_before_the_worker_exits(
    project: Project,
) -> None:
    worker = project.start("worker", "--concurrency", "1", ready="worker:")
    tasks = sender_tasks()

    async with project.app().lifespan():
        task_id = await tasks["slow"].delay("k3", 1.5)
        await recorded(project, "slow-k3-started")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        result = await finished(task_id, within=1)

    assert result.value == "done on attempt 1"
    assert worker.stdout is not None
    assert "worker: stopped" in worker.stdout.read()


async def test_two_schedulers_send_a_periodic_task_once_per_tick(project: Project) -> None:
    project.start("worker", ready="worker:")
    schedulers = [project.start("scheduler", ready="scheduler:") for _ in range(2)]

    watch_from = time.time()
    await asyncio.sleep(5)
    watch_until = time.time()
    for scheduler in schedulers:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=20) == 0
    await asyncio.sleep(0.5)  # the last tick's run

    runs = [float(line) for line in project.lines("beat")]
    watched = [run for run in runs if watch_from + 0.5 <= run <= watch_until]
    # Every tick of the watched seconds ran once: a tick sent twice would show two runs in
    # the same second (runs follow their tick within a few milliseconds).
    assert len(watched) >= 3
    assert len({int(run) for run in runs}) == len(runs)


async def test_a_claim_is_won_once_across_queues_until_it_expires(
    redis_url: str, prefix: str
) -> None:
    from core.adapters.taskiq.queue import TaskiqTaskQueue

    first, second = (TaskiqTaskQueue(redis_url, key_prefix=prefix) for _ in range(2))
    for queue in (first, second):
        await queue.start()
    try:
        outcomes = await asyncio.gather(
            *(queue.claim("schedule:beat:1000", ttl=0.2) for queue in (first, second) * 5)
        )
        assert sorted(outcomes) == [False] * 9 + [True]
        await asyncio.sleep(0.3)
        assert await second.claim("schedule:beat:1000", ttl=0.2) is True
    finally:
        for queue in (first, second):
            await queue.stop()
