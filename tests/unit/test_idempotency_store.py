"""The IdempotencyStore contract on the in-memory store and on the database store over a SQLite
file; and what the container selects from IDEMPOTENCY_STORE."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.adapters.sqlalchemy.database import SqlAlchemyDatabase
from core.adapters.sqlalchemy.idempotency import SqlAlchemyIdempotencyStore
from core.containers.core import build_container
from core.idempotency.models import IdempotencyRecord
from core.ports.idempotency import IdempotencyStore
from core.testing import IdempotencyStoreContract, InMemoryIdempotencyStore, test_settings
from core.testing.contracts.idempotency import Units


def session_units(database: SqlAlchemyDatabase) -> Units:
    """Units of work on `database`'s sessions, as the contract's `units` fixture wants them:
    commit at the end, roll back on an error."""

    @asynccontextmanager
    async def unit() -> AsyncIterator[Any]:
        async with database.session() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    return unit


class EpochClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    def clock(self) -> EpochClock:
        return EpochClock()

    @pytest.fixture
    def store(self, clock: EpochClock) -> IdempotencyStore:
        self.clock = clock
        return InMemoryIdempotencyStore(clock=clock)

    async def advance(self, seconds: float) -> None:
        self.clock.now += seconds


class UtcClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class TestSqliteIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    async def database(self, tmp_path: Path) -> AsyncIterator[SqlAlchemyDatabase]:
        database = SqlAlchemyDatabase(f"sqlite+aiosqlite:///{tmp_path}/keys.db")
        await database.create_all(IdempotencyRecord.metadata)
        yield database
        await database.dispose()

    @pytest.fixture
    async def store(self, database: SqlAlchemyDatabase) -> AsyncIterator[IdempotencyStore]:
        self.clock = UtcClock()
        store = SqlAlchemyIdempotencyStore(database.engine, clock=self.clock)
        yield store
        await store.close()

    @pytest.fixture
    def units(self, database: SqlAlchemyDatabase) -> Units:
        return session_units(database)

    async def advance(self, seconds: float) -> None:
        self.clock.now += timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, InMemoryIdempotencyStore),  # test_settings: every backend in memory
        ({"idempotency_store": "database"}, InMemoryIdempotencyStore),  # beside memory://
        (
            {"idempotency_store": "database", "database_url": "sqlite+aiosqlite:///./x.db"},
            SqlAlchemyIdempotencyStore,
        ),
    ],
)
def test_the_container_selects_the_store_from_the_settings(
    values: dict[str, Any], expected: type[Any]
) -> None:
    container = build_container(test_settings(**values))

    assert type(container.idempotency.store()) is expected
    assert container.idempotency.keys().store is container.idempotency.store()


def test_a_redis_store_is_selected_by_its_setting() -> None:
    container = build_container(
        test_settings(idempotency_store="redis", redis_url="redis://cache:6379/3")
    )

    store = container.idempotency.store()

    assert type(store).__name__ == "RedisIdempotencyStore"
    assert store.prefix == "core:idempotency:"  # type: ignore[attr-defined]


def test_the_table_is_declared_by_routes_that_accept_keys_not_by_import(tmp_path: Path) -> None:
    # `import core` declares no table; an app whose routes accept keys declares
    # `core_idempotency_keys`, so `core makemigrations` (which imports the app) writes it.
    code = (
        "from core import AutoRouter, CoreApp, Field, Model, ModelViewSet\n"
        "from core.testing import test_settings\n"
        "from sqlalchemy.orm import Mapped\n"
        "before = 'core_idempotency_keys' in Model.metadata.tables\n"
        "class Thing(Model):\n"
        "    __tablename__ = 'things'\n"
        "    id: Mapped[int] = Field.pk()\n"
        "class ThingViewSet(ModelViewSet):\n"
        "    model = Thing\n"
        "router = AutoRouter()\n"
        "router.register('things', ThingViewSet)\n"
        "CoreApp(settings=test_settings(), routers=[router])\n"
        "print(before, 'core_idempotency_keys' in Model.metadata.tables)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )

    assert result.stdout.split() == ["False", "True"]
