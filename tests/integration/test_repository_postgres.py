"""The Repository contract on PostgreSQL (asyncpg), in a database created for this run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core import Model
from core.containers.core import CoreContainer, build_container
from core.settings import Settings
from core.testing import RepositoryContract
from tests import services

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def contract_database_url(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_contract")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    await engine.dispose()
    yield url
    await services.drop_database(postgres_url, url)


class TestPostgresRepository(RepositoryContract):
    @pytest.fixture
    async def container(self, contract_database_url: str) -> AsyncIterator[CoreContainer]:
        container = build_container(Settings(database_url=contract_database_url))
        database = container.database.database()
        yield container
        tables = ", ".join(f'"{t.name}"' for t in Model.metadata.sorted_tables)
        async with database.engine.begin() as connection:  # type: ignore[attr-defined]
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await database.dispose()
