"""Cursor pagination and count strategies on PostgreSQL (the cases are in
tests/pagination_cases.py), the planner's estimate included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from core import CoreApp
from core.settings import Settings
from tests import pagination_cases as cases
from tests import services

pytestmark = pytest.mark.postgres


@pytest.fixture
async def app(postgres_url: str) -> AsyncIterator[CoreApp]:
    url = await services.create_database(postgres_url, "core_pages")
    try:
        # No outbox relay polling beside the pages: the statement counts see only the pages.
        application = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
        async with application.lifespan():
            await application.create_all()
            yield application
    finally:
        await services.drop_database(postgres_url, url)


async def _analyse(app: CoreApp) -> None:
    engine = app.container.database.database().engine
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE test_articles"))
        await connection.commit()


@pytest.mark.parametrize("base", ["cursor", "cursor-instances"])
async def test_cursor_pages_forward_back_and_stable_under_inserts(app: CoreApp, base: str) -> None:
    author_id = await cases.seed(app)
    await cases.cursor_forward_and_back(app, base)
    await cases.cursor_refuses_what_it_cannot_page(app, base)
    await cases.cursor_stable_under_inserts(app, base, author_id)


async def test_count_strategies_and_the_planner_estimate(app: CoreApp) -> None:
    await cases.seed(app)
    # Before ANALYZE the table has no statistics: `estimated` counts exactly.
    await cases.count_strategies(app, total=10)
    await _analyse(app)
    async with app.session() as db:
        # Two rows the statistics do not know of yet: the estimate still says 10.
        author = await cases.Author.objects.using(db).get(email="pages@x.io")
        for slug in ("late-1", "late-2"):
            await cases.Article.objects.create(
                title="late", slug=slug, is_published=True, author_id=author.id, db=db
            )
    await cases.count_strategies(app, total=12, estimated=10)


async def test_a_page_costs_one_statement(app: CoreApp) -> None:
    await cases.seed(app)
    await _analyse(app)
    await cases.one_statement_per_page(app)


async def test_cursor_openapi(app: CoreApp) -> None:
    cases.cursor_openapi(app)
