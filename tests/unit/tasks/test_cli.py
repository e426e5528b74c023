"""`core tasks`, and what `core worker` / `core scheduler` refuse, through the console script."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

from core.containers import build_container
from core.containers.graph import build_graph, render_text
from core.settings import Settings
from tests.migration_roundtrip import core_command

PROJECT = """
    from core import CoreApp
    from core.tasks import periodic_task, task


    @task(queue="emails", retry=3, timeout=300)
    async def send_email(to: str, subject: str, body: str):
        return None


    @periodic_task(cron="0 0 * * *")
    async def daily_cleanup():
        return None


    @periodic_task(interval=300, name="sync")
    async def sync_data():
        return None


    app = CoreApp()
"""


def _project(tmp_path: Path, source: str = PROJECT, **env: str) -> dict[str, str]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text(textwrap.dedent(source))
    return {
        **os.environ,
        "DATABASE_URL": "memory://",
        "TASK_BROKER": "memory",
        "TIMEZONE": "UTC",
        **env,
    }


def _core(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*core_command(), *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_core_tasks_lists_tasks_schedules_and_next_runs(tmp_path: Path) -> None:
    env = _project(tmp_path, TIMEZONE="America/Sao_Paulo")

    out = _core(tmp_path, env, "tasks")

    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "QUEUE",
        "RETRY",
        "TIMEOUT",
        "SCHEDULE",
        "NEXT",
        "RUN",
        "(America/Sao_Paulo)",
    ]
    by_name = {row.split()[0]: row for row in rows}
    assert by_name["src.main.send_email"].split() == [
        "src.main.send_email",
        "emails",
        "3",
        "300s",
        "-",
        "-",
    ]
    cleanup = by_name["src.main.daily_cleanup"]
    assert "cron 0 0 * * *" in cleanup and "00:00:00 -03" in cleanup
    assert "every 300s" in by_name["sync"] and by_name["sync"].split()[1] == "default"


def test_core_worker_refuses_the_in_process_memory_queue(tmp_path: Path) -> None:
    env = _project(tmp_path)

    out = _core(tmp_path, env, "worker", "--queue", "default", "--concurrency", "4")

    assert out.returncode == 1
    assert "TASK_BROKER=memory" in out.stderr and "TASK_BROKER=redis" in out.stderr


def test_core_scheduler_without_periodic_tasks_stays_up_idle(tmp_path: Path) -> None:
    # A scheduler Deployment (or PM2 process) that exited would be restarted in a loop.
    env = _project(tmp_path, "from core import CoreApp\napp = CoreApp()\n")
    process = subprocess.Popen(
        [*core_command(), "scheduler"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        # Up and idle once it has said so: still running.
        assert first == (
            "scheduler: no periodic tasks declared by the app module; idle until stopped\n"
        )
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0
    assert out.splitlines() == ["scheduler: stopped"]


def test_core_tasks_with_no_tasks_says_so(tmp_path: Path) -> None:
    env = _project(tmp_path, "from core import CoreApp\napp = CoreApp()\n")

    out = _core(tmp_path, env, "tasks")

    assert out.returncode == 0
    assert "No tasks" in out.stdout


def test_the_container_graph_shows_the_task_queue_adapter() -> None:
    redis = build_graph(build_container(Settings(task_broker="redis")))
    memory = build_graph(build_container(Settings(task_broker="memory")))

    for graph, picked in ((redis, "redis"), (memory, "memory")):
        selector = graph.node("tasks.queue").selector
        assert selector is not None and selector.selected == picked
    assert "core.adapters.taskiq.queue.TaskiqTaskQueue" in render_text(redis)
    assert "tasks.lifecycle" in redis


def test_tasks_failed_on_the_memory_queue_says_where_the_dead_letters_live(
    tmp_path: Path,
) -> None:
    env = _project(tmp_path)
    out = _core(tmp_path, env, "tasks", "failed")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("No failed tasks in this process: with TASK_BROKER=memory")
