"""Relation loading by ViewSets on PostgreSQL (the cases are in tests/relations_cases.py): a
fixed number of statements whatever the page's size, JOINs for to-one paths, one more
statement per to-many relation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from core import CoreApp
from core.settings import Settings
from tests import relations_cases as cases
from tests import services

pytestmark = pytest.mark.postgres


@pytest.fixture
async def app(postgres_url: str) -> AsyncIterator[CoreApp]:
    url = await services.create_database(postgres_url, "core_relations")
    try:
        # No outbox relay polling beside the requests: the statement counts see only theirs.
        application = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
        async with application.lifespan():
            await application.create_all()
            yield application
    finally:
        await services.drop_database(postgres_url, url)


@pytest.mark.parametrize(
    "case",
    cases.VIEWSET_CASES,
    ids=lambda case: case.__name__,
)
async def test_viewset_relation_loading(
    app: CoreApp, case: Callable[[CoreApp], Awaitable[None]]
) -> None:
    await case(app)
