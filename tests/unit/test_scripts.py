"""Scripts with their own SQLAlchemy engine, no CoreApp and no setup call, on SQLite."""

from __future__ import annotations

from pathlib import Path

from tests.scripts import MODELS_SCRIPT, USER_SCRIPT, run_script


def test_a_script_creates_queries_updates_and_deletes_on_its_own_session(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/own.db"

    lines = run_script(tmp_path, MODELS_SCRIPT, url)

    assert lines == [
        "titles ['first', 'second', 'third']",
        "popular 1",
        "updated 1",
        "deleted 1",
        "left [('third', 1)]",
    ]


def test_a_script_creates_a_user_and_authenticates_it_on_its_own_session(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/own.db"

    lines = run_script(tmp_path, USER_SCRIPT, url)

    assert lines == [
        "created 1 ann@example.com pbkdf2-sha256",
        "authenticated True",
        "wrong password None",
        "by email True",
    ]
