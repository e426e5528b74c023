"""Alembic environment of this project, written by the first `core makemigrations`.

`core makemigrations`, `core migrate` and `core showmigrations` run this file after importing the
app module (APP_MODULE), so every model is registered on `Model.metadata`, and with
`sqlalchemy.url` set from DATABASE_URL. The file is yours: edit it to filter objects
(`include_object`), add a schema, and so on.
"""

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from core.models import Model

config = context.config
target_metadata = Model.metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite can ALTER almost nothing in place; batch mode rebuilds the table instead, so
        # autogenerate writes `with op.batch_alter_table(...)` blocks there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        # One connection for one command: nothing to keep in a pool.
        poolclass=pool.NullPool,
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("This env.py migrates a live database; offline (--sql) mode is not set up.")
asyncio.run(run_async_migrations())
