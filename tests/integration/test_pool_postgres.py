"""The connection pool under a steady load above its size, on PostgreSQL: it keeps its
connections and makes the overflow wait, instead of opening (and forking a server process for)
a connection per burst and closing it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text

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


async def test_an_exhausted_pool_answers_503_and_keeps_its_connections(
    postgres_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `core createsuperuser`, run in-process by other tests, turns this logger off.
    monkeypatch.setattr(logging.getLogger("core.database"), "disabled", False)
    url = await services.create_database(postgres_url, "core_pool_busy")
    try:
        settings = Settings(
            database_url=url,
            database_pool_size=2,
            database_pool_timeout=0.3,
            outbox_relay_in_process=False,
        )
        app = cases.build(settings)
        async with app.lifespan(), cases.client(app) as http:
            await app.create_all()
            await cases.seed(app)
            engine = app.container.database.database().engine
            opened: list[object] = []
            event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))
            # Two units of work hold both connections (a long transaction each).
            async with app.session() as first, app.session() as second:
                await first.execute(text("SELECT 1"))
                await second.execute(text("SELECT 1"))
                with caplog.at_level(logging.WARNING, logger="core.database"):
                    busy = [await http.get(path) for path in ("/exact/", "/exact/1/")]
            held = len(opened)
            after = await http.get("/exact/1/")
    finally:
        await services.drop_database(postgres_url, url)

    for answer in busy:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["code"] == "database_unavailable"
    assert after.status_code == 200
    # The pool was not emptied: the request after the busy spell reused a held connection.
    assert len(opened) == held
    lines = [r.getMessage() for r in caplog.records if r.name == "core.database"]
    assert len(lines) == 1 and "stayed busy" in lines[0], lines
    assert not any("is unavailable" in line for line in lines)
