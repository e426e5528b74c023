"""Workers never die on input (Redis, a real `core worker`): a stream entry without `data`, one
that is not JSON, one with a bad `ack_type` label and a task that always fails are acknowledged
and dead-lettered; the worker lives, the good task behind them completes, `core tasks failed`
lists the bad ones and `core tasks retry` sends one again."""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from core.tasks import task
from tests.integration.test_tasks_redis import Project, finished
from tests.integration.test_tasks_redis import declared as declared  # noqa: F401 (fixture)
from tests.integration.test_tasks_redis import prefix as prefix  # noqa: F401 (fixture)
from tests.migration_roundtrip import core_command

pytestmark = pytest.mark.redis

TASKS = """
    import os
    from pathlib import Path

    from core import CoreApp
    from core.tasks import task

    STATE = Path(os.environ["TASKS_STATE_DIR"])


    def record(name: str) -> int:
        with open(STATE / name, "a") as file:
            file.write("run\\n")
        return len((STATE / name).read_text().splitlines())


    @task(name="it.doomed", retry=1, retry_backoff=0.1, retry_jitter=False)
    async def doomed(order: int) -> None:
        runs = record("doomed")
        raise RuntimeError(f"card declined ({runs})")


    @task(name="it.fine")
    async def fine(label: str) -> str:
        record(f"fine-{label}")
        return label


    app = CoreApp()
"""


@pytest.fixture
def project(
    tmp_path: Path,
    redis_url: str,
    prefix: str,  # noqa: F811
    declared: None,  # noqa: F811
) -> Iterator[Project]:
    project = Project(tmp_path, redis_url, prefix)
    (tmp_path / "src" / "main.py").write_text(textwrap.dedent(TASKS))
    try:
        yield project
    finally:
        project.stop_all()


def core(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*core_command(), *args],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_malformed_messages_and_a_failing_task_neither_kill_nor_block_the_worker(
    project: Project,
    redis_url: str,
    prefix: str,  # noqa: F811
) -> None:
    @task(name="it.doomed")
    async def doomed(order: int) -> None:
        raise AssertionError("runs in the worker")

    @task(name="it.fine")
    async def fine(label: str) -> str:
        raise AssertionError("runs in the worker")

    stream = f"{prefix}:stream:default"
    bad_label: dict[str, Any] = {
        "task_id": uuid.uuid4().hex,
        "task_name": "it.fine",
        "labels": {"queue_name": stream, "ack_type": "whenever"},
        "labels_types": None,
        "args": ["labelled"],
        "kwargs": {},
    }
    async with Redis.from_url(redis_url) as redis:
        await redis.xadd(stream, {"foo": "bar"})
        await redis.xadd(stream, {"data": b"{not json"})
        await redis.xadd(stream, {"data": json.dumps(bad_label).encode()})
    worker = project.start("worker", "--concurrency", "1", ready="worker:")

    async with project.app().lifespan():
        doomed_id = await doomed.delay(42)
        good_id = await fine.delay("after")
        assert (await finished(good_id)).value == "after"
        assert (await finished(doomed_id)).ready

    listed = await asyncio.to_thread(core, project, "tasks", "failed")
    assert worker.poll() is None, "the worker lives"
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "FAILED", "AT", "(UTC)"]
    assert len(rows) == 4, listed.stdout
    failed = [row for row in rows if " failed " in row]
    malformed = [row for row in rows if " malformed " in row]
    assert len(failed) == 1 and "it.doomed" in failed[0]
    assert "RuntimeError: card declined (2)" in failed[0]
    assert len(malformed) == 3
    assert any("no 'data' field" in row for row in malformed)
    assert any("whenever" in row and "it.fine" in row for row in malformed)
    assert project.lines("fine-labelled") == [], "a message with a bad label does not run"

    # Sent again, the doomed task runs (and fails) twice more: its retries start afresh.
    letter_id = failed[0].split()[0]
    again = await asyncio.to_thread(core, project, "tasks", "retry", letter_id)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Sent again as task ")
    async with asyncio.timeout(20):
        while len(project.lines("doomed")) < 4:  # noqa: ASYNC110 (the worker writes the file)
            await asyncio.sleep(0.05)
    # The bad label's message can be sent again too, without the label.
    label_id = next(row for row in malformed if "whenever" in row).split()[0]
    assert (await asyncio.to_thread(core, project, "tasks", "retry", label_id)).returncode == 0
    async with asyncio.timeout(20):
        while not project.lines("fine-labelled"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    nothing = await asyncio.to_thread(core, project, "tasks", "retry", "1-1")
    assert (nothing.returncode, nothing.stderr.strip()) == (
        1,
        "error: No failed task has id '1-1' (see `core tasks failed`).",
    )
    assert worker.poll() is None
