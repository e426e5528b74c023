"""The migration round trip every database backend runs, through the real `core` console script.

A test writes a tiny project (`src/main.py` with models) in a temporary folder, then drives
`core makemigrations`, `core migrate` and `core showmigrations` in subprocesses from that
folder, as a user would, checking the command output and the actual schema after each step.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Inspector
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.settings import Settings

T = TypeVar("T")

MODELS_V1 = """
    import datetime

    from sqlalchemy.orm import Mapped

    from core.models import Field, Model


    class Post(Model):
        __tablename__ = "posts"

        id: Mapped[int] = Field.pk()
        title: Mapped[str] = Field.string(max_length=200)
        created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)


    app = object()
"""

# V1 plus a NOT NULL column; its default reaches the DDL, so rows already there get a value.
MODELS_V2 = MODELS_V1.replace(
    "Field.string(max_length=200)\n",
    'Field.string(max_length=200)\n        body: Mapped[str] = Field.text(default="")\n',
)

# Booleans and timestamps with server defaults, as `core init`'s user and post models have.
MODELS_FLAGS = """
    import datetime

    from sqlalchemy.orm import Mapped

    from core.models import Field, Model


    class Article(Model):
        __tablename__ = "articles"

        id: Mapped[int] = Field.pk()
        title: Mapped[str] = Field.string(max_length=200)
        is_published: Mapped[bool] = Field.boolean(default=False)
        is_visible: Mapped[bool] = Field.boolean(default=True)
        views: Mapped[int] = Field.integer(default=0)
        created_at: Mapped[datetime.datetime] = Field.datetime(auto_now_add=True)
        updated_at: Mapped[datetime.datetime] = Field.datetime(auto_now=True)


    app = object()
"""


def core_command() -> list[str]:
    """The installed `core` console script, or `python -m core.cli` when there is none."""
    script = Path(sys.executable).with_name("core")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "core.cli"]


@dataclass(frozen=True, slots=True)
class ShownMigration:
    """One line of `core showmigrations`."""

    applied: bool
    revision: str
    message: str
    head: bool


@dataclass(frozen=True, slots=True)
class CoreProject:
    """A throwaway user project: a folder with `src/main.py` and the database it migrates."""

    root: Path
    database_url: str

    def write_models(self, source: str, module: str = "src/main.py") -> None:
        path = self.root / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")

    def core(
        self, *args: str, ok: bool = True, one_line: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `core ARGS` in the project folder; `ok` says whether it must succeed or fail,
        and `one_line` whether a failure must be a one-line `error:` (not for `--check`)."""
        # Only this project's settings: a DATABASE_URL or APP_MODULE exported in the shell
        # running the tests must not leak into the user's process.
        env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
        env["DATABASE_URL"] = self.database_url
        # Each step rewrites src/main.py within the same second; stale bytecode must not win.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        result = subprocess.run(
            [*core_command(), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        failed = result.returncode != 0
        assert failed != ok, (
            f"core {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        if failed and one_line:
            # A user mistake is reported on one line, never with a traceback.
            assert result.returncode == 1, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert result.stderr.startswith("error: "), result.stderr
        return result

    def showmigrations(self) -> list[ShownMigration]:
        shown = []
        for line in self.core("showmigrations").stdout.splitlines():
            # "[X] 1a2b3c4d5e6f  message  (head)"
            mark, rest = line[:3], line[4:]
            revision, _, message = rest.partition("  ")
            shown.append(
                ShownMigration(
                    applied=mark == "[X]",
                    revision=revision,
                    message=message.removesuffix("(head)").strip(),
                    head=message.endswith("(head)"),
                )
            )
        return shown

    def versions(self) -> list[Path]:
        return sorted((self.root / "migrations" / "versions").glob("*.py"))

    def inspect(self, read: Callable[[Inspector], T]) -> T:
        """Run `read` on a SQLAlchemy inspector of the project's database."""
        return self.run_sync(lambda connection: read(inspect(connection)))

    def execute(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in its own committed transaction; the rows it returns, if any."""

        def run(connection: Connection) -> list[tuple[Any, ...]]:
            result = connection.execute(text(sql), params)
            rows = [tuple(row) for row in result] if result.returns_rows else []
            connection.commit()
            return rows

        return self.run_sync(run)

    def run_sync(self, work: Callable[[Connection], T]) -> T:
        async def go() -> T:
            engine = create_async_engine(self.database_url, poolclass=NullPool)
            try:
                async with engine.connect() as connection:
                    return await connection.run_sync(work)
            finally:
                await engine.dispose()

        return asyncio.run(go())


def columns(project: CoreProject, table: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: dict(c) for c in project.inspect(lambda i: i.get_columns(table))}


def tables(project: CoreProject) -> set[str]:
    return set(project.inspect(lambda i: i.get_table_names()))


def assert_shown(
    project: CoreProject, expected: Sequence[tuple[bool, str]]
) -> list[ShownMigration]:
    """`showmigrations` lists `expected` (applied, message) in order, the last one as head."""
    shown = project.showmigrations()
    assert [(m.applied, m.message) for m in shown] == list(expected)
    assert [m.head for m in shown] == [False] * (len(shown) - 1) + [True]
    return shown


def run_round_trip(project: CoreProject) -> None:
    """makemigrations -> migrate -> change a model -> makemigrations -> migrate -> rollback."""
    project.write_models(MODELS_V1)

    made = project.core("makemigrations", "--name", "initial").stdout.splitlines()
    assert made[0].startswith("Created migrations/versions/"), made
    assert made[0].endswith("_initial.py"), made
    assert made[1:] == ["  + create table posts"]
    assert {"env.py", "script.py.mako"} <= {p.name for p in (project.root / "migrations").iterdir()}
    (initial,) = assert_shown(project, [(False, "initial")])
    assert "posts" not in tables(project)

    assert project.core("migrate").stdout.splitlines() == [f"Applied {initial.revision}  initial"]
    assert tables(project) == {"alembic_version", "posts"}
    assert set(columns(project, "posts")) == {"id", "title", "created_at"}
    assert columns(project, "posts")["title"]["type"].length == 200
    assert_shown(project, [(True, "initial")])

    # Models and database agree: no empty revision file.
    assert project.core("makemigrations").stdout.strip() == "No changes detected"
    assert len(project.versions()) == 1

    project.execute("INSERT INTO posts (title) VALUES (:title)", title="kept")
    project.write_models(MODELS_V2)
    made = project.core("makemigrations").stdout.splitlines()
    # No --name: the name comes from the change.
    assert made[0].endswith("_add_posts_body.py"), made
    assert made[1:] == ["  + add column posts.body"]
    # SQLite cannot ALTER in place, so there (and only there) Alembic writes batch operations.
    written = (project.root / made[0].removeprefix("Created ")).read_text(encoding="utf-8")
    assert ("batch_alter_table" in written) == project.database_url.startswith("sqlite")
    _, added = assert_shown(project, [(True, "initial"), (False, "add_posts_body")])

    migrated = project.core("migrate").stdout.splitlines()
    assert migrated == [f"Applied {added.revision}  add_posts_body"]
    assert set(columns(project, "posts")) == {"id", "title", "created_at", "body"}
    assert columns(project, "posts")["body"]["nullable"] is False
    # On SQLite the column came through batch mode, which copies the table: the row survives.
    assert project.execute("SELECT title, body FROM posts") == [("kept", "")]

    rolled_back = project.core("migrate", "--rollback").stdout.splitlines()
    assert rolled_back == [f"Unapplied {added.revision}  add_posts_body"]
    assert set(columns(project, "posts")) == {"id", "title", "created_at"}
    assert project.execute("SELECT title FROM posts") == [("kept",)]
    assert_shown(project, [(True, "initial"), (False, "add_posts_body")])

    # --to moves down or up, through every revision in between.
    assert project.core("migrate", "--to", "base").stdout.splitlines() == [
        f"Unapplied {initial.revision}  initial"
    ]
    assert tables(project) == {"alembic_version"}
    # A unique prefix of a revision id is enough.
    assert project.core("migrate", "--to", added.revision[:8]).stdout.splitlines() == [
        f"Applied {initial.revision}  initial",
        f"Applied {added.revision}  add_posts_body",
    ]
    assert set(columns(project, "posts")) == {"id", "title", "created_at", "body"}
    assert_shown(project, [(True, "initial"), (True, "add_posts_body")])
