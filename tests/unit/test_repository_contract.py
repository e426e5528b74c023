"""The Repository contract on the in-memory adapter and on SQLite (a file, the embedded default)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core import Model
from core.containers.core import CoreContainer, build_container
from core.settings import Settings
from core.testing import RepositoryContract


class TestInMemoryRepository(RepositoryContract):
    @pytest.fixture
    def container(self) -> Iterator[CoreContainer]:
        yield build_container(Settings(database_url="memory://"))


class TestSqliteRepository(RepositoryContract):
    @pytest.fixture
    async def container(self, tmp_path: Path) -> AsyncIterator[CoreContainer]:
        container = build_container(
            Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/contract.db")
        )
        database = container.database.database()
        await database.create_all(Model.metadata)
        yield container
        await database.dispose()
