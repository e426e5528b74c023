"""One error envelope for every error, whatever raised it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from core.testing import test_settings
from tests.apps import build_notes_app


class Item(BaseModel):
    name: str


plain = APIRouter()


@plain.post("/plain/items/")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name}


@plain.get("/plain/login-required/")
async def login_required() -> None:
    raise HTTPException(401, "Log in first.")


@plain.get("/plain/broken/")
async def broken() -> None:
    raise RuntimeError("database password is hunter2")


@plain.get("/plain/search/")
async def search(limit: int) -> dict[str, int]:
    return {"limit": limit}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = build_notes_app(test_settings(request_max_body_size=1000))
    app.include_router(plain)
    async with app.lifespan():
        await app.create_all()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _envelope(response: httpx.Response, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == code, body
    return body["detail"]


async def test_framework_and_fastapi_errors_share_the_envelope(http: httpx.AsyncClient) -> None:
    _envelope(await http.get("/nowhere/"), 404, "not_found")
    not_allowed = await http.delete("/api/v1/open-notes/")
    _envelope(not_allowed, 405, "method_not_allowed")
    assert "GET" in not_allowed.headers["allow"]
    unauthorized = await http.get("/plain/login-required/")
    assert _envelope(unauthorized, 401, "not_authenticated") == "Log in first."
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert _envelope(await http.post("/plain/items/", json={}), 422, "validation_error")
    query = _envelope(await http.get("/plain/search/?limit=" + "x" * 100), 422, "validation_error")
    assert query[0]["loc"] == ["query", "limit"] and len(query[0]["input"]) <= 33


async def test_plain_routes_get_the_body_limit_and_strict_parsing(http: httpx.AsyncClient) -> None:
    too_large = await http.post("/plain/items/", json={"name": "x" * 2000})
    _envelope(too_large, 413, "request_too_large")
    malformed = await http.post(
        "/plain/items/", content=b"{nope", headers={"content-type": "application/json"}
    )
    _envelope(malformed, 400, "parse_error")


async def test_a_server_error_tells_the_client_nothing(http: httpx.AsyncClient) -> None:
    response = await http.get("/plain/broken/")
    assert _envelope(response, 500, "error") == "A server error occurred."
    assert "hunter2" not in response.text


async def test_a_body_that_is_not_json_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/v1/open-notes/", content=b"a=b", headers={"content-type": "text/plain"}
    )
    _envelope(response, 405, "method_not_allowed")  # read-only: refused before anything
    response = await http.post(
        "/api/v1/authors/",
        content=b"email=a@b.io&name=A",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _envelope(response, 415, "unsupported_media_type")
