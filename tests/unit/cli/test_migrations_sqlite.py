"""The migration round trip on a SQLite file, through the real `core` console script."""

from __future__ import annotations

from pathlib import Path

from tests.migration_roundtrip import (
    MODELS_FLAGS,
    MODELS_V1,
    MODELS_V2,
    CoreProject,
    run_round_trip,
)


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")

    run_round_trip(project)


def test_makemigrations_compares_with_the_migrations_not_the_database(tmp_path: Path) -> None:
    # What Django users do, and CI's `makemigrations --check`: no `core migrate` in between.
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    project.write_models(MODELS_V1)

    project.core("makemigrations", "--name", "initial")
    again = project.core("makemigrations")

    assert again.stdout.strip() == "No changes detected"
    assert len(project.versions()) == 1
    # The live database was never touched: it does not even exist.
    assert not (tmp_path / "app.db").exists()

    project.write_models(MODELS_V2)
    made = project.core("makemigrations").stdout.splitlines()

    assert made[1:] == ["  + add column posts.body"]
    assert len(project.versions()) == 2
    assert project.core("migrate").stdout.count("Applied ") == 2


def test_makemigrations_check_exits_1_when_models_and_migrations_disagree(
    tmp_path: Path,
) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    project.write_models(MODELS_V1)
    project.core("makemigrations", "--name", "initial")

    agree = project.core("makemigrations", "--check")
    project.write_models(MODELS_V2)
    disagree = project.core("makemigrations", "--check", ok=False, one_line=False)

    assert agree.stdout.strip() == "No changes detected"
    assert disagree.returncode == 1
    assert "  + add column posts.body" in disagree.stdout.splitlines()
    # --check writes nothing.
    assert len(project.versions()) == 1


def test_server_defaults_are_written_portably(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    project.write_models(MODELS_FLAGS)

    project.core("makemigrations", "--name", "initial")

    written = project.versions()[0].read_text(encoding="utf-8")
    assert "'is_published', sa.Boolean(), server_default=sa.false()," in written
    assert "'is_visible', sa.Boolean(), server_default=sa.true()," in written
    assert "'views', sa.Integer(), server_default=sa.text('0')," in written
    assert written.count("server_default=sa.func.now(),") == 2
    # What SQLite compiles them to, which PostgreSQL refuses for a boolean column.
    assert "sa.text('1')" not in written and "CURRENT_TIMESTAMP" not in written
