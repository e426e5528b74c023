"""Edges of the CLI: commands that need no app module, and failures that stay one line.

Each runs the console script in a subprocess, as a user would, so what is checked is what the
terminal shows: exit code 1 and one `error:` line, never a traceback.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from core.settings import Settings
from tests.migration_roundtrip import core_command
from tests.scaffolding import make_project
from tests.services import free_port


def run_core(
    cwd: Path, *args: str, pythonpath: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    # A project's .env holds a private key (`core init` writes one); these commands need it.
    env["SECRET_KEY"] = secrets.token_urlsafe(48)
    env.update(settings)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return subprocess.run(
        [*core_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr.removeprefix("error: ").strip()


@pytest.fixture
def without_asyncpg(tmp_path: Path) -> str:
    """A PYTHONPATH entry that makes `import asyncpg` fail, as where it is not installed."""
    blocked = tmp_path / "blocked"
    (blocked / "asyncpg").mkdir(parents=True)
    (blocked / "asyncpg" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'asyncpg'\", name='asyncpg')\n"
    )
    return str(blocked)


# -- core topics: the settings are enough -----------------------------------------------------


def test_topics_need_no_app_module(tmp_path: Path) -> None:
    # No src/main.py here: the settings alone decide the broker.
    error = one_line_error(run_core(tmp_path, "topics", "list", MESSAGE_BROKER="memory"))

    assert error.startswith("`core topics` is not applicable to MESSAGE_BROKER=memory")


def test_topics_create_needs_no_app_module(tmp_path: Path) -> None:
    error = one_line_error(
        run_core(tmp_path, "topics", "create", "orders", MESSAGE_BROKER="memory")
    )

    assert "MESSAGE_BROKER=memory" in error


# -- migrations: drivers --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["migrate", "showmigrations", "makemigrations"])
def test_a_postgres_url_without_asyncpg_is_one_line(
    tmp_path: Path, without_asyncpg: str, command: str
) -> None:
    project = make_project(tmp_path)
    url = f"postgresql+asyncpg://app:secret@127.0.0.1:{free_port()}/app"

    error = one_line_error(run_core(project, command, pythonpath=without_asyncpg, DATABASE_URL=url))

    assert error == (
        "DATABASE_URL uses postgresql+asyncpg, whose driver is not installed (No module named "
        "'asyncpg'): pip install \"core-framework[postgres]\"."
    )


@pytest.mark.parametrize("command", ["migrate", "showmigrations"])
def test_an_unsupported_driver_is_one_line(tmp_path: Path, command: str) -> None:
    project = make_project(tmp_path)

    missing = one_line_error(
        run_core(project, command, DATABASE_URL="mysql+aiomysql://app:secret@localhost/app")
    )
    unknown = one_line_error(
        run_core(project, command, DATABASE_URL="postgresql+nodriver://app:secret@localhost/app")
    )

    assert missing.startswith("DATABASE_URL uses mysql+aiomysql, whose driver is not installed")
    assert unknown.startswith("DATABASE_URL is not a database URL SQLAlchemy knows")
    assert "secret" not in missing + unknown


# -- createsuperuser --------------------------------------------------------------------------


def test_createsuperuser_with_the_database_down_is_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    port = free_port()

    error = one_line_error(
        run_core(
            project,
            "createsuperuser",
            "--no-input",
            "--email",
            "admin@example.com",
            "--password",
            "A-long-enough-password-1",
            DATABASE_URL=f"postgresql+asyncpg://app:secret@127.0.0.1:{port}/app",
        )
    )

    assert error.startswith(
        f"Cannot reach the database at postgresql+asyncpg://app:***@127.0.0.1:{port}/app: "
    )
