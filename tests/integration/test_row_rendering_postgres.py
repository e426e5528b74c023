"""On PostgreSQL, rows straight to JSON give the bytes the schema-validated path gives."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests import services
from tests.row_rendering import assert_same_bodies, build, seed

pytestmark = pytest.mark.postgres


async def test_rows_and_instances_give_the_same_json(postgres_url: str) -> None:
    url = await services.create_database(postgres_url, "core_rows")
    try:
        app = build(Settings(database_url=url))
        async with app.lifespan():
            await app.create_all()
            await assert_same_bodies(app, await seed(app))
    finally:
        await services.drop_database(postgres_url, url)
