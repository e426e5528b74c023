"""FilterSet classes over HTTP on PostgreSQL: lookups, date parts in UTC, errors, OpenAPI."""

from __future__ import annotations

import httpx
import pytest

from core.settings import Settings
from tests import filtering, services

pytestmark = pytest.mark.postgres


async def test_filtersets_on_postgres(postgres_url: str) -> None:
    url = await services.create_database(postgres_url, "core_filters")
    try:
        app = filtering.build(Settings(database_url=url))
        async with app.lifespan():
            await app.create_all()
            seeded = await filtering.seed(app)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http:
                await filtering.check_filters(http, seeded)
                await filtering.check_invalid_values(http)
                await filtering.check_openapi(http)
    finally:
        await services.drop_database(postgres_url, url)
