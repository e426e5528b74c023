"""User mistakes around the migration commands end in one `error:` line and exit code 1.

Mistakes that never import the project's models run `core.cli.main` in this process, which is
fast. The ones that do import them run the console script in a subprocess: models register on
the process-wide `Model.metadata`, where other tests' models already live.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.settings import Settings
from tests.migration_roundtrip import MODELS_V1, CoreProject


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the cwd, with only DATABASE_URL set."""
    monkeypatch.chdir(tmp_path)
    # The runner puts the project root on sys.path; give it back as it was.
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    return tmp_path


def core(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `core ARGS` in-process, expect success, and return what it printed."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    return out


def core_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `core ARGS` in-process, expect a one-line error, and return it without `error: `."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    assert exited.value.code == 1, out + err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err.removeprefix("error: ").strip()


def test_migrate_and_showmigrations_need_a_migrations_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert core_error(capsys, "migrate").startswith("No migrations folder at migrations")
    assert core_error(capsys, "showmigrations").startswith("No migrations folder at migrations")


def test_empty_migration_needs_no_models_and_no_database(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = core(capsys, "makemigrations", "--empty", "--name", "backfill slugs")

    (created,) = (project / "migrations" / "versions").glob("*.py")
    assert out == f"Created migrations/versions/{created.name}\n"
    assert created.name.endswith("_backfill_slugs.py")
    assert not (project / "app.db").exists()
    revision = created.name.split("_")[2]
    assert core(capsys, "showmigrations") == f"[ ] {revision}  backfill slugs  (head)\n"


def test_rollback_and_to_do_not_combine(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert core_error(capsys, "migrate", "--rollback", "--to", "base") == (
        "Use either --rollback or --to, not both."
    )


def test_rollback_with_nothing_applied(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core(capsys, "makemigrations", "--empty")

    assert core_error(capsys, "migrate", "--rollback") == (
        "Nothing to roll back: no migration is applied."
    )


def test_unknown_revision(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core(capsys, "makemigrations", "--empty")

    assert core_error(capsys, "migrate", "--to", "nope").startswith("Unknown revision 'nope'")


def test_sync_driver_is_refused_with_a_hint(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    core(capsys, "makemigrations", "--empty")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:secret@localhost/app")

    error = core_error(capsys, "migrate")

    assert error.startswith("DATABASE_URL needs an async driver")
    assert "secret" not in error


def test_database_at_a_revision_the_folder_lacks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    core(capsys, "makemigrations", "--empty")
    core(capsys, "migrate")
    for file in (project / "migrations" / "versions").glob("*.py"):
        file.unlink()

    error = core_error(capsys, "showmigrations")

    assert error.startswith("The database is at revision ")
    assert "migrations/versions does not have" in error


def test_folder_that_is_not_a_migrations_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "migrations").mkdir()
    (project / "migrations" / "notes.txt").write_text("mine")

    error = core_error(capsys, "makemigrations", "--empty")

    assert error.startswith("migrations exists but has no env.py")
    assert sorted(p.name for p in (project / "migrations").iterdir()) == ["notes.txt"]


def test_invalid_settings(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGE_BROKER", "carrier-pigeon")

    assert core_error(capsys, "showmigrations").startswith("Invalid settings: MESSAGE_BROKER: ")


# -- mistakes that import the project's models: one subprocess each ------------------------


def test_app_module_that_does_not_exist(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")

    error = project.core("makemigrations", ok=False).stderr

    assert error.startswith("error: Cannot find the app module 'src.main' under ")
    assert not (tmp_path / "migrations").exists()


def test_no_models_found_then_app_option_finds_them(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    project.write_models("app = object()\n")
    project.write_models(MODELS_V1, module="src/blog.py")

    assert project.core("makemigrations", ok=False).stderr.startswith("error: No models found")
    made = project.core("makemigrations", "--app", "src.blog:app").stdout

    assert made.endswith("_create_posts.py\n  + create table posts\n")


def test_app_module_that_raises_points_at_the_line(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    project.write_models("import os\nraise ValueError('boom')\n")

    error = project.core("makemigrations", ok=False).stderr

    assert error == (
        "error: Importing the app module 'src.main' failed: src/main.py:2: ValueError: boom\n"
    )


def test_unreachable_database(tmp_path: Path) -> None:
    # A subprocess too: after a failed connect, SQLAlchemy leaves aiosqlite's worker thread
    # behind (sqlalchemy/sqlalchemy#13039), and in this process it would later raise into
    # another test. The CLI exits right after the error, so users never see it.
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'app.db'}")
    project.core("makemigrations", "--empty")

    error = project.core("migrate", ok=False).stderr

    assert error.startswith("error: Database error on sqlite+aiosqlite:///")
    assert error.endswith("unable to open database file\n")


def test_python_dash_m_lists_the_migration_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--help"], capture_output=True, text=True, check=True
    )

    for command in ("makemigrations", "migrate", "showmigrations"):
        assert command in result.stdout
