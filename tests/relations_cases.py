"""Relation loading by ViewSets, checked the same way on every backend.

The unit tests run these on the in-memory adapter and SQLite, the integration test on
PostgreSQL. A ViewSet loads what its output schema shows (to-one paths joined, to-many ones
prefetched) and nothing else; statements are counted with `counting_selects` (SQLAlchemy's
`before_cursor_execute` and the driver's own hook, so reads on the driver count too).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from core import AutoRouter, CoreApp, ModelViewSet
from core.settings import Settings
from core.views import schemas
from tests.models import Article, Author, Comment
from tests.pagination_cases import counting_selects


class AuthorBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class CommentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    body: str


class ArticleWithAuthor(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    author: AuthorBrief


class ArticleWithComments(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    comments: list[CommentOut]


class ArticleFull(ArticleWithAuthor):
    comments: list[CommentOut]


class AuthorWithPosts(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    posts: list[ArticleWithComments]


class ArticleNoRelation(schemas.output_schema_for(Article)):  # type: ignore[misc]
    """Every column and no relation, through instances (a serialization setting the row path
    does not take)."""

    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")


class ArticleInput(BaseModel):
    title: str
    slug: str
    author_id: int


class Posts(ModelViewSet):
    """Nested to-one output: the author is joined into the page's statement."""

    model = Article
    input_schema = ArticleInput
    output_schema = ArticleWithAuthor
    page_size = 100
    ordering = ["id"]


class PostsWithComments(Posts):
    output_schema = ArticleWithComments


class PostsFull(Posts):
    output_schema = ArticleFull


class PostsPlain(Posts):
    output_schema = None  # the derived schema: columns only, rows straight to JSON


class PostsInstances(Posts):
    output_schema = ArticleNoRelation


class PostsPrefetchingAuthors(Posts):
    """`queryset` asks for the author by prefetch: the ViewSet keeps that instead of joining."""

    queryset = Article.objects.prefetch_related("author")


class Authors(ModelViewSet):
    model = Author
    output_schema = AuthorWithPosts
    ordering = ["id"]


VIEWS: dict[str, type[ModelViewSet]] = {
    "posts": Posts,
    "posts-comments": PostsWithComments,
    "posts-full": PostsFull,
    "posts-plain": PostsPlain,
    "posts-instances": PostsInstances,
    "posts-prefetching": PostsPrefetchingAuthors,
    "authors": Authors,
}


def build(settings: Settings) -> CoreApp:
    router = AutoRouter()
    for path, view in VIEWS.items():
        router.register(path, view, basename=path)
    return CoreApp(settings=settings, routers=[router])


def client(app: CoreApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def seed(app: CoreApp, posts: int) -> list[int]:
    """Three authors; `posts` articles spread over them, every third with two comments.
    Returns the authors' ids."""
    async with app.session() as db:
        authors = [
            await Author.objects.create(email=f"a{i}@x.io", name=f"Author {i}", db=db)
            for i in range(3)
        ]
        articles = await Article.objects.bulk_create(
            [
                {"title": f"t{i}", "slug": f"s{i}", "author_id": authors[i % 3].id}
                for i in range(posts)
            ],
            db=db,
        )
        await Comment.objects.bulk_create(
            [
                {"article_id": article.id, "body": f"c{article.id}-{k}"}
                for article in articles[::3]
                for k in range(2)
            ],
            db=db,
        )
    return [a.id for a in authors]


def sql(app: CoreApp) -> bool:
    return app.container.database.database().url != "memory://"


async def counted(app: CoreApp, http: httpx.AsyncClient, path: str) -> tuple[Any, list[str]]:
    """The response body of GET `path`, and the SELECTs it sent to the database (compiled
    plans warmed first; none on the in-memory adapter)."""
    await http.get(path)
    if not sql(app):
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return response.json(), []
    with counting_selects(app) as seen:
        response = await http.get(path)
        for _ in range(3):  # asyncpg hands logged queries to the loop's next turns
            await asyncio.sleep(0)
    assert response.status_code == 200, response.text
    if app.container.database.database().engine.dialect.name == "postgresql":
        # asyncpg's query logger leaves out the prepared statements SQLAlchemy's execution runs.
        return response.json(), seen.sent + seen.executed
    return response.json(), seen.sent  # aiosqlite's trace callback sees every statement


def _relation_tables(statements: list[str]) -> list[str]:
    return [s for s in statements if "test_authors" in s or "test_comments" in s]


async def list_with_author_costs_fixed_statements(app: CoreApp) -> None:
    """100 posts with their author: one statement, as for 10 (the page, the author joined,
    its count a subquery: rows straight to JSON), never one per row; the right author on
    every post. Retrieving one post with its author is one statement too."""
    authors = await seed(app, 100)
    async with client(app) as http:
        body, seen = await counted(app, http, "/posts/")
        small, seen_small = await counted(app, http, "/posts/?page_size=10")
        one, seen_one = await counted(app, http, f"/posts/{body['results'][4]['id']}/")
    assert body["count"] == 100 and len(body["results"]) == 100
    for i, post in enumerate(body["results"]):
        assert post["author"] == {"id": authors[i % 3], "name": f"Author {i % 3}"}
    assert len(small["results"]) == 10
    assert one == body["results"][4]
    if sql(app):
        statements = seen
        assert len(statements) == len(seen_small) == 1, statements
        assert "LEFT OUTER JOIN test_authors" in statements[0], statements
        assert len(seen_one) == 1 and "LEFT OUTER JOIN test_authors" in seen_one[0], seen_one


async def list_without_relations_loads_none(app: CoreApp) -> None:
    """A schema that shows no relation: exactly the page's statement(s), none on another
    table, on the rows path (one statement) and the instances path (page and count)."""
    await seed(app, 30)
    async with client(app) as http:
        plain, seen_plain = await counted(app, http, "/posts-plain/")
        instances, seen_instances = await counted(app, http, "/posts-instances/")
    assert plain["count"] == instances["count"] == 30
    assert "author" not in plain["results"][0] and "author" not in instances["results"][0]
    if sql(app):
        assert len(seen_plain) == 1, seen_plain
        statements = seen_instances
        assert len(statements) == 2, statements  # the page and its count
        assert _relation_tables(statements) == [], statements


async def list_with_lists_prefetches(app: CoreApp) -> None:
    """A list of comments per post: one more statement for all of them (1 + 1, and the count);
    to-one and to-many together: the JOIN and the one more statement."""
    await seed(app, 30)
    async with client(app) as http:
        body, seen = await counted(app, http, "/posts-comments/")
        full, seen_full = await counted(app, http, "/posts-full/")
    bodies = {p["slug"]: [c["body"] for c in p["comments"]] for p in body["results"]}
    first = body["results"][0]["id"]
    assert bodies["s0"] == [f"c{first}-0", f"c{first}-1"] and bodies["s1"] == []
    assert full["results"][0]["author"]["name"] == "Author 0"
    assert [c["body"] for c in full["results"][3]["comments"]] == bodies["s3"]
    if sql(app):
        statements = seen
        assert len(statements) == 3, statements  # page, comments IN (...), count
        assert len([s for s in statements if "FROM test_comments" in s]) == 1
        statements = seen_full
        assert len(statements) == 3, statements
        assert len([s for s in statements if "JOIN test_authors" in s]) == 1


async def nested_prefetch_paths(app: CoreApp) -> None:
    """Authors with their posts with their comments: 1 + 1 + 1 (and the count) for any number
    of each."""
    await seed(app, 30)
    async with client(app) as http:
        body, seen = await counted(app, http, "/authors/")
    assert [len(a["posts"]) for a in body["results"]] == [10, 10, 10]
    comments = sum(len(p["comments"]) for a in body["results"] for p in a["posts"])
    assert comments == 20
    if sql(app):
        statements = seen
        assert len(statements) == 4, statements


async def queryset_loads_are_respected(app: CoreApp) -> None:
    """A `queryset` that prefetches the author keeps the prefetch (no JOIN): 1 + 1 + count."""
    await seed(app, 12)
    async with client(app) as http:
        body, seen = await counted(app, http, "/posts-prefetching/")
    assert body["results"][1]["author"]["name"] == "Author 1"
    if sql(app):
        statements = seen
        assert [s for s in statements if "JOIN" in s] == [], statements
        assert len(statements) == 3, statements


async def retrieve_create_update_show_relations(app: CoreApp) -> None:
    """One object: its author joined on retrieve; a create and an update answer with the
    relation as it now is (an update that moves the post shows the new author)."""
    authors = await seed(app, 3)
    async with client(app) as http:
        listed = (await http.get("/posts-full/")).json()["results"]
        one, seen = await counted(app, http, f"/posts-full/{listed[0]['id']}/")
        assert one["author"]["id"] == authors[0] and len(one["comments"]) == 2
        if sql(app):
            statements = seen
            assert len(statements) == 2, statements  # the post with its author; its comments
        created = await http.post(
            "/posts-full/", json={"title": "N", "slug": "new", "author_id": authors[2]}
        )
        assert created.status_code == 201, created.text
        assert created.json()["author"] == {"id": authors[2], "name": "Author 2"}
        assert created.json()["comments"] == []
        moved = await http.patch(f"/posts-full/{listed[0]['id']}/", json={"author_id": authors[1]})
        assert moved.status_code == 200, moved.text
        assert moved.json()["author"] == {"id": authors[1], "name": "Author 1"}
        again = (await http.get(f"/posts-full/{listed[0]['id']}/")).json()
        assert again["author"]["id"] == authors[1]


# Each backend's test file runs every one of these against its own app.
VIEWSET_CASES = (
    list_with_author_costs_fixed_statements,
    list_without_relations_loads_none,
    list_with_lists_prefetches,
    nested_prefetch_paths,
    queryset_loads_are_respected,
    retrieve_create_update_show_relations,
)
