"""On PostgreSQL, nested to-one output from joined rows gives the bytes the schema-validated
path gives, in one statement (the cases are in tests/nested_rendering.py)."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests import nested_rendering as cases
from tests import relations_cases, services

pytestmark = pytest.mark.postgres


async def test_rows_and_instances_give_the_same_json(postgres_url: str) -> None:
    url = await services.create_database(postgres_url, "core_nested")
    try:
        app = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
        async with app.lifespan():
            await app.create_all()
            seeded = await cases.seed(app)
            await cases.assert_same_bodies(app, seeded)
            async with relations_cases.client(app) as http:
                page, seen = await relations_cases.counted(app, http, "/rows/memberships/")
                one, seen_one = await relations_cases.counted(
                    app, http, f"/rows/memberships/{seeded['memberships'][1].id}/"
                )
            assert one["team"]["lead"] is None and page["count"] == 3
            assert len(seen) == len(seen_one) == 1, seen
            assert seen[0].count("LEFT OUTER JOIN") == 3, seen
    finally:
        await services.drop_database(postgres_url, url)
