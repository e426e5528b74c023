"""The migration round trip on a SQLite file, through the real `core` console script."""

from __future__ import annotations

from pathlib import Path

from tests.migration_roundtrip import CoreProject, run_round_trip


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    project = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")

    run_round_trip(project)
