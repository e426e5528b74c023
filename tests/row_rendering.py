"""Rows straight to JSON must give the bytes the schema-validated path gives, on every backend.

Each resource is served twice: by a ViewSet whose output schema is plain columns (list and
retrieve read rows, no instances) and by one whose schema differs only by a serialization
setting the row path does not take (so it validates instances). The bodies must be equal.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from core import AutoRouter, CoreApp, ModelViewSet
from core.settings import Settings
from core.views import schemas
from tests.models import Article, Author, Document


class DocumentOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: uuid.UUID
    name: str
    price: decimal.Decimal | None
    due: datetime.date | None


class ArticleRows(ModelViewSet):
    model = Article  # the derived output schema: every column, floats and datetimes included
    ordering_fields = ["id"]


class ArticleInstances(ArticleRows):
    class Output(schemas.output_schema_for(Article)):  # type: ignore[misc]
        model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")

    output_schema = Output


class DocumentRows(ModelViewSet):
    model = Document
    output_schema = DocumentOutput
    lookup_field = "uuid"


class DocumentInstances(DocumentRows):
    class Output(DocumentOutput):
        model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")

    output_schema = Output


def build(settings: Settings) -> CoreApp:
    router = AutoRouter()
    router.register("rows/articles", ArticleRows, basename="row-article")
    router.register("instances/articles", ArticleInstances, basename="instance-article")
    router.register("rows/documents", DocumentRows, basename="row-document")
    router.register("instances/documents", DocumentInstances, basename="instance-document")
    return CoreApp(settings=settings, routers=[router])


async def seed(app: CoreApp) -> dict[str, Any]:
    async with app.session() as db:
        ann = await Author.objects.create(email="rows@x.io", name="Ann", db=db)
        articles = [
            await Article.objects.create(
                title=title, slug=slug, content=content, rating=rating, author_id=ann.id, db=db
            )
            for title, slug, content, rating in [
                ('Olá, "mundo" ✓', "ola", "line\nbreak \\ and \u2028", 4.25),
                ("No rating", "none", None, None),
                ("Big", "big", "x" * 500, 1e300),
            ]
        ]
        documents = [
            await Document.objects.create(name=name, price=price, due=due, db=db)
            for name, price, due in [
                ("priced", decimal.Decimal("1234.50"), datetime.date(2026, 2, 28)),
                ("free", None, None),
            ]
        ]
    return {"articles": articles, "documents": documents}


async def assert_same_bodies(app: CoreApp, seeded: dict[str, Any]) -> None:
    """List (pages, ordering), retrieve and create (and their errors) answer the same both
    ways."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        paths = [
            "articles/",
            "articles/?page_size=2",
            "articles/?page=2&page_size=2",
            "articles/?ordering=-id",
            "documents/",
            *(f"articles/{a.id}/" for a in seeded["articles"]),
            *(f"documents/{d.uuid}/" for d in seeded["documents"]),
        ]
        for path in paths:
            rows = await http.get(f"/rows/{path}")
            instances = await http.get(f"/instances/{path}")
            assert rows.status_code == instances.status_code == 200, (path, rows.text)
            assert rows.content == instances.content.replace(b"instances/", b"rows/"), path
        author_id = seeded["articles"][0].author_id
        for body, status in [
            ({"title": "New", "slug": "{}-new", "author_id": author_id, "rating": 2.5}, 201),
            ({"title": "Dup", "slug": "ola", "author_id": author_id}, 409),  # unique slug
            ({"title": "Orphan", "slug": "{}-orphan", "author_id": 10**6}, 409),  # no author
        ]:
            answers = [
                await http.post(
                    f"/{way}/articles/", json={**body, "slug": body["slug"].format(way)}
                )
                for way in ("rows", "instances")
            ]
            assert [a.status_code for a in answers] == [status, status], answers[0].text
            created = [a.json() for a in answers]
            if status == 201:
                for item in created:
                    assert item.pop("slug").endswith("-new")
                    for generated in ("id", "created_at", "updated_at"):
                        assert item.pop(generated)
            assert created[0] == created[1]
        document = {"name": "posted", "price": "3.10", "due": "2027-01-01"}
        answers = [
            await http.post(f"/{way}/documents/", json=document) for way in ("rows", "instances")
        ]
        assert [a.status_code for a in answers] == [201, 201]
        assert [{**a.json(), "uuid": None} for a in answers] == [
            {"uuid": None, "name": "posted", "price": "3.10", "due": "2027-01-01"}
        ] * 2
        for kind in ("articles/0", f"documents/{uuid.uuid4()}"):
            rows = await http.get(f"/rows/{kind}/")
            instances = await http.get(f"/instances/{kind}/")
            assert rows.status_code == instances.status_code == 404
            assert rows.json() == instances.json()
