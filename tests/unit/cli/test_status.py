"""`core status` as a shell runs it: each port's adapter, its check's outcome, the exit code."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.test_cli_edges import run_core

PORTS = {"database", "broker", "tasks", "token_store", "rate_limiter", "idempotency_store"}


def _rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split() == ["CHECK", "ADAPTER", "STATUS", "LATENCY"]
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_status_lists_the_selected_adapters_and_exits_0(tmp_path: Path) -> None:
    result = run_core(tmp_path, "status", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/app.db")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert set(rows) == PORTS
    assert rows["broker"][1] == "core.adapters.memory.broker.InMemoryEventBroker"
    assert rows["rate_limiter"][1] == "core.adapters.memory.ratelimit.InMemoryRateLimiter"
    assert all(row[2] == "ok" and row[-1] == "ms" for row in rows.values())


def test_status_exits_1_naming_the_failing_check(tmp_path: Path) -> None:
    result = run_core(tmp_path, "status", DATABASE_URL="sqlite+aiosqlite:////nonexistent/x.db")

    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows["database"][2] == "unavailable"
    assert rows["tasks"][2] == "ok"
    assert "not ready: database" in result.stderr


def test_status_checks_the_apps_container(tmp_path: Path) -> None:
    # A project's app whose broker supplies its own check, failing.
    (tmp_path / "project.py").write_text(
        "from core import CoreApp\n"
        "from core.adapters.memory.broker import InMemoryEventBroker\n"
        "from core.testing import test_settings\n"
        "class DownBroker(InMemoryEventBroker):\n"
        "    async def check(self) -> None:\n"
        "        raise ConnectionError('down')\n"
        f"app = CoreApp(settings=test_settings(database_url='sqlite+aiosqlite:///{tmp_path}/a.db'))\n"
        "app.container.messaging.broker.override(DownBroker())\n"
    )

    result = run_core(tmp_path, "status", "--app", "project:app", pythonpath=str(tmp_path))

    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows["broker"][1:3] == ["project.DownBroker", "unavailable"]
    assert "not ready: broker" in result.stderr
