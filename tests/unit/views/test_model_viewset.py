"""ModelViewSet routes, status codes, envelopes and error bodies, as a client sees them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from core import CoreApp
from tests.models import Article, Document

H_ANN = {"x-user": "ann"}


async def test_list_is_public_and_paginated(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/articles/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and len(body["results"]) == 2
    assert body["previous"] is None
    assert body["next"] == "http://testserver/api/v1/articles/?page=2"
    page2 = (await client.get(body["next"])).json()
    assert [a["slug"] for a in page2["results"]] == ["draft", "again"]
    assert page2["previous"] == "http://testserver/api/v1/articles/" and page2["next"] is None


async def test_page_size_is_capped(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    body = (await client.get("/api/v1/articles/?page_size=50")).json()
    assert len(body["results"]) == 3
    assert (await client.get("/api/v1/articles/?page=9")).status_code == 404
    # Parsed once, by the paginator: a 400 naming the parameter.
    bad = await client.get("/api/v1/articles/?page=zero")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_pagination"
    assert "'page' must be an integer" in bad.json()["detail"]
    bad = await client.get("/api/v1/articles/?page_size=0")
    assert bad.status_code == 400 and "'page_size' must be between 1" in bad.json()["detail"]


async def test_filter_search_ordering(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    def slugs(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [a["slug"] for a in response.json()["results"]]

    assert slugs(await client.get("/api/v1/articles/?is_published=false")) == ["draft"]
    assert slugs(await client.get("/api/v1/articles/?views__gte=150&ordering=-views")) == [
        "again",
        "python-tips",
    ]
    assert slugs(await client.get("/api/v1/articles/?search=HELLO&ordering=title")) == [
        "again",
        "hello",
    ]
    assert slugs(await client.get("/api/v1/articles/?ordering=-views&page_size=3")) == [
        "again",
        "python-tips",
        "hello",
    ]


async def test_unknown_filter_or_ordering_is_400(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/articles/?password=x")
    assert response.status_code == 400
    assert "Unknown filter field 'password'" in response.json()["detail"]
    response = await client.get("/api/v1/articles/?ordering=slug")
    assert response.status_code == 400 and "Cannot order by 'slug'" in response.json()["detail"]
    response = await client.get("/api/v1/articles/?views=lots")  # a documented, typed parameter
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "views"]
    response = await client.get("/api/v1/articles/?views__gte=lots")
    assert response.status_code == 400 and "expected integer" in response.json()["detail"]


async def test_retrieve_and_404(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    article = seeded["articles"]["hello"]
    response = await client.get(f"/api/v1/articles/{article.id}/")
    assert response.status_code == 200
    assert response.json()["slug"] == "hello" and "content" not in response.json()
    assert (await client.get("/api/v1/articles/9999/")).status_code == 404


async def test_trailing_slash_optional_without_redirect(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    article = seeded["articles"]["hello"]
    for path in ("/api/v1/articles", f"/api/v1/articles/{article.id}", "/api/v1/articles/featured"):
        response = await client.get(path)
        assert response.status_code == 200, path


async def test_invalid_lookup_value_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/articles/abc/")
    assert response.status_code == 422
    assert response.json() == {
        "detail": {
            "error": "invalid_lookup_value",
            "message": "Invalid id format. Expected integer.",
            "field": "id",
            "value": "abc",
            "expected_type": "integer",
        },
        "code": "invalid_lookup_value",
    }
    response = await client.get("/api/v1/documents/not-a-uuid/")
    assert response.status_code == 422 and response.json()["detail"]["expected_type"] == "uuid"


async def test_uuid_lookup(client: httpx.AsyncClient, app: CoreApp) -> None:
    async with app.session() as db:
        doc = await Document.objects.create(name="spec", db=db)
    response = await client.get(f"/api/v1/documents/{doc.uuid}/")
    assert response.status_code == 200 and response.json()["name"] == "spec"
    assert (await client.get(f"/api/v1/documents/{uuid.uuid4()}/")).status_code == 404


async def test_create_is_201_and_validates(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    payload = {"title": "New", "slug": "new", "author_id": seeded["ann"].id}
    response = await client.post("/api/v1/articles/", json=payload, headers=H_ANN)
    assert response.status_code == 201
    assert response.json()["slug"] == "new" and isinstance(response.json()["id"], int)
    missing = await client.post("/api/v1/articles/", json={"title": "x"}, headers=H_ANN)
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "slug"),
        ("body", "author_id"),
    }
    wrong = await client.post(
        "/api/v1/articles/", json={**payload, "slug": "n2", "views": "many"}, headers=H_ANN
    )
    assert wrong.status_code == 422
    malformed = await client.post(
        "/api/v1/articles/",
        content=b"{not json",
        headers={**H_ANN, "content-type": "application/json"},
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "parse_error"


async def test_unique_and_foreign_key_violations_are_409(
    client: httpx.AsyncClient, app: CoreApp, seeded: dict[str, Any]
) -> None:
    payload = {"title": "Dup", "slug": "hello", "author_id": seeded["ann"].id}
    response = await client.post("/api/v1/articles/", json=payload, headers=H_ANN)
    assert response.status_code == 409
    assert response.json()["field"] == "slug" and "already exists" in response.json()["detail"]
    orphan = await client.post(
        "/api/v1/articles/", json={**payload, "slug": "orphan", "author_id": 424242}, headers=H_ANN
    )
    assert orphan.status_code == 409 and orphan.json()["code"] == "foreign_key"
    async with app.session() as db:
        assert await Article.objects.using(db).count() == 4  # nothing written, nothing lost


async def test_unique_race_answers_409_from_the_database(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    # Authors declare no unique_fields: only the column's constraint catches the duplicate.
    response = await client.post("/api/v1/authors/", json={"email": "ann@x.io", "name": "Again"})
    assert response.status_code == 409 and response.json()["field"] == "email"


async def test_update_partial_update_destroy(
    client: httpx.AsyncClient, app: CoreApp, seeded: dict[str, Any]
) -> None:
    article = seeded["articles"]["hello"]
    url = f"/api/v1/articles/{article.id}/"
    full = {"title": "Hello!", "slug": "hello", "author_id": seeded["ann"].id, "views": 11}
    response = await client.put(url, json=full, headers=H_ANN)
    assert response.status_code == 200 and response.json()["title"] == "Hello!"
    response = await client.patch(url, json={"views": 12}, headers=H_ANN)
    assert (
        response.status_code == 200
        and response.json()["views"] == 12
        and response.json()["title"] == "Hello!"
    )
    taken = await client.patch(url, json={"slug": "draft"}, headers=H_ANN)
    assert taken.status_code == 409 and taken.json()["field"] == "slug"
    response = await client.delete(url, headers={"x-user": "mod"})
    assert response.status_code == 204 and response.content == b""
    assert (await client.get(url)).status_code == 404


async def test_actions(client: httpx.AsyncClient, app: CoreApp, seeded: dict[str, Any]) -> None:
    draft = seeded["articles"]["draft"]
    response = await client.post(f"/api/v1/articles/{draft.id}/publish/", headers=H_ANN)
    assert response.status_code == 200 and response.json() == {"published": True}
    async with app.session() as db:
        assert (await Article.objects.using(db).get(id=draft.id)).is_published is True
    featured = await client.get("/api/v1/articles/featured/")
    assert [a["slug"] for a in featured.json()] == ["python-tips", "again"]
    raw = await client.get(f"/api/v1/articles/{draft.id}/raw/", headers=H_ANN)
    assert raw.json()["slug"] == "draft" and "content" not in raw.json()
    hidden = await client.post(
        "/api/v1/articles/bulk-hide/", json={"ids": [draft.id]}, headers={"x-user": "editor"}
    )
    assert hidden.json() == {"hidden": 1}
    malformed = await client.post(
        "/api/v1/articles/bulk-hide/",
        content=b"{",
        headers={"x-user": "editor", "content-type": "application/json"},
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "parse_error"


async def test_failed_request_rolls_back(
    client: httpx.AsyncClient, app: CoreApp, seeded: dict[str, Any]
) -> None:
    # The publish action saves, then a later step fails: nothing of the request may persist.
    draft = seeded["articles"]["draft"]
    response = await client.post(
        f"/api/v1/articles/{draft.id}/publish/", headers={"x-user": "nobody"}
    )
    assert response.status_code == 401
    async with app.session() as db:
        assert (await Article.objects.using(db).get(id=draft.id)).is_published is False


async def test_derived_schemas_and_limit_offset(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    body = (await client.get("/api/v1/authors/?limit=1&offset=1")).json()
    assert body["count"] == 2 and [a["name"] for a in body["results"]] == ["Bob"]
    assert set(body["results"][0]) == {"id", "email", "name", "is_active"}
    assert (
        body["next"] is None
        and body["previous"] == "http://testserver/api/v1/authors/?limit=1&offset=0"
    )
    created = await client.post("/api/v1/authors/", json={"email": "cy@x.io", "name": "Cy"})
    assert created.status_code == 201 and created.json()["is_active"] is True
    extra = await client.post(
        "/api/v1/authors/", json={"email": "d@x.io", "name": "D", "id": 5, "x": 1}
    )
    assert extra.status_code == 422


async def test_read_only_viewset_refuses_writes(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/documents/", json={"name": "x"})).status_code == 405
    assert (await client.delete(f"/api/v1/documents/{uuid.uuid4()}/")).status_code == 405


async def test_apiview(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/health/")).json() == {"status": "healthy"}
    assert (await client.post("/api/v1/health", json={"a": 1})).json() == {"echo": {"a": 1}}
