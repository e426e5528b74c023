"""An output schema's serialization aliases are the keys of every answer: list, retrieve, create
and an action returning instances, as FastAPI's `response_model` writes them."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from core import AutoRouter, CoreApp, ModelViewSet, action
from core.permissions import AllowAny
from core.settings import Settings
from tests.models import Article, Author


class Headlined(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str = PydanticField(serialization_alias="headline")


class HeadlinedArticles(ModelViewSet):
    model = Article
    output_schema = Headlined
    permission_classes = [AllowAny]

    @action(detail=False, methods=["get"])
    async def everything(self, request: Any, db: Any) -> Any:
        return await Article.objects.using(db).all()


async def test_list_retrieve_and_actions_write_the_same_aliased_keys() -> None:
    router = AutoRouter()
    router.register("articles", HeadlinedArticles, basename="articles")
    app = CoreApp(settings=Settings(database_url="memory://"), routers=[router])
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        async with app.session() as db:
            author = await Author.objects.create(email="a@x.io", name="A", db=db)
            article = await Article.objects.create(
                title="Hello", slug="hello", author_id=author.id, db=db
            )
        expected = {"id": article.id, "headline": "Hello"}
        assert (await http.get(f"/articles/{article.id}/")).json() == expected
        assert (await http.get("/articles/")).json()["results"] == [expected]
        assert (await http.get("/articles/everything/")).json() == [expected]
        document = (await http.get("/openapi.json")).json()
        assert "headline" in document["components"]["schemas"]["Headlined"]["properties"]
