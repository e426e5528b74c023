"""The Repository contract: one suite, run on every adapter (memory, SQLite, PostgreSQL).

A subclass provides the `container` fixture: a root container whose database has the tables of
`core.testing.contracts.models` (on `Model.metadata`) and no rows. Every test goes through the
public QuerySet/Model API, so this is also the contract of `Model.objects` for users.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from core.containers.core import CoreContainer
from core.context import use_container
from core.errors import (
    FieldError,
    ForeignKeyViolationError,
    NoActiveContextError,
    NotFoundError,
    NotNullViolationError,
    UniqueViolationError,
)
from core.models import Q, RelationNotLoadedError
from core.models.session import unit_of_work
from core.testing.contracts.models import Article, Author, Comment, Document, Membership, Team


class RepositoryContract:
    @pytest.fixture
    def container(self) -> Iterator[CoreContainer]:
        raise NotImplementedError("a backend's test class provides the container")

    @pytest.fixture
    async def db(self, container: CoreContainer) -> AsyncIterator[Any]:
        with use_container(container):
            async with unit_of_work(container) as session:
                yield session

    @pytest.fixture
    async def seeded(self, db: Any) -> dict[str, Any]:
        ann = await Author.objects.create(email="ann@example.com", name="Ann", db=db)
        bob = await Author.objects.create(
            email="Bob@Example.com", name="Bob", is_active=False, db=db
        )
        articles = [
            await Article.objects.create(
                title=title,
                slug=slug,
                views=views,
                rating=rating,
                is_published=published,
                author_id=author.id,
                content=content,
                db=db,
            )
            for title, slug, views, rating, published, author, content in [
                ("Hello World", "hello-world", 10, 4.5, True, ann, "first post"),
                ("Python Tips", "python-tips", 150, 3.0, True, ann, None),
                ("Draft_100%", "draft", 0, None, False, bob, "not yet"),
                ("hello again", "hello-again", 200, 5.0, True, bob, "second"),
            ]
        ]
        await Comment.objects.create(article_id=articles[0].id, body="great read", db=db)
        await Comment.objects.create(article_id=articles[1].id, body="thanks", db=db)
        return {"ann": ann, "bob": bob, "articles": articles}

    @staticmethod
    async def slugs(qs: Any) -> list[str]:
        """The matching slugs, read as instances; the row reads (values_list, count, exists,
        compiled per shape with bound values) must agree."""
        from_instances = sorted(a.slug for a in await qs.all())
        from_rows = sorted(row[0] for row in await qs.values_list("slug"))
        assert from_rows == from_instances
        assert await qs.count() == len(from_rows)
        assert await qs.exists() is bool(from_rows)
        return from_instances

    # -- create, get -----------------------------------------------------------------------
    async def test_create_sets_primary_key_and_defaults(self, db: Any) -> None:
        author = await Author.objects.create(email="a@x.io", name="A", db=db)
        article = await Article.objects.using(db).create(title="T", slug="t", author_id=author.id)
        assert isinstance(article.id, int)
        assert article.views == 0 and article.is_published is False and author.is_active is True
        assert isinstance(article.created_at, datetime.datetime)
        stored = await Article.objects.using(db).filter(id=article.id).values("created_at")
        assert stored[0]["created_at"].tzinfo is not None  # aware on every backend, SQLite too

    async def test_get_and_get_or_none(self, db: Any, seeded: dict[str, Any]) -> None:
        post = await Article.objects.using(db).get(slug="python-tips")
        assert post.title == "Python Tips"
        assert await Article.objects.using(db).get_or_none(slug="nope") is None
        with pytest.raises(Article.DoesNotExist):
            await Article.objects.using(db).get(slug="nope")
        with pytest.raises(Article.MultipleObjectsReturned):
            await Article.objects.using(db).get(is_published=True)

    async def test_does_not_exist_is_per_model(self, db: Any) -> None:
        assert issubclass(Article.DoesNotExist, NotFoundError)
        assert not issubclass(Article.DoesNotExist, Author.DoesNotExist)
        with pytest.raises(NotFoundError):
            await Author.objects.using(db).get(id=12345)

    async def test_uuid_primary_key_and_typed_columns(self, db: Any) -> None:
        doc = await Document.objects.create(
            name="spec",
            meta={"a": [1, 2]},
            price=decimal.Decimal("9.99"),
            due=datetime.date(2026, 1, 2),
            db=db,
        )
        assert isinstance(doc.uuid, uuid.UUID)
        found = await Document.objects.using(db).get(uuid=str(doc.uuid))
        assert found.name == "spec" and found.meta == {"a": [1, 2]}
        assert found.price == decimal.Decimal("9.99") and found.due == datetime.date(2026, 1, 2)
        assert await Document.objects.using(db).filter(due__gte="2026-01-01").count() == 1

    async def test_date_part_lookups(self, db: Any, seeded: dict[str, Any]) -> None:
        for name, due in [
            ("new-year", datetime.date(2026, 1, 1)),
            ("leap", datetime.date(2024, 2, 29)),
        ]:
            await Document.objects.create(name=name, due=due, db=db)
        documents = Document.objects.using(db)
        assert [d.name for d in await documents.filter(due__year=2024).all()] == ["leap"]
        assert [d.name for d in await documents.filter(due__month="1").all()] == ["new-year"]
        assert await documents.filter(due__day=29, due__month=2).count() == 1
        late = datetime.datetime(2025, 12, 31, 23, 30, tzinfo=datetime.UTC)  # parts in UTC
        article = await Article.objects.using(db).create(
            title="Late", slug="late", author_id=seeded["ann"].id, created_at=late
        )
        articles = Article.objects.using(db)
        found = await articles.filter(created_at__year=2025, created_at__month=12).values_list("id")
        assert found == [(article.id,)]
        assert await articles.filter(created_at__day=31, id=article.id).count() == 1
        for bad in ({"due__month": 13}, {"due__year": "soon"}):
            with pytest.raises(FieldError):
                documents.filter(**bad)
        with pytest.raises(FieldError, match="date or datetime"):
            Article.objects.using(db).filter(views__year=2024)

    # -- lookups ---------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("lookup", "expected"),
        [
            ({"title": "Hello World"}, ["hello-world"]),
            ({"title__exact": "hello world"}, []),
            ({"title__iexact": "HELLO WORLD"}, ["hello-world"]),
            ({"title__contains": "ello"}, ["hello-again", "hello-world"]),
            ({"title__contains": "Hello"}, ["hello-world"]),
            ({"title__icontains": "HELLO"}, ["hello-again", "hello-world"]),
            ({"title__contains": "_100%"}, ["draft"]),
            ({"title__contains": "%"}, ["draft"]),
            ({"slug__in": ["draft", "python-tips", "missing"]}, ["draft", "python-tips"]),
            ({"views__gt": 10}, ["hello-again", "python-tips"]),
            ({"views__gte": 10}, ["hello-again", "hello-world", "python-tips"]),
            ({"views__lt": 10}, ["draft"]),
            ({"views__lte": 10}, ["draft", "hello-world"]),
            ({"title__startswith": "hello"}, ["hello-again"]),
            ({"title__istartswith": "hello"}, ["hello-again", "hello-world"]),
            ({"title__endswith": "Tips"}, ["python-tips"]),
            ({"title__iendswith": "AGAIN"}, ["hello-again"]),
            ({"rating__isnull": True}, ["draft"]),
            ({"content__isnull": False}, ["draft", "hello-again", "hello-world"]),
            ({"views__range": (10, 150)}, ["hello-world", "python-tips"]),
            ({"rating": None}, ["draft"]),
            ({"is_published": "false"}, ["draft"]),
            ({"views": "150"}, ["python-tips"]),
            ({"pk__in": []}, []),
        ],
    )
    async def test_lookups(
        self, db: Any, seeded: dict[str, Any], lookup: dict[str, Any], expected: list[str]
    ) -> None:
        assert await self.slugs(Article.objects.using(db).filter(**lookup)) == expected

    async def test_lookups_across_relations(self, db: Any, seeded: dict[str, Any]) -> None:
        articles = Article.objects.using(db)
        assert await self.slugs(articles.filter(author__email="ann@example.com")) == [
            "hello-world",
            "python-tips",
        ]
        assert await self.slugs(
            articles.filter(author__email__icontains="EXAMPLE", author__is_active=False)
        ) == [
            "draft",
            "hello-again",
        ]
        assert await self.slugs(articles.filter(comments__body__contains="read")) == ["hello-world"]
        comments = Comment.objects.using(db)
        assert [
            c.body
            for c in await comments.filter(article__author__name="Ann").order_by("body").all()
        ] == [
            "great read",
            "thanks",
        ]

    async def test_exclude_and_q_objects(self, db: Any, seeded: dict[str, Any]) -> None:
        articles = Article.objects.using(db)
        assert await self.slugs(articles.exclude(is_published=True)) == ["draft"]
        assert await self.slugs(articles.filter(Q(slug="draft") | Q(views__gt=150))) == [
            "draft",
            "hello-again",
        ]
        assert await self.slugs(articles.filter(~Q(author__name="Ann"), is_published=True)) == [
            "hello-again"
        ]
        # SQL semantics: a NULL rating is neither > 4 nor not > 4.
        assert await self.slugs(articles.exclude(rating__gt=4)) == ["python-tips"]

    async def test_order_window_first_last(self, db: Any, seeded: dict[str, Any]) -> None:
        articles = Article.objects.using(db)
        ordered = articles.order_by("-views")
        assert [a.views for a in await ordered.all()] == [200, 150, 10, 0]
        assert [a.views for a in await ordered.limit(2).offset(1).all()] == [150, 10]
        assert [a.views for a in await ordered[1:3].all()] == [150, 10]
        assert [a.views for a in await ordered[2:].all()] == [10, 0]
        assert (await ordered.first()).views == 200  # type: ignore[union-attr]
        assert (await ordered.last()).views == 0  # type: ignore[union-attr]
        assert [a.rating for a in await articles.order_by("rating").all()] == [3.0, 4.5, 5.0, None]
        assert [a.slug for a in await articles.order_by("author_id", "-slug").all()] == [
            "python-tips",
            "hello-world",
            "hello-again",
            "draft",
        ]
        assert (await articles.filter(slug="nope").first()) is None

    async def test_count_exists_values(self, db: Any, seeded: dict[str, Any]) -> None:
        articles = Article.objects.using(db)
        assert await articles.count() == 4
        assert await articles.filter(is_published=True).count() == 3
        assert await articles.order_by("id")[1:].count() == 3
        assert await articles.filter(slug="draft").exists() is True
        assert await articles.filter(slug="nope").exists() is False
        rows = await articles.filter(slug="draft").values("slug", "views")
        assert rows == [{"slug": "draft", "views": 0}]

    async def test_values_list_rows_typed_as_the_columns(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        articles = Article.objects.using(db)
        rows = (
            await articles.filter(slug__in=["draft", "hello-world"])
            .order_by("slug")
            .values_list("slug", "is_published", "rating", "created_at")
        )
        assert [r[:3] for r in rows] == [("draft", False, None), ("hello-world", True, 4.5)]
        assert all(type(r[1]) is bool for r in rows)
        assert all(isinstance(r[3], datetime.datetime) and r[3].tzinfo for r in rows)
        everything = await articles.filter(slug="draft").values_list()
        assert len(everything) == 1 and len(everything[0]) == len(Article.__table__.columns)
        doc = await Document.objects.create(
            name="d",
            meta={"k": 1},
            price=decimal.Decimal("1.50"),
            due=datetime.date(2026, 3, 4),
            db=db,
        )
        ((uid, meta, price, due),) = await Document.objects.using(db).values_list(
            "uuid", "meta", "price", "due"
        )
        assert (uid, meta, price, due) == (doc.uuid, {"k": 1}, decimal.Decimal("1.50"), doc.due)

    async def test_reads_see_the_unit_of_works_own_writes(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        articles = Article.objects.using(db)
        await articles.filter(slug="draft").update(views=99)
        await Article.objects.create(
            title="New", slug="new", author_id=seeded["ann"].id, views=5, db=db
        )
        assert await articles.filter(slug__in=["draft", "new"]).order_by("slug").values_list(
            "slug", "views"
        ) == [("draft", 99), ("new", 5)]
        assert await articles.count() == 5
        assert await articles.filter(slug="new").exists()

    async def test_same_shape_reads_take_each_calls_values(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        # Statements are compiled once per shape; the values bound must be this call's own.
        articles = Article.objects.using(db)
        for slug in ("draft", "python-tips", "nope"):
            assert await articles.filter(slug=slug).values_list("slug") == (
                [(slug,)] if slug != "nope" else []
            )
        for slugs in (["draft"], ["draft", "hello-world", "python-tips"]):
            assert await articles.filter(slug__in=slugs).count() == len(slugs)
        for page in range(4):
            assert len(await articles.order_by("id")[page : page + 2].values_list("id")) == min(
                2, 4 - page
            )

    async def test_insert_returning_applies_defaults_and_returns_the_stored_row(
        self, container: CoreContainer, seeded: dict[str, Any], db: Any
    ) -> None:
        author_id = seeded["ann"].id
        row = await Article.objects.using(db).insert_returning(
            {"title": "Fast", "slug": "fast", "author_id": author_id},
            ["id", "slug", "views", "is_published", "created_at"],
        )
        assert isinstance(row[0], int) and row[1:4] == ("fast", 0, False)
        assert isinstance(row[4], datetime.datetime) and row[4].tzinfo is not None
        stored = await Article.objects.using(db).get(id=row[0])
        assert (stored.slug, stored.views) == ("fast", 0)
        (uid,) = await Document.objects.using(db).insert_returning({"name": "n"}, ["uuid"])
        assert isinstance(uid, uuid.UUID)
        with pytest.raises(FieldError):
            await Article.objects.using(db).insert_returning({"nope": 1}, ["id"])

    async def test_insert_returning_refuses_what_the_constraints_refuse(
        self, container: CoreContainer
    ) -> None:
        # Each in a unit of work that has done nothing else, with autocommit: the INSERT is a
        # transaction of its own (on SQL, run on the driver).
        with use_container(container):
            async with unit_of_work(container) as db:
                author = await Author.objects.create(email="c@x.io", name="C", db=db)
                await Article.objects.create(title="T", slug="taken", author_id=author.id, db=db)
            values = {"title": "T", "slug": "taken", "author_id": author.id}
            with pytest.raises(UniqueViolationError) as unique:
                async with unit_of_work(container) as db:
                    await Article.objects.using(db).insert_returning(
                        values, ["id"], autocommit=True
                    )
            assert unique.value.field == "slug"
            with pytest.raises(ForeignKeyViolationError):
                async with unit_of_work(container) as db:
                    await Article.objects.using(db).insert_returning(
                        {**values, "slug": "x", "author_id": 999999}, ["id"], autocommit=True
                    )
            # Nothing half-done stays behind, and the next write works.
            async with unit_of_work(container) as db:
                row = await Article.objects.using(db).insert_returning(
                    {**values, "slug": "ok"}, ["slug"], autocommit=True
                )
            assert row == ("ok",)
            async with unit_of_work(container) as db:
                slugs = await Article.objects.using(db).order_by("slug").values_list("slug")
            assert slugs == [("ok",), ("taken",)]

    async def test_insert_returning_in_a_unit_of_work_rolls_back_with_it(
        self, container: CoreContainer
    ) -> None:
        with use_container(container):
            with pytest.raises(RuntimeError):
                async with unit_of_work(container) as db:
                    author = await Author.objects.create(email="first@x.io", name="F", db=db)
                    await Article.objects.using(db).insert_returning(
                        {"title": "T", "slug": "rolled", "author_id": author.id}, ["id"]
                    )
                    raise RuntimeError("undo")
            async with unit_of_work(container) as db:
                assert not await Article.objects.using(db).filter(slug="rolled").exists()
                assert not await Author.objects.using(db).filter(email="first@x.io").exists()
                author = await Author.objects.create(email="kept@x.io", name="K", db=db)
            # First write of its unit of work: without autocommit it still waits for the commit;
            # with it, it is durable at once.
            for autocommit, slug in ((False, "waits"), (True, "alone")):
                with pytest.raises(RuntimeError):
                    async with unit_of_work(container) as db:
                        await Article.objects.using(db).insert_returning(
                            {"title": "T", "slug": slug, "author_id": author.id},
                            ["id"],
                            autocommit=autocommit,
                        )
                        raise RuntimeError("undo")
            async with unit_of_work(container) as db:
                kept = Article.objects.using(db).filter(slug__in=["waits", "alone"])
                assert await kept.values_list("slug") == [("alone",)]

    # -- bulk writes -----------------------------------------------------------------------
    async def test_update_and_delete_querysets(self, db: Any, seeded: dict[str, Any]) -> None:
        articles = Article.objects.using(db)
        assert await articles.filter(author__name="Bob").update(views=7) == 2
        assert sorted(a.views for a in await articles.filter(author__name="Bob").all()) == [7, 7]
        assert await articles.filter(views__lt=10).delete() == 2
        assert await self.slugs(articles) == ["hello-world", "python-tips"]

    async def test_bulk_create(self, db: Any, seeded: dict[str, Any]) -> None:
        created = await Article.objects.using(db).bulk_create(
            [{"title": f"B{i}", "slug": f"b{i}", "author_id": seeded["ann"].id} for i in range(3)]
        )
        assert all(isinstance(a.id, int) for a in created)
        assert await Article.objects.using(db).filter(slug__startswith="b").count() == 3

    async def test_get_or_create(self, db: Any, seeded: dict[str, Any]) -> None:
        found, created = await Author.objects.get_or_create(email="ann@example.com", db=db)
        assert (found.id, created) == (seeded["ann"].id, False)
        new, created = await Author.objects.get_or_create(
            {"name": "Cid"}, email="cid@example.com", db=db
        )
        assert created and new.name == "Cid"

    # -- relations ---------------------------------------------------------------------------
    @pytest.fixture
    async def teams(self, db: Any, seeded: dict[str, Any]) -> dict[str, Any]:
        ann, bob = seeded["ann"], seeded["bob"]
        core = await Team.objects.create(name="Core", lead_id=ann.id, db=db)
        docs = await Team.objects.create(name="Docs", db=db)  # no lead
        for team, author, role in [
            (core, ann, "lead"),
            (core, bob, "member"),
            (docs, bob, "editor"),
        ]:
            await Membership.objects.create(team_id=team.id, author_id=author.id, role=role, db=db)
        return {"core": core, "docs": docs}

    async def test_relations_load_only_when_asked(self, db: Any, seeded: dict[str, Any]) -> None:
        post = await Article.objects.using(db).get(slug="hello-world")
        with pytest.raises(RelationNotLoadedError, match=r"prefetch_related\('comments'\)"):
            _ = post.comments
        loaded = await Article.objects.using(db).prefetch_related("comments").get(id=post.id)
        assert loaded is post or loaded.id == post.id  # the unit of work's own object, now loaded
        assert [c.body for c in loaded.comments] == ["great read"]

    async def test_select_related_joins_to_one_relations(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        articles = Article.objects.using(db).select_related("author")
        assert [(a.slug, a.author.name) for a in await articles.order_by("id").all()] == [
            ("hello-world", "Ann"),
            ("python-tips", "Ann"),
            ("draft", "Bob"),
            ("hello-again", "Bob"),
        ]
        first = await articles.filter(is_published=False).first()
        assert first is not None and first.author.email == "Bob@Example.com"
        got = await articles.get(pk=seeded["articles"][1].id)
        assert got.author.name == "Ann"
        window = await articles.order_by("-views")[1:2].all()
        assert [(a.slug, a.author.name) for a in window] == [("python-tips", "Ann")]
        assert [a.author.name async for a in articles.filter(author__name="Bob")] == ["Bob", "Bob"]

    async def test_select_related_follows_nested_and_empty_to_one_paths(
        self, db: Any, teams: dict[str, Any]
    ) -> None:
        memberships = Membership.objects.using(db).select_related("team__lead", "author")
        found = [
            (m.author.name, m.team.name, m.team.lead.name if m.team.lead else None)
            for m in await memberships.order_by("id").all()
        ]
        assert found == [("Ann", "Core", "Ann"), ("Bob", "Core", "Ann"), ("Bob", "Docs", None)]

    async def test_prefetch_related_loads_lists_and_nested_paths(
        self, db: Any, seeded: dict[str, Any], teams: dict[str, Any]
    ) -> None:
        authors = await Author.objects.using(db).prefetch_related("posts__comments").all()
        assert {a.name: sorted(p.slug for p in a.posts) for a in authors} == {
            "Ann": ["hello-world", "python-tips"],
            "Bob": ["draft", "hello-again"],
        }
        assert {p.slug: [c.body for c in p.comments] for a in authors for p in a.posts} == {
            "hello-world": ["great read"],
            "python-tips": ["thanks"],
            "draft": [],
            "hello-again": [],
        }
        # Through a link model (a many-to-many), in the relationship's own order_by.
        team_list = await Team.objects.using(db).prefetch_related("members__author").all()
        assert {t.name: [(m.role, m.author.name) for m in t.members] for t in team_list} == {
            "Core": [("lead", "Ann"), ("member", "Bob")],
            "Docs": [("editor", "Bob")],
        }
        # Joined and prefetched along one path: the join loads the author, one more statement
        # its posts.
        posts = (
            await Article.objects.using(db)
            .select_related("author")
            .prefetch_related("author__posts")
            .filter(slug="draft")
            .all()
        )
        assert sorted(p.slug for p in posts[0].author.posts) == ["draft", "hello-again"]

    async def test_loading_composes_and_leaves_the_queryset_unchanged(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        base = Article.objects.using(db).filter(is_published=True)
        loading = base.select_related("author").order_by("-views").prefetch_related("comments")
        assert base.query.loads == ()
        assert [load.path for load in loading.query.loads] == [("author",), ("comments",)]
        assert [load.strategy for load in loading.query.loads] == ["joined", "selectin"]
        # A relation both joined and prefetched is joined.
        both = base.prefetch_related("author").select_related("author")
        assert [(load.path, load.strategy) for load in both.query.loads] == [
            (("author",), "joined")
        ]
        top = await loading.filter(views__gte=150).first()
        assert top is not None and (top.author.name, len(top.comments)) == ("Bob", 0)
        # Row reads ignore what instances would load.
        assert await loading.values_list("slug") == [
            ("hello-again",),
            ("python-tips",),
            ("hello-world",),
        ]
        assert await loading.count() == 3

    async def test_unknown_or_wrong_relations_are_field_errors(self, db: Any) -> None:
        with pytest.raises(FieldError, match="Article has no relation 'editor'.*Relations: author"):
            Article.objects.select_related("editor")
        with pytest.raises(
            FieldError, match="Author has no relation 'team' \\(in 'author__team'\\)"
        ):
            Article.objects.prefetch_related("author__team")
        with pytest.raises(FieldError, match=r"Article.comments is a list: use prefetch_related"):
            Article.objects.select_related("comments")
        with pytest.raises(FieldError, match="no relation 'title'"):
            Article.objects.prefetch_related("title")
        with pytest.raises(FieldError, match="relation path is a string"):
            Article.objects.select_related(["author"])  # type: ignore[arg-type]

    async def test_a_changed_key_reloads_its_relation(
        self, db: Any, seeded: dict[str, Any]
    ) -> None:
        post = await Article.objects.using(db).select_related("author").get(slug="draft")
        assert post.author.name == "Bob"
        post.author_id = seeded["ann"].id
        await post.save(db)
        again = await Article.objects.using(db).select_related("author").get(slug="draft")
        assert again.author.name == "Ann"

    # -- instances ---------------------------------------------------------------------------
    async def test_instance_save_delete_refresh(self, db: Any, seeded: dict[str, Any]) -> None:
        post = await Article.objects.using(db).get(slug="draft")
        post.is_published = True
        post.title = "Ready"
        await post.save(db)
        assert (await Article.objects.using(db).get(slug="draft")).title == "Ready"
        new = Article(title="N", slug="n", author_id=seeded["ann"].id)
        await new.save(db)
        assert isinstance(new.id, int)
        await Article.objects.using(db).filter(id=new.id).update(title="Changed")
        await new.refresh(db)
        assert new.title == "Changed"
        await new.delete(db)
        assert await Article.objects.using(db).filter(id=new.id).exists() is False

    # -- constraints -------------------------------------------------------------------------
    async def test_unique_violation_names_the_field(self, db: Any, seeded: dict[str, Any]) -> None:
        with pytest.raises(UniqueViolationError) as caught:
            await Article.objects.create(title="X", slug="draft", author_id=seeded["ann"].id, db=db)
        assert caught.value.field == "slug"

    async def test_foreign_key_to_nothing(self, db: Any) -> None:
        with pytest.raises(ForeignKeyViolationError):
            await Article.objects.create(title="X", slug="x", author_id=999_999, db=db)

    async def test_missing_required_value(self, db: Any) -> None:
        with pytest.raises(NotNullViolationError):
            await Author.objects.create(email="no-name@x.io", db=db)

    async def test_delete_cascades(self, db: Any, seeded: dict[str, Any]) -> None:
        await seeded["bob"].delete(db)
        assert await self.slugs(Article.objects.using(db)) == ["hello-world", "python-tips"]
        await Article.objects.using(db).filter(slug="hello-world").delete()
        assert [c.body for c in await Comment.objects.using(db).all()] == ["thanks"]

    # -- clear errors, never SQL errors -------------------------------------------------------
    async def test_unknown_field_lookup_or_value(self, db: Any) -> None:
        with pytest.raises(FieldError, match="no field 'titel'"):
            Article.objects.filter(titel="x")
        with pytest.raises(FieldError, match="Unsupported lookup 'regex'"):
            Article.objects.filter(title__regex="x")
        with pytest.raises(FieldError, match="no relation 'editor'"):
            Article.objects.filter(editor__name="x")
        with pytest.raises(FieldError, match="expected integer"):
            Article.objects.filter(views="many")
        with pytest.raises(FieldError, match="Cannot order"):
            Article.objects.order_by("-nope")
        with pytest.raises(FieldError, match="no field 'nope'"):
            await Article.objects.create(nope=1, db=db)
        with pytest.raises(FieldError, match="out of range"):
            Article.objects.filter(views__gt=2**40)
        with pytest.raises(FieldError, match="expected uuid"):
            Document.objects.filter(uuid="not-a-uuid")

    async def test_no_session_outside_a_unit_of_work(self, container: CoreContainer) -> None:
        with use_container(container), pytest.raises(NoActiveContextError, match="using"):
            await Article.objects.count()

    # -- units of work -----------------------------------------------------------------------
    async def test_commit_persists_and_error_rolls_back(self, container: CoreContainer) -> None:
        with use_container(container):
            async with unit_of_work(container) as db:
                await Author.objects.create(email="kept@x.io", name="Kept", db=db)
            with pytest.raises(RuntimeError):
                async with unit_of_work(container):
                    await Author.objects.create(email="lost@x.io", name="Lost")  # ambient session
                    raise RuntimeError("boom")
            async with unit_of_work(container) as db:
                emails = [a.email for a in await Author.objects.using(db).order_by("email").all()]
        assert emails == ["kept@x.io"]
