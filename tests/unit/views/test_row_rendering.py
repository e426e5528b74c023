"""List and retrieve write rows straight to JSON when nothing needs model instances."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, computed_field, field_serializer
from pydantic import Field as PydanticField

from core import AutoRouter, CoreApp, ModelViewSet
from core.permissions import AllowAny, Permission
from core.settings import Settings
from core.views import schemas
from tests.models import Article, Author
from tests.row_rendering import ArticleInstances, ArticleRows, assert_same_bodies, build, seed


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_rows_and_instances_give_the_same_json(backend: str, tmp_path: Path) -> None:
    url = "memory://" if backend == "memory" else f"sqlite+aiosqlite:///{tmp_path}/rows.db"
    app = build(Settings(database_url=url))
    async with app.lifespan():
        await app.create_all()
        await assert_same_bodies(app, await seed(app))


class Plain(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str | None
    created_at: datetime.datetime


def test_plain_columns_takes_only_schemas_whose_json_is_the_columns() -> None:
    assert schemas.plain_columns(Plain, Article) == ("id", "title", "content", "created_at")

    class Subset(BaseModel):
        title: str

    class Renamed(BaseModel):
        headline: str  # not a column

    class Retyped(BaseModel):
        id: str  # the column is an int: validation would convert it

    class Serialized(Plain):
        @field_serializer("title")
        def shout(self, value: str) -> str:
            return value.upper()

    class Computed(Plain):
        @computed_field  # type: ignore[prop-decorator]
        @property
        def short(self) -> str:
            return self.title[:3]

    class Configured(Plain):
        model_config = ConfigDict(from_attributes=True, ser_json_timedelta="float")

    class WithAlias(BaseModel):
        title: str = PydanticField(serialization_alias="headline")

    assert schemas.plain_columns(Subset, Article) == ("title",)
    for schema in (Renamed, Retyped, Serialized, Computed, Configured, WithAlias):
        assert schemas.plain_columns(schema, Article) is None, schema.__name__


class HidesPopular(Permission):
    async def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return bool(obj.views < 100)


class ObjectChecked(ModelViewSet):
    model = Article
    output_schema = Plain
    permission_classes = [AllowAny & HidesPopular]


class Shouting(ModelViewSet):
    model = Article
    output_schema = Plain

    async def retrieve(self, request: Any, db: Any, **kwargs: Any) -> Any:
        article = await super().retrieve(request, db, **kwargs)
        article.title = article.title.upper()
        return article


async def test_instances_are_loaded_when_a_permission_or_an_override_needs_them() -> None:
    router = AutoRouter()
    router.register("checked", ObjectChecked, basename="checked")
    router.register("shouting", Shouting, basename="shouting")
    app = CoreApp(settings=Settings(database_url="memory://"), routers=[router])
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        async with app.session() as db:
            author = await Author.objects.create(email="a@x.io", name="A", db=db)
            quiet, popular = [
                await Article.objects.create(
                    title=f"t{views}", slug=f"s{views}", views=views, author_id=author.id, db=db
                )
                for views in (1, 500)
            ]
        assert (await http.get(f"/checked/{quiet.id}/")).status_code == 200
        # Refused on the object (401: nobody is logged in).
        assert (await http.get(f"/checked/{popular.id}/")).status_code == 401
        assert (await http.get(f"/shouting/{quiet.id}/")).json()["title"] == "T1"


def test_the_row_paths_are_taken_exactly_when_nothing_needs_an_instance() -> None:
    def view(cls: type[ModelViewSet], action: str) -> ModelViewSet:
        instance = cls()
        instance.action = action
        return instance

    assert view(ArticleRows, "retrieve")._row_shape() is not None
    assert view(ArticleRows, "create")._insert_columns({"title": "x", "slug": "x"}) is not None
    assert view(ArticleRows, "create")._insert_columns({"author": None}) is None  # a relation
    assert view(ArticleInstances, "retrieve")._row_shape() is None
    assert view(ArticleInstances, "create")._insert_columns({"title": "x"}) is None
    assert view(ObjectChecked, "retrieve")._row_shape() is None
