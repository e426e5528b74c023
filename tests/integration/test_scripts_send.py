"""A script with no CoreApp and no setup call sends work, as Celery users expect: `.delay()`,
`.apply_async(countdown=...)` and `publish_event()` go through the process default container to
real brokers, and `core worker` / `core consumer` processes run them.

Each test writes a tiny project (`src/main.py`: a task or a consumer, and `app = CoreApp()`),
starts the worker or consumer there, then runs a script in a subprocess of its own that
imports the project's task, or publishes, and exits. Runs are recorded in files.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.migration_roundtrip import core_command

PROJECT = """
    import os
    from pathlib import Path

    from core import CoreApp
    from core.messaging import consumer, on_event
    from core.tasks import task

    STATE = Path(os.environ["SCRIPT_STATE_DIR"])


    def record(name: str, line: str) -> None:
        with open(STATE / name, "a") as file:
            file.write(line + "\\n")


    @task(name="script.stamp")
    async def stamp(label: str) -> str:
        record("stamp", label)
        return f"stamped {label}"


    @consumer("script-readers", topics=[os.environ["SCRIPT_TOPIC"]])
    class Readers:
        @on_event("note.written")
        async def on_note(self, event, db):
            record("notes", event.data["text"])


    app = CoreApp()
"""

SEND_TASKS = """
    import asyncio

    from core.tasks import wait_for_result
    from src.main import stamp


    async def main() -> None:
        now = await stamp.delay("now")
        later = await stamp.apply_async(args=("later",), countdown=1)
        for task_id in (now, later):
            async with asyncio.timeout(30):
                result = await wait_for_result(task_id, poll_interval=0.05)
            print(result.status.value, result.value)


    asyncio.run(main())
"""

PUBLISH = """
    import asyncio
    import os

    from core.messaging import publish_event


    async def main() -> None:
        event = await publish_event(
            "note.written", data={"text": "from a script"}, topic=os.environ["SCRIPT_TOPIC"]
        )
        print("published", event.name)


    asyncio.run(main())
"""


class Project:
    def __init__(self, root: Path, settings: dict[str, str]) -> None:
        self.root = root
        self.state = root / "state"
        self.state.mkdir()
        (root / "src").mkdir()
        (root / "src" / "__init__.py").write_text("")
        (root / "src" / "main.py").write_text(textwrap.dedent(PROJECT))
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{root}/app.db",
            "SCRIPT_STATE_DIR": str(self.state),
            "SCRIPT_TOPIC": f"script-notes-{uuid.uuid4().hex[:8]}",
            **settings,
        }
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, *args: str, ready: str) -> None:
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
        deadline = time.monotonic() + 60
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            seen.append(line)
            if line.startswith(ready):
                return
        pytest.fail(f"core {' '.join(args)} did not get ready: {''.join(seen)}")

    def script(self, source: str) -> list[str]:
        path = self.root / "script.py"
        path.write_text(textwrap.dedent(source))
        env = {
            **self.env,
            "PYTHONPATH": os.pathsep.join([str(self.root), self.env.get("PYTHONPATH", "")]),
        }
        result = subprocess.run(
            [sys.executable, str(path)],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        # The process default closed its connections with the script's event loop.
        assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        return result.stdout.splitlines()

    def lines(self, name: str) -> list[str]:
        path = self.state / name
        return path.read_text().splitlines() if path.exists() else []

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def task_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"core-test-scripts:{uuid.uuid4().hex[:12]}"
    yield prefix
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
def redis_project(tmp_path: Path, redis_url: str, task_prefix: str) -> Iterator[Project]:
    project = Project(
        tmp_path,
        {"TASK_BROKER": "redis", "REDIS_URL": redis_url, "TASK_KEY_PREFIX": task_prefix},
    )
    try:
        yield project
    finally:
        project.stop_all()


@pytest.mark.redis
def test_a_script_delays_tasks_that_a_core_worker_runs(redis_project: Project) -> None:
    redis_project.start("worker", "--queue", "default", ready="worker:")

    sent_at = time.time()
    output = redis_project.script(SEND_TASKS)

    assert output == ["success stamped now", "success stamped later"]
    assert sorted(redis_project.lines("stamp")) == ["later", "now"]
    assert time.time() - sent_at >= 1.0


async def _wait_for_lines(project: Project, name: str, count: int) -> list[str]:
    async with asyncio.timeout(30):
        while len(project.lines(name)) < count:  # noqa: ASYNC110 (another process writes it)
            await asyncio.sleep(0.05)
    return project.lines(name)


@pytest.fixture(params=["redis", "rabbitmq", "kafka"])
def broker_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    kind = request.param
    request.applymarker(getattr(pytest.mark, kind))
    if kind == "redis":
        return {"MESSAGE_BROKER": "redis", "REDIS_URL": request.getfixturevalue("redis_url")}
    if kind == "rabbitmq":
        url = request.getfixturevalue("rabbitmq_url")
        return {"MESSAGE_BROKER": "rabbitmq", "RABBITMQ_URL": url}
    url = request.getfixturevalue("kafka_url")
    return {"MESSAGE_BROKER": "kafka", "KAFKA_BOOTSTRAP_SERVERS": url}


async def test_a_script_publishes_events_that_a_core_consumer_receives(
    tmp_path: Path, broker_settings: dict[str, str]
) -> None:
    project = Project(tmp_path, broker_settings)
    try:
        project.start("consumer", ready="Waiting for events")
        if broker_settings["MESSAGE_BROKER"] == "kafka":
            # A new consumer group starts at the end of the topic once it has joined: give it
            # time to join before the event is published.
            await asyncio.sleep(3)

        assert project.script(PUBLISH) == ["published note.written"]

        assert await _wait_for_lines(project, "notes", 1) == ["from a script"]
    finally:
        project.stop_all()
