"""What `core makemigrations` compares and how it writes what it finds.

Two things make a migration travel from the SQLite a project starts on to the PostgreSQL it
deploys to:

- The comparison runs against the migration history, replayed on a scratch database of the
  same kind as DATABASE_URL (a temporary SQLite file, or a temporary PostgreSQL database on the
  same server), never against the live database, which may be behind, ahead or absent.
- Server defaults are written as portable SQLAlchemy constructs (`sa.false()`, `sa.func.now()`)
  instead of the SQL one dialect compiled them to (`sa.text('0')`, `'(CURRENT_TIMESTAMP)'`),
  which PostgreSQL refuses for a boolean or stores as text.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.autogenerate.api import AutogenContext
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.functions import FunctionElement

from core.migrations.errors import MigrationError

RenderItem = Callable[[str, Any, AutogenContext], str | bool]
# Databases an absent or unreachable target database can be created next to.
_MAINTENANCE_DATABASES = ("postgres", "template1")


def render_server_default(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Alembic `render_item` hook: portable spellings of the server defaults Field writes.

    Returns False (Alembic renders the item itself) for anything else.
    """
    if type_ != "server_default" or not isinstance(obj, DefaultClause):
        return False
    arg = obj.arg
    if isinstance(arg, True_):
        return "sa.true()"
    if isinstance(arg, False_):
        return "sa.false()"
    if isinstance(arg, FunctionElement) and not list(arg.clauses) and arg.name.isidentifier():
        # func.now() compiles to CURRENT_TIMESTAMP on SQLite and now() on PostgreSQL; written
        # as sa.func.now(), each database gets its own spelling when the migration runs.
        return f"sa.func.{arg.name}()"
    return False


def install_render_hook(context: MigrationContext) -> None:
    """Make the revision being written use `render_server_default`.

    Called from the `process_revision_directives` hook, before Alembic renders: the render
    context reads the same options dict. A `render_item` the project's env.py configured runs
    first; ours renders what it leaves to Alembic.
    """
    theirs: RenderItem | None = context.opts.get("render_item")
    if theirs is None:
        context.opts["render_item"] = render_server_default
        return

    def both(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
        rendered = theirs(type_, obj, autogen_context)
        if rendered is not False:
            return rendered
        return render_server_default(type_, obj, autogen_context)

    context.opts["render_item"] = both


def replays_on_scratch(url: str) -> bool:
    """Whether `scratch_database` supports this URL's database (SQLite and PostgreSQL)."""
    return make_url(url).get_backend_name() in ("sqlite", "postgresql")


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """An empty database of the same kind as `url`, dropped afterwards; yields its URL.

    SQLite: a file in a temporary folder. PostgreSQL: `CREATE DATABASE` on the same server
    (the URL's database, or `postgres` when that one does not exist yet), so the user needs
    the CREATEDB privilege.

    Raises:
        MigrationError: the server cannot be reached, or refuses to create the database.
    """
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="core-makemigrations-") as folder:
            yield _render(target.set(database=str(Path(folder) / "scratch.db")))
        return
    name = f"core_scratch_{uuid.uuid4().hex[:16]}"
    admin = asyncio.run(_create_database(target, name))
    try:
        yield _render(target.set(database=name))
    finally:
        asyncio.run(_drop_database(admin, name))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def _create_database(target: URL, name: str) -> URL:
    """Create `name` from the first database of the server that accepts a connection."""
    last: BaseException | None = None
    for database in dict.fromkeys((target.database, *_MAINTENANCE_DATABASES)):
        admin = target.set(database=database)
        try:
            await _execute(admin, f'CREATE DATABASE "{name}"')
        except DBAPIError as exc:
            if "permission denied" in str(exc.orig).lower():
                raise MigrationError(
                    "makemigrations compares the models with the migrations replayed on a "
                    f"scratch database, and {target.username or 'this user'} may not create "
                    f"one on {target.render_as_string(hide_password=True)}: grant it CREATEDB."
                ) from None
            last = exc
        except (OSError, SQLAlchemyError) as exc:
            last = exc
        else:
            return admin
    reason = str(getattr(last, "orig", None) or last).strip().splitlines()
    raise MigrationError(
        "Cannot create a scratch database (makemigrations replays the migrations on one) on "
        f"{target.render_as_string(hide_password=True)}: {reason[0] if reason else last!r}"
    )


async def _drop_database(admin: URL, name: str) -> None:
    await _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _execute(url: URL, statement: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
