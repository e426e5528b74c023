"""`core consumer` and `core worker` on Redis as processes: one JSON line per event and per
task, and no third-party coloured console output, stop included."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_scripts_send import PUBLISH, SEND_TASKS, Project, _wait_for_lines

pytestmark = pytest.mark.redis


def _stop(project: Project) -> str:
    # SIGTERM, as an orchestrator stops it; everything it wrote, the stop included.
    [process] = project.processes
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def project(tmp_path: Path, redis_url: str) -> Iterator[Project]:
    project = Project(
        tmp_path,
        {
            "MESSAGE_BROKER": "redis",
            "TASK_BROKER": "redis",
            "REDIS_URL": redis_url,
            "TASK_KEY_PREFIX": f"core-test-logs:{tmp_path.name}",
            "LOG_FORMAT": "json",
        },
    )
    try:
        yield project
    finally:
        project.stop_all()


async def test_core_consumer_logs_a_json_line_per_event_and_stops_quietly(
    project: Project,
) -> None:
    project.start("consumer", ready="Waiting for events")
    assert project.script(PUBLISH) == ["published note.written"]
    await _wait_for_lines(project, "notes", 1)

    output = _stop(project)

    assert "\x1b[" not in output, "no coloured console output"
    handled = [line for line in _json_lines(output) if line.get("event") == "note.written"]
    [line] = handled
    assert (line["outcome"], line["attempt"], line["group"]) == ("handled", 1, "script-readers")
    assert line["correlation_id"] == line["event_id"], "a script's event starts its own chain"
    assert line["level"] == "INFO" and line["duration_ms"] >= 0
    other = [
        text
        for text in output.splitlines()
        if not text.startswith("{")
        and not text.startswith(("Consuming ", "Waiting for events", "Stopping", "Stopped."))
    ]
    assert other == [], "every other line is a JSON log line"


async def test_core_worker_logs_a_json_line_per_task(project: Project) -> None:
    project.start("worker", ready="worker: consuming")

    assert project.script(SEND_TASKS) == ["success stamped now", "success stamped later"]
    output = _stop(project)

    assert "\x1b[" not in output
    runs = [line for line in _json_lines(output) if line.get("task") == "script.stamp"]
    assert [(r["outcome"], r["attempt"]) for r in runs] == [("success", 1), ("success", 1)]
    assert all(r["task_id"] and r["duration_ms"] >= 0 for r in runs)
    # One line per run: Taskiq's own "Executing task" line would say it twice.
    lines = _json_lines(output)
    assert all(sum(line.get("task_id") == r["task_id"] for line in lines) == 1 for r in runs)
