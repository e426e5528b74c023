"""Projects made by `core init --no-venv`, for the deploy tests (unit and integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main

PERIODIC = """

from core.tasks import periodic_task


@periodic_task(interval=300)
async def cleanup() -> None:
    \"\"\"Every five minutes.\"\"\"
"""


def make_project(
    root: Path, template: str = "default", *, env: str = "", tasks: bool = False
) -> Path:
    """A project from `core init --no-venv`, with `env` appended to its .env and, with `tasks`,
    a periodic task in its main module."""
    project = root / "shop"
    with pytest.raises(SystemExit) as exit_info:
        main(["init", str(project), "--no-venv", "--template", template])
    assert exit_info.value.code in (0, None)
    with (project / ".env").open("a") as dotenv:
        dotenv.write(env)
    if tasks:
        with (project / "src" / "main.py").open("a") as module:
            module.write(PERIODIC)
    return project
