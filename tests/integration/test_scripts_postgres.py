"""Scripts with their own SQLAlchemy engine, no CoreApp and no setup call, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import services
from tests.scripts import DEFAULT_ACROSS_LOOPS, MODELS_SCRIPT, USER_SCRIPT, run_script

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_scripts")
    yield url
    await services.drop_database(postgres_url, url)


def test_a_script_creates_queries_updates_and_deletes_on_its_own_session(
    tmp_path: Path, database_url: str
) -> None:
    lines = run_script(tmp_path, MODELS_SCRIPT, database_url)

    assert lines == [
        "titles ['first', 'second', 'third']",
        "popular 1",
        "updated 1",
        "deleted 1",
        "left [('third', 1)]",
    ]


def test_a_script_creates_a_user_and_authenticates_it_on_its_own_session(
    tmp_path: Path, database_url: str
) -> None:
    lines = run_script(tmp_path, USER_SCRIPT, database_url)

    assert lines == [
        "created 1 ann@example.com pbkdf2-sha256",
        "authenticated True",
        "wrong password None",
        "by email True",
    ]


def test_the_process_default_closes_with_each_event_loop_and_serves_the_next(
    tmp_path: Path, database_url: str
) -> None:
    # asyncpg connections belong to the loop that opened them: without the default closing
    # them when `asyncio.run` ends, the second run would fail ("attached to a different loop").
    assert run_script(tmp_path, DEFAULT_ACROSS_LOOPS, database_url) == ["1 2"]
