"""The migration round trip on PostgreSQL, in a fresh database created for the test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.migrations.autogenerate import scratch_database
from core.migrations.runner import MIGRATION_LOCK_KEY
from core.settings import Settings
from tests.migration_roundtrip import (
    MODELS_FLAGS,
    MODELS_V1,
    MODELS_V2,
    CoreProject,
    core_command,
    run_round_trip,
)
from tests.scaffolding import make_project

pytestmark = pytest.mark.postgres


async def _admin(url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A database of its own, so migrations start from nothing and leave nothing behind."""
    name = f"core_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_round_trip_on_postgres(tmp_path: Path, database_url: str) -> None:
    run_round_trip(CoreProject(tmp_path, database_url))


def test_migrations_started_at_once_run_one_after_the_other(
    tmp_path: Path, database_url: str
) -> None:
    # As when every API pod's init container runs `core migrate` on a deploy.
    project = CoreProject(tmp_path, database_url)
    project.write_models(MODELS_V1)
    project.core("makemigrations", "--name", "initial")
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env["DATABASE_URL"] = database_url
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"

    async def migrate_twice_at_once() -> list[tuple[int | None, str, str]]:
        engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as holder:
                # Both start while the lock is taken, so both are sure to be waiting at once.
                await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                migrations = [
                    await asyncio.create_subprocess_exec(
                        *core_command(),
                        "migrate",
                        cwd=tmp_path,
                        env=env,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE,
                    )
                    for _ in range(2)
                ]
                async with asyncio.timeout(60):
                    while await holder.scalar(text(waiting)) < 2:  # noqa: ASYNC110 (polls PostgreSQL)
                        await asyncio.sleep(0.1)
            # The holder's connection is closed: its lock is gone.
            outputs = [await process.communicate() for process in migrations]
            return [
                (process.returncode, out.decode(), err.decode())
                for process, (out, err) in zip(migrations, outputs, strict=True)
            ]
        finally:
            await engine.dispose()

    results = asyncio.run(migrate_twice_at_once())

    assert [code for code, _, _ in results] == [0, 0], results
    reports = sorted(stdout.split()[0] for _, stdout, _ in results)
    assert reports == ["Applied", "No"], results  # "No migrations to apply." for the later one
    assert all("waiting for it to end" in stderr for _, _, stderr in results)
    assert "posts" in project.inspect(lambda inspector: inspector.get_table_names())


def test_migrations_made_on_sqlite_apply_and_roll_back_on_postgres(
    tmp_path: Path, database_url: str
) -> None:
    # The quickstart: make migrations on the default SQLite, then switch .env to PostgreSQL.
    on_sqlite = CoreProject(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    on_sqlite.write_models(MODELS_FLAGS)
    on_sqlite.core("makemigrations", "--name", "initial")
    on_postgres = CoreProject(tmp_path, database_url)

    assert on_postgres.core("migrate").stdout.startswith("Applied ")

    on_postgres.execute("INSERT INTO articles (title) VALUES ('kept')")
    row = on_postgres.execute(
        "SELECT is_published, is_visible, views, created_at IS NOT NULL FROM articles"
    )
    assert row == [(False, True, 0, True)]
    # The models and the migrations agree on PostgreSQL too.
    assert on_postgres.core("makemigrations", "--check").stdout.strip() == "No changes detected"

    assert on_postgres.core("migrate", "--to", "base").stdout.startswith("Unapplied ")
    assert "articles" not in on_postgres.inspect(lambda inspector: inspector.get_table_names())


def test_a_new_project_made_on_sqlite_migrates_postgres(tmp_path: Path, database_url: str) -> None:
    root = make_project(tmp_path)
    on_sqlite = CoreProject(root, f"sqlite+aiosqlite:///{root / 'app.db'}")
    on_sqlite.core("makemigrations", "--name", "initial")
    on_postgres = CoreProject(root, database_url)

    on_postgres.core("migrate")
    on_postgres.execute("INSERT INTO users (email) VALUES ('a@example.com')")

    flags = on_postgres.execute("SELECT is_active, is_staff, is_superuser FROM users")
    assert flags == [(True, False, False)]
    on_postgres.core("migrate", "--to", "base")
    tables = on_postgres.inspect(lambda inspector: inspector.get_table_names())
    assert tables == ["alembic_version"]


def test_makemigrations_on_postgres_needs_no_migrated_database(
    tmp_path: Path, postgres_url: str
) -> None:
    # The database DATABASE_URL names does not exist yet: the comparison runs on a scratch one.
    absent = f"core_absent_{uuid.uuid4().hex[:12]}"
    project = CoreProject(
        tmp_path, make_url(postgres_url).set(database=absent).render_as_string(False)
    )
    project.write_models(MODELS_V1)

    project.core("makemigrations", "--name", "initial")
    again = project.core("makemigrations")
    project.write_models(MODELS_V2)
    check = project.core("makemigrations", "--check", ok=False, one_line=False)

    assert again.stdout.strip() == "No changes detected"
    assert check.returncode == 1 and "  + add column posts.body" in check.stdout
    assert len(project.versions()) == 1
    assert absent not in asyncio.run(_databases(postgres_url))


def test_the_scratch_database_is_dropped_afterwards(postgres_url: str) -> None:
    with scratch_database(postgres_url) as url:
        name = make_url(url).database
        assert name in asyncio.run(_databases(postgres_url))

    assert name not in asyncio.run(_databases(postgres_url))


async def _databases(url: str) -> list[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT datname FROM pg_database"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()
