"""FilterSet classes over HTTP on the in-memory adapter and SQLite, and on their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.errors import ConfigurationError, InvalidFilterError
from core.filters import CharFilter, FilterSet, NumberFilter
from core.testing import test_settings
from tests import filtering
from tests.models import Article


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoreApp]:
    database_url = (
        "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/f.db"
    )
    application = filtering.build(test_settings(database_url=database_url))
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.fixture
async def http(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield client


@pytest.fixture
async def seeded(app: CoreApp) -> dict[str, Any]:
    return await filtering.seed(app)


async def test_filters_over_http(http: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    await filtering.check_filters(http, seeded)


async def test_invalid_values_are_400_naming_the_parameter(
    http: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    await filtering.check_invalid_values(http)


async def test_openapi_parameters_are_typed(http: httpx.AsyncClient) -> None:
    await filtering.check_openapi(http)


async def test_filterset_on_its_own(app: CoreApp, seeded: dict[str, Any]) -> None:
    async with app.session() as db:
        queryset = Article.objects.using(db)
        found = await filtering.ArticleFilter({"kind": "popular", "title": "py"}, queryset).qs.all()
        assert [a.slug for a in found] == ["tips"]
        with pytest.raises(InvalidFilterError) as caught:
            _ = filtering.ArticleFilter({"year": "soon"}, queryset).qs
        assert caught.value.field == "year" and caught.value.status_code == 400


def test_meta_fields_generate_typed_filters() -> None:
    filters = filtering.ArticleFilter.base_filters
    assert type(filters["slug"]) is CharFilter and filters["slug"].lookup_expr == "exact"
    assert filters["slug__in"].lookup_expr == "in"
    assert type(filters["rating__gte"]) is NumberFilter
    assert filters["rating__gte"].field_name == "rating"


def test_mistakes_in_a_filterset_fail_at_import() -> None:
    with pytest.raises(ConfigurationError, match="no field 'colour'"):

        class Colour(FilterSet):
            colour = CharFilter()

            class Meta:
                model = Article

    with pytest.raises(ConfigurationError, match="Unknown lookup_expr 'about'"):
        CharFilter(lookup_expr="about")
    with pytest.raises(ConfigurationError, match="method 'nope' is not defined"):

        class NoMethod(FilterSet):
            odd = NumberFilter(method="nope")

    with pytest.raises(ConfigurationError, match="no relation 'editor'"):

        class Generated(FilterSet):
            class Meta:
                model = Article
                fields = ["editor__email"]
