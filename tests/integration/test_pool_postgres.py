"""The connection pool under a steady load above its size, on PostgreSQL: it keeps its
connections and makes the overflow wait, instead of opening (and forking a server process for)
a connection per burst and closing it again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event

from core import CoreApp
from core.settings import Settings
from tests import pagination_cases as cases
from tests import services

pytestmark = pytest.mark.postgres

CONCURRENT = 60  # three times the default pool


@pytest.fixture
async def app(postgres_url: str) -> AsyncIterator[CoreApp]:
    url = await services.create_database(postgres_url, "core_pool")
    try:
        application = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
        async with application.lifespan():
            await application.create_all()
            yield application
    finally:
        await services.drop_database(postgres_url, url)


async def test_a_load_above_the_pool_size_opens_no_connection_after_the_first_burst(
    app: CoreApp,
) -> None:
    await cases.seed(app)
    settings = app.settings
    assert (settings.database_pool_size, settings.database_max_overflow) == (20, 0)
    engine = app.container.database.database().engine
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda connection, record: opened.append(record))
    async with cases.client(app) as http:
        bursts: list[int] = []
        for _ in range(3):
            before = len(opened)
            responses = await asyncio.gather(
                *(
                    http.get("/exact/" if i % 2 else f"/exact/{1 + i % 10}/")
                    for i in range(CONCURRENT)
                )
            )
            assert [r.status_code for r in responses] == [200] * CONCURRENT
            bursts.append(len(opened) - before)
    # The first burst fills the pool (the app's start-up may have opened some already); the
    # next two reuse it: no connection is closed and opened again.
    assert bursts[1:] == [0, 0], bursts
    assert engine.sync_engine.pool.checkedin() <= settings.database_pool_size
