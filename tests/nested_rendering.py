"""Nested to-one output from rows must give the bytes the schema-validated path gives.

Each resource is served twice: by a ViewSet whose output schema is columns and many-to-one
relations (list and retrieve read one joined statement, no instances) and by one whose schema
differs only by a serialization setting the row path does not take (so it loads instances,
the relations joined by SQLAlchemy). The bodies must be equal, on every backend: a required
relation, a nullable one (null when the key is NULL), two levels (`team.lead`), the same table
reached twice, a nested schema that does not show the related key, filters across a relation,
page-number, cursor and unpaginated lists.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

import httpx
from pydantic import BaseModel, ConfigDict

from core import AutoRouter, CoreApp, ModelViewSet
from core.settings import Settings
from core.testing.contracts.models import Membership, Team
from core.views.pagination import CursorPagination
from tests.models import Article, Author

_INSTANCES = ConfigDict(from_attributes=True, ser_json_inf_nan="null")


class AuthorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    is_active: bool


class AuthorName(BaseModel):
    """The related key is not shown: the rows still read it, to tell null from an object."""

    model_config = ConfigDict(from_attributes=True)

    name: str


class PostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    author: AuthorOut
    rating: float | None
    created_at: datetime.datetime


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    lead: AuthorName | None


class MembershipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role: str
    team: TeamOut
    author: Optional[AuthorOut]  # noqa: UP045  (the other spelling of a nullable relation)
    id: int


class Posts(ModelViewSet):
    model = Article
    output_schema = PostOut
    ordering_fields = ["id", "title"]
    filterset_fields = ["author__name", "author__is_active"]


class PostsInstances(Posts):
    class Output(PostOut):
        model_config = _INSTANCES

    output_schema = Output


class PostsCursor(Posts):
    pagination_class = CursorPagination
    page_size = 2


class PostsCursorInstances(PostsCursor):
    output_schema = PostsInstances.Output


class Teams(ModelViewSet):
    model = Team
    output_schema = TeamOut
    pagination_class = None
    ordering = ["id"]


class TeamsInstances(Teams):
    class Output(TeamOut):
        model_config = _INSTANCES

    output_schema = Output


class Memberships(ModelViewSet):
    model = Membership
    output_schema = MembershipOut
    ordering_fields = ["id"]


class MembershipsInstances(Memberships):
    class Output(MembershipOut):
        model_config = _INSTANCES

    output_schema = Output


VIEWS: dict[str, tuple[type[ModelViewSet], type[ModelViewSet]]] = {
    "posts": (Posts, PostsInstances),
    "cursor-posts": (PostsCursor, PostsCursorInstances),
    "teams": (Teams, TeamsInstances),
    "memberships": (Memberships, MembershipsInstances),
}


def build(settings: Settings) -> CoreApp:
    router = AutoRouter()
    for name, (rows, instances) in VIEWS.items():
        router.register(f"rows/{name}", rows, basename=f"rows-{name}")
        router.register(f"instances/{name}", instances, basename=f"instances-{name}")
    return CoreApp(settings=settings, routers=[router])


async def seed(app: CoreApp) -> dict[str, list[Any]]:
    async with app.session() as db:
        ann = await Author.objects.create(email="ann@x.io", name='Ann "✓" \u2028', db=db)
        bob = await Author.objects.create(email="bob@x.io", name="Bob", is_active=False, db=db)
        posts = [
            await Article.objects.create(
                title=title, slug=f"n{i}", rating=rating, author_id=author.id, db=db
            )
            for i, (title, rating, author) in enumerate(
                [("One", 4.5, ann), ("Two", None, bob), ("Three", 1e300, ann), ("Four", 0.1, bob)]
            )
        ]
        led = await Team.objects.create(name="Led", lead_id=ann.id, db=db)
        unled = await Team.objects.create(name="Unled", db=db)
        memberships = [
            await Membership.objects.create(team_id=team.id, author_id=author.id, role=role, db=db)
            for team, author, role in [(led, bob, "member"), (unled, ann, "owner"), (led, ann, "x")]
        ]
    return {"posts": posts, "teams": [led, unled], "memberships": memberships}


async def assert_same_bodies(app: CoreApp, seeded: dict[str, list[Any]]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        paths = [
            "posts/",
            "posts/?page_size=2",
            "posts/?page=2&page_size=3",
            "posts/?ordering=-title",
            "posts/?author__name=Bob",
            "posts/?author__is_active=false&ordering=-id",
            "cursor-posts/",
            "cursor-posts/?ordering=-id",
            "teams/",
            "memberships/",
            "memberships/?ordering=-id&page_size=2",
            *(f"posts/{p.id}/" for p in seeded["posts"]),
            *(f"teams/{t.id}/" for t in seeded["teams"]),
            *(f"memberships/{m.id}/" for m in seeded["memberships"]),
        ]
        for path in paths:
            rows = await http.get(f"/rows/{path}")
            instances = await http.get(f"/instances/{path}")
            assert rows.status_code == instances.status_code == 200, (path, rows.text)
            assert rows.content == instances.content.replace(b"instances/", b"rows/"), path
        # Follow the cursor pages both ways.
        for way in ("rows", "instances"):
            seen = []
            url: str | None = f"/{way}/cursor-posts/"
            while url:
                page = (await http.get(url)).json()
                seen += [p["title"] for p in page["results"]]
                url = page["next"]
            assert seen == ["One", "Two", "Three", "Four"], way
        teams = (await http.get("/rows/teams/")).json()
        assert [t["lead"] for t in teams] == [{"name": 'Ann "✓" \u2028'}, None]
        first = (await http.get(f"/rows/memberships/{seeded['memberships'][0].id}/")).json()
        assert first["team"]["lead"]["name"].startswith("Ann")
        assert first["author"]["name"] == "Bob" and first["author"]["is_active"] is False
        for path in ("posts/0/", "memberships/0/", "posts/?author__name__x=1"):
            rows = await http.get(f"/rows/{path}")
            instances = await http.get(f"/instances/{path}")
            assert rows.status_code == instances.status_code and rows.status_code in (400, 404)
            assert rows.json() == instances.json()
