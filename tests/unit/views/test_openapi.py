"""The OpenAPI document CoreApp serves: valid, secured per operation, consistent ids and
summaries, list parameters as enforced, typed actions, `servers` and `license`, and the 405's
`Allow` header of its paths."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate
from pydantic import BaseModel, computed_field
from pydantic import Field as PydanticField
from sqlalchemy.orm import Mapped
from starlette.requests import Request
from starlette.routing import Router

from core import APIView, AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.auth.views import AuthViewSet
from core.permissions import AllowAny, IsAuthenticated, can_refuse, resolve_permissions
from core.testing import test_settings
from tests.apps import ArticleInput, ArticleOutput, build_app
from tests.models import Article

METHODS = {"get", "put", "post", "delete", "patch"}


class Summary(BaseModel):
    published: int


class Stats(BaseModel):
    total: int


class ReportViewSet(ModelViewSet):
    """Typed actions: from the return annotation, from `response_model`, and a model."""

    model = Article
    input_schema = ArticleInput
    output_schema = ArticleOutput
    permission_classes = [AllowAny]

    @action(methods=["GET"], detail=False)
    async def summary(self, request: Request, db: Any, **kwargs: Any) -> Summary:
        """How many are published."""
        return Summary(published=0)

    @action(methods=["GET"], detail=False, response_model=Stats)
    async def stats(self, request: Request, db: Any, **kwargs: Any) -> Any:
        return {"total": 0}

    @action(methods=["POST"], detail=True, permission_classes=[IsAuthenticated])
    async def touch(self, request: Request, db: Any, **kwargs: Any) -> Article:
        return await self.get_object(db, **kwargs)  # type: ignore[no-any-return]

    @action(methods=["GET"], detail=False)
    async def counts(self, request: Request, db: Any, **kwargs: Any) -> dict[str, int]:
        return {}


class PingView(APIView):
    permission_classes = [AllowAny]

    async def get(self, request: Request, **kwargs: Any) -> dict[str, str]:
        return {"ping": "pong"}


def _app(**settings: Any) -> CoreApp:
    app = build_app(test_settings(**settings))
    extra = AutoRouter(prefix="/api/v1")
    extra.register("/auth", AuthViewSet)
    extra.register("/reports", ReportViewSet, basename="report")
    extra.register("/ping", PingView)
    extra.register("/pong", PingView, basename="ping-pong")
    app.include_router(extra)
    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _app().fastapi.openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _operation(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    (found,) = [op for _, _, op in _operations(document) if op["operationId"] == operation_id]
    return found


def _ok_schema(operation: dict[str, Any]) -> dict[str, Any]:
    response = operation["responses"].get("200") or operation["responses"]["201"]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on any error of the OpenAPI 3.1 specification


def test_operations_carry_the_security_their_permissions_need(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["BearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert "POST /api/v1/auth/login/" in scheme["description"]
    bearer = [{"BearerAuth": []}]
    # AllowAny: no security at all, so generated clients and /docs send no token.
    assert _operation(document, "auth_login")["security"] == []
    assert _operation(document, "auth_register")["security"] == []
    assert _operation(document, "health_get")["security"] == []
    assert _operation(document, "article_featured")["security"] == []
    # Permissions that can refuse an anonymous caller: the bearer token.
    assert _operation(document, "auth_me")["security"] == bearer
    assert _operation(document, "article_create")["security"] == bearer
    assert _operation(document, "article_publish")["security"] == bearer
    assert _operation(document, "report_touch")["security"] == bearer
    for _, _, operation in _operations(document):
        assert "security" in operation, operation["operationId"]
        refusable = "403" in operation["responses"]
        assert (operation["security"] == bearer) is refusable, operation["operationId"]


def test_each_operations_security_follows_its_permission_classes() -> None:
    app = _app()
    document = app.fastapi.openapi()
    by_id = {operation["operationId"]: operation for _, _, operation in _operations(document)}
    checked = 0
    for spec in app.routes:
        operation = by_id[spec.operation_id]
        permissions = resolve_permissions(list(spec.permissions))
        if any(can_refuse(permission) for permission in permissions):
            expected: list[dict[str, list[str]]] = [{"BearerAuth": []}]
        else:  # AllowAny alone (or nothing that refuses an anonymous caller)
            expected = []
        assert operation["security"] == expected, (spec.operation_id, permissions)
        checked += 1
    assert checked == len(by_id)  # every operation of the document


def test_the_document_has_no_scheme_when_nothing_needs_one() -> None:
    router = AutoRouter(prefix="/api")
    router.register("/ping", PingView)
    document = CoreApp(settings=test_settings(), routers=[router]).fastapi.openapi()
    assert "securitySchemes" not in document.get("components", {})
    validate(document)


def test_operation_ids_are_snake_case_and_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    # One separator: `<basename>_<action>`, a dashed basename included.
    assert {"article_partial_update", "article_list", "auth_me", "ping_pong_get"} <= set(ids)


def test_summaries_and_descriptions_name_the_model(document: dict[str, Any]) -> None:
    assert _operation(document, "article_list")["summary"] == "List Article objects"
    assert _operation(document, "article_partial_update")["summary"] == "Partially update Article"
    assert "Article" in _operation(document, "article_destroy")["description"]
    assert "Author" in _operation(document, "author_create")["description"]
    # Actions: the first sentence of their docstring, else their name and the model's.
    assert _operation(document, "report_summary")["summary"] == "How many are published"
    assert _operation(document, "report_stats")["summary"] == "Stats (Article)"
    assert _operation(document, "auth_logout")["summary"] == "Revoke the tokens of this login"
    assert all(op.get("summary") for _, _, op in _operations(document))


def test_ordering_is_an_enum_and_page_links_are_uris(document: dict[str, Any]) -> None:
    listing = _operation(document, "article_list")
    (ordering,) = [p for p in listing["parameters"] if p["name"] == "ordering"]
    assert ordering["schema"]["type"] == "string"
    assert ordering["schema"]["enum"] == ["views", "-views", "title", "-title", "id", "-id"]
    page = document["components"]["schemas"]["ArticleOutputPage"]["properties"]
    for link in ("next", "previous"):
        assert {"type": "string", "format": "uri"} in page[link]["anyOf"]


def test_actions_and_apiviews_have_typed_responses(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert _ok_schema(_operation(document, "report_summary"))["$ref"].endswith("/Summary")
    assert _ok_schema(_operation(document, "report_stats"))["$ref"].endswith("/Stats")
    # A model returned is served through the ViewSet's output schema.
    touch = _ok_schema(_operation(document, "report_touch"))["$ref"].rsplit("/", 1)[-1]
    assert touch == "ArticleOutput" and "title" in schemas[touch]["properties"]
    counts = _ok_schema(_operation(document, "report_counts"))
    assert counts["additionalProperties"] == {"type": "integer"}
    ping = _ok_schema(_operation(document, "ping_get"))
    assert ping["additionalProperties"] == {"type": "string"}
    # AuthViewSet's user-returning actions name the user's schema.
    for operation_id in ("auth_me", "auth_register"):
        ref = _ok_schema(_operation(document, operation_id))["$ref"]
        assert ref.endswith("/UserOutput")
    assert {"id", "email", "is_active"} <= set(schemas["UserOutput"]["properties"])
    assert _ok_schema(_operation(document, "auth_login"))["$ref"].endswith("/TokenPair")


def test_servers_and_license_come_from_the_settings(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "/"}]
    assert document["info"]["license"] == {"name": "Proprietary"}
    custom = _app(
        openapi_servers="https://api.example.com, https://staging.example.com",
        openapi_license_name="MIT",
        openapi_license_url="https://opensource.org/license/mit",
    ).fastapi.openapi()
    assert [s["url"] for s in custom["servers"]] == [
        "https://api.example.com",
        "https://staging.example.com",
    ]
    assert custom["info"]["license"] == {
        "name": "MIT",
        "url": "https://opensource.org/license/mit",
    }
    validate(custom)
    assert "license" not in _app(openapi_license_name="").fastapi.openapi()["info"]


async def test_docs_can_be_turned_off() -> None:
    app = _app(docs_enabled=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path
        # The API itself is still served.
        assert (await client.get("/api/v1/health/")).status_code == 200
    on = _app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=on), base_url="http://test"
    ) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


async def test_a_405_allows_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/articles/", "/api/v1/articles"):
        response = await client.put(path, json={})
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.json()["code"] == "method_not_allowed"
    detail = await client.post("/api/v1/articles/1/")
    assert detail.status_code == 405
    assert detail.headers["allow"] == "DELETE, GET, PATCH, PUT"
    read_only = await client.delete("/api/v1/documents/")
    assert read_only.status_code == 405 and read_only.headers["allow"] == "GET"
    action_route = await client.get("/api/v1/articles/1/publish/")
    assert action_route.status_code == 405 and action_route.headers["allow"] == "POST"
    # A collection action's path is no object id: PUT there is its 405, not `/{id}/`'s 422.
    for path in ("/api/v1/articles/featured/", "/api/v1/articles/featured"):
        shadowed = await client.put(path, json={})
        assert shadowed.status_code == 405, shadowed.text
        assert shadowed.headers["allow"] == "GET"
    assert (await client.put("/api/v1/articles/bulk-hide/")).headers["allow"] == "POST"


async def test_bodies_take_json_types_as_documented(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    # The document says boolean, integer and string: 0, "5" and 7 are refused, not coerced.
    ann = {"x-user": "ann"}
    body = {"title": "T", "slug": "strict", "author_id": seeded["ann"].id}
    for field, value in (("is_published", 0), ("views", "5"), ("title", 7)):
        response = await client.post("/api/v1/articles/", json={**body, field: value}, headers=ann)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    # 5.0 is an integer to JSON Schema, so it is one here too.
    created = await client.post("/api/v1/articles/", json={**body, "views": 5.0}, headers=ann)
    assert created.status_code == 201, created.text
    assert created.json()["views"] == 5


def test_a_host_app_gets_the_scheme_its_core_operations_name() -> None:
    host = FastAPI(title="Host")
    _app().attach(host)
    document = host.openapi()
    assert document["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/auth/me/"]["get"]["security"] == [{"BearerAuth": []}]
    validate(document)


async def test_a_bare_router_answers_its_405_with_the_allow_header() -> None:
    # An AutoRouter's routes served by Starlette alone (no FastAPI app around them).
    router = AutoRouter(prefix="/api")
    router.register("/ping", PingView)
    router.register("/reports", ReportViewSet, basename="report")
    bare = Router(routes=router.api_router().routes)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bare), base_url="http://test"
    ) as client:
        response = await client.delete("/api/reports/")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"


# -- request bodies as named components ----------------------------------------------------------
class Move(BaseModel):
    """Where to move an article."""

    position: int = 0


class Tagged(BaseModel):
    """Both a body and an answer, whose two schemas differ (`length` is only sent)."""

    tag: str = "news"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def length(self) -> int:
        return len(self.tag)


class SignUp(BaseModel):
    email: str
    password: str
    invitation: str


class InvitedAuthViewSet(AuthViewSet):
    register_schema = SignUp


class MoveViewSet(ModelViewSet):
    model = Article
    input_schema = ArticleInput
    output_schema = ArticleOutput
    permission_classes = [AllowAny]

    @action(methods=["POST"], detail=True, request_model=Move)
    async def move(self, request: Request, db: Any, **kwargs: Any) -> dict[str, int]:
        return {"position": Move.model_validate(await request.json()).position}

    @action(methods=["POST"], detail=False, request_model=Tagged, response_model=Tagged)
    async def tag(self, request: Request, db: Any, **kwargs: Any) -> Any:
        return Tagged.model_validate(await request.json())


def _body_ref(operation: dict[str, Any]) -> str:
    ref: str = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return ref.removeprefix("#/components/schemas/")


def test_bodies_are_named_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for operation_id, name in (
        ("auth_register", "RegisterInput"),
        ("auth_login", "LoginInput"),
        ("auth_refresh", "RefreshInput"),
        ("auth_logout", "RefreshInput"),
        ("article_create", "ArticleInput"),
        ("article_update", "ArticleInput"),
        ("article_partial_update", "ArticleInputPartial"),
    ):
        operation = _operation(document, operation_id)
        assert operation["requestBody"]["required"] is True
        assert _body_ref(operation) == name, operation_id
        assert schemas[name]["title"] == name
    # PATCH: every field optional, none given a default it would not take.
    partial = schemas["ArticleInputPartial"]
    assert "required" not in partial
    assert all("default" not in field for field in partial["properties"].values())
    assert schemas["ArticleInput"]["required"] == ["title", "slug", "author_id"]


def test_an_action_names_its_body_and_a_subclass_its_own_schema() -> None:
    router = AutoRouter(prefix="/api")
    router.register("/auth", InvitedAuthViewSet, basename="auth")
    router.register("/moves", MoveViewSet, basename="move")
    document = CoreApp(settings=test_settings(), routers=[router]).fastapi.openapi()
    validate(document)
    schemas = document["components"]["schemas"]

    assert _body_ref(_operation(document, "auth_register")) == "SignUp"
    assert "invitation" in schemas["SignUp"]["required"]
    assert "RegisterInput" not in schemas
    move = _operation(document, "move_move")
    assert _body_ref(move) == "Move"
    assert schemas["Move"]["description"] == "Where to move an article."
    # One model as body and answer: the answer keeps the name, the body is `<name>-Input`.
    tag = _operation(document, "move_tag")
    assert _ok_schema(tag) == {"$ref": "#/components/schemas/Tagged"}
    assert _body_ref(tag) == "Tagged-Input"
    assert set(schemas["Tagged"]["properties"]) == {"tag", "length"}
    assert set(schemas["Tagged-Input"]["properties"]) == {"tag"}


async def test_a_documented_body_is_still_read_by_the_handler() -> None:
    router = AutoRouter(prefix="/api")
    router.register("/moves", MoveViewSet, basename="move")
    app = CoreApp(settings=test_settings(), routers=[router])
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        answer = await http.post("/api/moves/tag/", json={"tag": "sport"})
    assert answer.status_code == 200 and answer.json() == {"tag": "sport", "length": 5}


# -- field examples -------------------------------------------------------------------------------
class Recipe(Model):
    __tablename__ = "openapi_recipes"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(
        max_length=120, examples=["Pão de queijo"], doc="What the dish is called."
    )
    servings: Mapped[int] = Field.integer(default=2, examples=[4])
    notes: Mapped[str | None] = Field.text(nullable=True, examples=["Best warm."])
    slug: Mapped[str] = Field.string(unique=True)


class RecipeIn(BaseModel):
    title: str = PydanticField(examples=["Feijoada"])
    servings: int = 2


class RecipeViewSet(ModelViewSet):
    model = Recipe
    permission_classes = [AllowAny]


class DeclaredRecipeViewSet(ModelViewSet):
    model = Recipe
    input_schema = RecipeIn
    permission_classes = [AllowAny]


def test_input_schemas_carry_the_examples_the_model_or_schema_declares() -> None:
    router = AutoRouter(prefix="/api")
    router.register("/recipes", RecipeViewSet, basename="recipe")
    router.register("/declared", DeclaredRecipeViewSet, basename="declared")
    document = CoreApp(settings=test_settings(), routers=[router]).fastapi.openapi()
    validate(document)
    schemas = document["components"]["schemas"]

    derived = schemas[_body_ref(_operation(document, "recipe_create"))]["properties"]
    assert derived["title"]["examples"] == ["Pão de queijo"]
    assert derived["title"]["description"] == "What the dish is called."
    assert derived["title"]["maxLength"] == 120  # the column's limit stays
    assert derived["servings"]["examples"] == [4] and derived["servings"]["default"] == 2
    assert derived["notes"]["examples"] == ["Best warm."]
    assert "examples" not in derived["slug"]
    partial = schemas[_body_ref(_operation(document, "recipe_partial_update"))]["properties"]
    assert partial["title"]["examples"] == ["Pão de queijo"]
    declared = schemas[_body_ref(_operation(document, "declared_create"))]["properties"]
    assert declared["title"]["examples"] == ["Feijoada"]
    # The examples are documentation: the column still takes any value that fits.
    assert Recipe.__table__.c.title.info == {"examples": ["Pão de queijo"]}
