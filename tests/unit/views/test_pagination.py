"""Cursor pagination and count strategies on the in-memory adapter and SQLite (the cases are
in tests/pagination_cases.py; tests/integration/test_pagination_postgres.py runs them on
PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core import AutoRouter, CoreApp, ModelViewSet
from core.errors import ConfigurationError
from core.settings import Settings
from core.views import CursorPagination, PageNumberPagination
from tests import pagination_cases as cases
from tests.models import Article, Note


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoreApp]:
    url = "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/p.db"
    application = cases.build(Settings(database_url=url))
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.mark.parametrize("base", ["cursor", "cursor-instances"])
async def test_cursor_pages_forward_and_back(app: CoreApp, base: str) -> None:
    await cases.seed(app)
    await cases.cursor_forward_and_back(app, base)


@pytest.mark.parametrize("base", ["cursor", "cursor-instances"])
async def test_cursor_pages_are_stable_while_rows_are_inserted(app: CoreApp, base: str) -> None:
    author_id = await cases.seed(app)
    await cases.cursor_stable_under_inserts(app, base, author_id)


async def test_cursor_refuses_orderings_and_cursors_it_cannot_page(app: CoreApp) -> None:
    await cases.seed(app)
    await cases.cursor_refuses_what_it_cannot_page(app, "cursor")


async def test_count_strategies(app: CoreApp) -> None:
    await cases.seed(app)
    await cases.count_strategies(app, total=10)


async def test_cursor_and_uncounted_pages_in_openapi(app: CoreApp) -> None:
    cases.cursor_openapi(app)


async def test_a_page_costs_one_statement_on_sqlite(tmp_path: Path) -> None:
    # No outbox relay polling beside the page: only the page's statements are counted.
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/one.db", outbox_relay_in_process=False
    )
    app = cases.build(settings)
    async with app.lifespan():
        await app.create_all()
        await cases.seed(app)
        await cases.one_statement_per_page(app)


def _routes(view: type[ModelViewSet]) -> None:
    router = AutoRouter()
    router.register("things", view, basename="things")
    CoreApp(settings=Settings(database_url="memory://"), routers=[router])


def test_an_ordering_a_cursor_cannot_carry_is_refused_at_route_build() -> None:
    class ByViews(ModelViewSet):
        model = Article
        pagination_class = CursorPagination
        ordering = ["-views"]

    class ByRating(ModelViewSet):
        model = Article
        pagination_class = CursorPagination
        ordering = ["rating", "id"]

    class BySlug(ModelViewSet):  # slug is unique: enough on its own
        model = Article
        pagination_class = CursorPagination
        ordering = ["-slug"]

    class ByPrimaryKey(ModelViewSet):  # no ordering: the primary key
        model = Note
        pagination_class = CursorPagination

    with pytest.raises(ConfigurationError, match="ends in a unique field"):
        _routes(ByViews)
    with pytest.raises(ConfigurationError, match="may be NULL"):
        _routes(ByRating)
    _routes(BySlug)
    _routes(ByPrimaryKey)


def test_an_unknown_count_strategy_is_refused_at_route_build() -> None:
    class Guessed(PageNumberPagination):
        count = "roughly"  # type: ignore[assignment]

    class Things(ModelViewSet):
        model = Article
        pagination_class = Guessed

    with pytest.raises(ConfigurationError, match="'exact', 'estimated' or 'none'"):
        _routes(Things)
