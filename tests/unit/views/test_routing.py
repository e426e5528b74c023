"""AutoRouter: paths, operation ids, OpenAPI schemas and tags."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, Request

from core import AutoRouter, CoreApp
from core.errors import ConfigurationError
from core.testing import test_settings
from tests.apps import ArticleViewSet


async def test_openapi_operations(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/api/v1/articles/"]) == {"get", "post"}
    assert set(paths["/api/v1/articles/{id}/"]) == {"get", "put", "patch", "delete"}
    assert paths["/api/v1/articles/{id}/publish/"]["post"]["operationId"] == "article_publish"
    assert paths["/api/v1/articles/featured/"]["get"]["operationId"] == "article_featured"
    assert paths["/api/v1/articles/"]["get"]["operationId"] == "article_list"
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    retrieve = paths["/api/v1/articles/{id}/"]["get"]
    assert retrieve["tags"] == ["Articles"]
    assert retrieve["parameters"][0]["schema"]["type"] == "integer"
    assert paths["/api/v1/documents/{uuid}/"]["get"]["parameters"][0]["schema"]["format"] == "uuid"
    create = paths["/api/v1/articles/"]["post"]
    # The body is read after the permissions; its schema is documented as a named component.
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ArticleInput"}
    assert "slug" in spec["components"]["schemas"]["ArticleInput"]["properties"]
    assert "201" in create["responses"]
    assert "204" in paths["/api/v1/articles/{id}/"]["delete"]["responses"]
    listing = paths["/api/v1/articles/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "page",
        "page_size",
        "search",
        "ordering",
        "is_published",
    }
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ArticleOutputPage"
    )
    assert paths["/api/v1/health/"]["get"]["tags"] == ["System"]
    assert "/api/v1/articles" not in paths  # the slash-less twin is served but not documented


async def test_docs_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200


def test_register_accepts_spec_shapes() -> None:
    router = AutoRouter(prefix="/api/v1")
    router.register("/users", ArticleViewSet)  # basename from the model
    names = {spec.name for spec in router.route_specs()}
    assert "article-list" in names and "article-publish" in names
    paths = {spec.path for spec in router.route_specs()}
    assert "/api/v1/users/{id}" in paths


def test_api_prefix_is_not_added_twice() -> None:
    router = AutoRouter(prefix="/api/v1")
    router.register("/articles", ArticleViewSet)
    app = CoreApp(settings=test_settings(api_prefix="/api/v1"), routers=[router])
    paths = app.fastapi.openapi()["paths"]
    assert "/api/v1/articles/" in paths
    assert not any(path.startswith("/api/v1/api/v1") for path in paths)


async def test_every_enclosing_routers_dependencies_run_outermost_first() -> None:
    calls: list[str] = []

    def recorder(name: str) -> Any:
        async def record(request: Request) -> None:
            calls.append(name)

        return Depends(record)

    inner = AutoRouter(prefix="/articles", dependencies=[recorder("inner")])
    inner.register("", ArticleViewSet, basename="article")
    outer = AutoRouter(prefix="/api", dependencies=[recorder("outer")])
    outer.include_router(inner)
    app = CoreApp(settings=test_settings(), routers=[outer])
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        await app.create_all()
        for path in ("/api/articles/", "/api/articles"):
            calls.clear()
            assert (await http.get(path)).status_code == 200
            assert calls == ["outer", "inner"]


def test_a_route_name_used_twice_is_refused_at_start_up() -> None:
    router = AutoRouter()
    router.register("articles", ArticleViewSet)
    router.register("stories", ArticleViewSet)  # both default to basename "article"
    with pytest.raises(ConfigurationError, match="own basename"):
        CoreApp(settings=test_settings(), routers=[router])


BAD_FILTER = "/api/articles/?is_published=maybe"


async def test_the_apps_own_dependencies_and_their_overrides_apply_to_autorouter_routes() -> None:
    calls: list[str] = []

    async def audit(request: Request) -> None:
        calls.append(f"audit {request.method} {request.url.path}")

    async def audit_in_tests(request: Request) -> None:
        calls.append("overridden")

    router = AutoRouter(prefix="/api")
    router.register("/articles", ArticleViewSet, basename="article")
    app = CoreApp(settings=test_settings(), routers=[router], dependencies=[Depends(audit)])
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        await app.create_all()
        assert (await http.get("/api/articles/")).status_code == 200
        invalid = [await http.get(path) for path in ("/api/articles/abc/", BAD_FILTER)]
        assert calls == [
            "audit GET /api/articles/",
            "audit GET /api/articles/abc/",
            "audit GET /api/articles/",
        ]
        calls.clear()
        app.fastapi.dependency_overrides[audit] = audit_in_tests
        assert (await http.get("/api/articles/")).status_code == 200
        assert calls == ["overridden"]
    # With a dependency a route runs FastAPI's own request handler; without, Core's (which only
    # validates the parameters): a bad lookup value or filter is the same 422 either way.
    plain = CoreApp(settings=test_settings(), routers=[router])
    async with (
        plain.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=plain), base_url="http://testserver"
        ) as http,
    ):
        same = [await http.get(path) for path in ("/api/articles/abc/", BAD_FILTER)]
    assert [r.status_code for r in invalid] == [r.status_code for r in same] == [422, 422]
    assert [r.json() for r in invalid] == [r.json() for r in same]
    assert invalid[0].json()["code"] == "invalid_lookup_value"
