"""`core scheduler` on the embedded default (TASK_BROKER=memory): it runs the tasks itself."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from tests.migration_roundtrip import core_command

PROJECT = """
    import os
    import time

    from core import CoreApp
    from core.tasks import periodic_task


    @periodic_task(interval=1)
    async def beat(db=None):
        # `db`: periodic runs get a unit of work like any task run.
        assert db is not None
        with open(os.environ["BEAT_FILE"], "a") as file:
            file.write(f"{time.time()}\\n")


    app = CoreApp()
"""


def test_the_memory_scheduler_runs_periodic_tasks_in_its_own_process(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text(textwrap.dedent(PROJECT))
    beats = tmp_path / "beats"
    env = {
        **os.environ,
        "TASK_BROKER": "memory",
        "DATABASE_URL": "memory://",
        "BEAT_FILE": str(beats),
    }
    process = subprocess.Popen(
        [*core_command(), "scheduler"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("scheduler: 1 periodic task(s)")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if beats.exists() and len(beats.read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        output = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    runs = [float(line) for line in beats.read_text().splitlines()]
    assert len(runs) >= 2
    assert len({int(run) for run in runs}) == len(runs)  # once per tick
    assert "scheduler: stopped" in output
