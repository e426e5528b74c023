"""Nested to-one output straight from joined rows, on the in-memory adapter and SQLite (the
cases are in tests/nested_rendering.py; tests/integration/test_nested_rendering_postgres.py
runs them on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, computed_field
from pydantic import Field as PydanticField

from core import CoreApp
from core.errors import FieldError
from core.settings import Settings
from core.testing.contracts.models import Membership, Team
from core.views import schemas
from tests import nested_rendering as cases
from tests import relations_cases
from tests.models import Article, Author


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoreApp]:
    url = "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/n.db"
    application = cases.build(Settings(database_url=url, outbox_relay_in_process=False))
    async with application.lifespan():
        await application.create_all()
        yield application


async def test_rows_and_instances_give_the_same_json(app: CoreApp) -> None:
    await cases.assert_same_bodies(app, await cases.seed(app))


async def test_two_levels_of_relations_are_one_statement(app: CoreApp) -> None:
    seeded = await cases.seed(app)
    async with relations_cases.client(app) as http:
        page, seen = await relations_cases.counted(app, http, "/rows/memberships/")
        one, seen_one = await relations_cases.counted(
            app, http, f"/rows/memberships/{seeded['memberships'][1].id}/"
        )
    assert [m["team"]["lead"] for m in page["results"]][:2] == [{"name": 'Ann "✓" \u2028'}, None]
    assert one["team"] == {"id": seeded["teams"][1].id, "name": "Unled", "lead": None}
    if relations_cases.sql(app):
        assert len(seen) == len(seen_one) == 1, seen
        assert seen[0].count("LEFT OUTER JOIN") == 3, seen  # team, team's lead, author


async def test_values_list_reads_across_to_one_relations(app: CoreApp) -> None:
    seeded = await cases.seed(app)
    async with app.session() as db:
        rows = (
            await Membership.objects.using(db)
            .order_by("id")
            .values_list("id", "team__name", "team__lead__name", "author__email")
        )
        teams = await Team.objects.using(db).order_by("id").values("name", "lead__is_active")
        with pytest.raises(FieldError, match="Author.posts is a list"):
            await Author.objects.using(db).values_list("posts__title")
        with pytest.raises(FieldError, match="no relation 'writer'"):
            await Article.objects.using(db).values_list("writer__name")
        with pytest.raises(FieldError, match="no field 'nick'"):
            await Article.objects.using(db).values_list("author__nick")
    ids = [m.id for m in seeded["memberships"]]
    assert rows == [
        (ids[0], "Led", 'Ann "✓" \u2028', "bob@x.io"),
        (ids[1], "Unled", None, "ann@x.io"),
        (ids[2], "Led", 'Ann "✓" \u2028', "ann@x.io"),
    ]
    assert teams == [
        {"name": "Led", "lead__is_active": True},
        {"name": "Unled", "lead__is_active": None},
    ]


def test_row_shape_takes_columns_and_many_to_one_relations_only() -> None:
    shape = schemas.row_shape(cases.MembershipOut, Membership)
    assert shape is not None
    assert shape.columns == (
        "role",
        "team__id",
        "team__name",
        "team__lead__name",
        "team__lead__id",  # not shown: read to tell a missing lead from one
        "author__id",
        "author__name",
        "author__email",
        "author__is_active",
        "id",
    )
    assert shape.relations == {("team",), ("team", "lead"), ("author",)}
    # Each Rows view of the comparison takes the rows path, each Instances view does not.
    for rows, instances in cases.VIEWS.values():
        assert schemas.row_shape(rows.output_schema, rows.model) is not None
        assert schemas.row_shape(instances.output_schema, instances.model) is None

    class RequiredLead(BaseModel):  # the key is nullable: only `X | None` can hold its value
        model_config = ConfigDict(from_attributes=True)
        id: int
        lead: cases.AuthorName

    class AliasedAuthor(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        writer: cases.AuthorName = PydanticField(alias="author")

    class ComputedAuthor(cases.AuthorName):
        @computed_field  # type: ignore[prop-decorator]
        @property
        def shout(self) -> str:
            return self.name.upper()

    class WithComputed(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        author: ComputedAuthor

    class WithComments(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        comments: list[relations_cases.CommentOut]

    for schema, model in [
        (RequiredLead, Team),
        (AliasedAuthor, Article),
        (WithComputed, Article),
        (WithComments, Article),
        (relations_cases.AuthorWithPosts, Author),
    ]:
        assert schemas.row_shape(schema, model) is None, schema.__name__
