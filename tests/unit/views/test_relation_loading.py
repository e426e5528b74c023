"""Relation loading by ViewSets on the in-memory adapter and SQLite (the cases are in
tests/relations_cases.py; tests/integration/test_relations_postgres.py runs them on
PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from core import CoreApp
from core.settings import Settings
from core.views import schemas
from tests import relations_cases as cases
from tests.models import Article, Author


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoreApp]:
    url = "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/r.db"
    # No outbox relay polling beside the requests: the statement counts see only theirs.
    application = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.mark.parametrize(
    "case",
    cases.VIEWSET_CASES,
    ids=lambda case: case.__name__,
)
async def test_viewset_relation_loading(
    app: CoreApp, case: Callable[[CoreApp], Awaitable[None]]
) -> None:
    await case(app)


def test_the_output_schema_says_what_is_loaded() -> None:
    assert schemas.relation_paths(cases.ArticleWithAuthor, Article) == (("author",), ())
    assert schemas.relation_paths(cases.ArticleFull, Article) == (("author",), ("comments",))
    assert schemas.relation_paths(cases.AuthorWithPosts, Author) == (
        (),
        ("posts", "posts__comments"),
    )
    assert schemas.relation_paths(schemas.output_schema_for(Article), Article) == ((), ())

    class Optional(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        author: cases.AuthorBrief | None = None

    class Aliased(BaseModel):  # `from_attributes` reads the alias
        model_config = ConfigDict(from_attributes=True)
        writer: cases.AuthorBrief | None = PydanticField(None, alias="author")
        notes: list[cases.CommentOut] = []  # not a relation of Article: nothing to load

    assert schemas.relation_paths(Optional, Article) == (("author",), ())
    assert schemas.relation_paths(Aliased, Article) == (("author",), ())


def test_a_schema_inside_itself_loads_one_level() -> None:
    class AuthorTree(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        posts: list[PostTree] = []

    class PostTree(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        author: AuthorTree

    AuthorTree.model_rebuild()
    assert schemas.relation_paths(AuthorTree, Author) == ((), ("posts", "posts__author"))
