"""Hostile input, on SQLite and on PostgreSQL: each is refused with the right status in the one
error envelope, echoes no secret, and leaves the database as it was."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import CoreApp, Model
from core.auth import configure_auth, register_password_hasher
from core.settings import Settings
from core.testing import isolated_declarations
from tests import services
from tests.apps import build_notes_app
from tests.models import Author, Note
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, SECRET, FastHasher, build_auth_app
from tests.unit.views.conftest import HeaderAuthenticator
from tests.unit.views.conftest import User as Caller

JSON = {"content-type": "application/json"}
ANN = {"x-user": "ann"}
BOB = {"x-user": "bob"}
MIB = 1024 * 1024


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/hostile.db"
        return
    postgres_url = services.service_url("postgres")
    url = await services.create_database(postgres_url, "core_hostile")
    try:
        yield url
    finally:
        await services.drop_database(postgres_url, url)


@pytest.fixture
def declared() -> Iterator[FastHasher]:
    with isolated_declarations():
        hasher = FastHasher()
        register_password_hasher(hasher)
        configure_auth(secret_key=SECRET, user_model=User, password_hasher=hasher.name)
        yield hasher


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, environment="test", database_url=url)  # type: ignore[call-arg]


@pytest.fixture
async def notes_app(database_url: str, declared: FastHasher) -> AsyncIterator[CoreApp]:
    users = HeaderAuthenticator()
    app = build_notes_app(_settings(database_url))
    with app.container.auth.authenticator.override(users):
        async with app.lifespan():
            await app.create_all(Model.metadata)
            async with app.session() as db:
                ann = await Author.objects.create(email="ann@x.io", name="Ann", db=db)
                bob = await Author.objects.create(email="bob@x.io", name="Bob", db=db)
                await Note.objects.create(title="Ann's", slug="anns", owner_id=ann.id, db=db)
            users.users.update({"ann": Caller(id=ann.id), "bob": Caller(id=bob.id)})
            yield app


@pytest.fixture
async def auth_app(database_url: str, declared: FastHasher) -> AsyncIterator[CoreApp]:
    app = build_auth_app(_settings(database_url))
    async with app.lifespan():
        await app.create_all(Model.metadata)
        async with app.session() as db:
            await User.create_user(email="ann@example.com", password=PASSWORD, db=db)
        yield app


def _client(app: CoreApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _snapshot(app: CoreApp) -> list[tuple[Any, ...]]:
    async with app.session() as db:
        notes = (
            await Note.objects.using(db)
            .order_by("id")
            .values_list("id", "title", "slug", "status", "priority", "score", "owner_id")
        )
        authors = await Author.objects.using(db).order_by("id").values_list("id", "email")
        return [*notes, *authors]


async def _users(app: CoreApp) -> list[tuple[Any, ...]]:
    async with app.session() as db:
        return (
            await User.objects.using(db)
            .order_by("id")
            .values_list("id", "email", "password", "is_active", "is_staff", "is_superuser")
        )


def _envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) <= {"detail", "code", "field"} and body["code"] == code, body
    return body


# -- refusals come before the body ---------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"{}", b'{"title": "t", "slug": "s"}', b"{not json", b"\xff\xfe", b"[" * 5000, b"x" * 3 * MIB],
    ids=["empty", "valid", "malformed", "not-utf8", "deep", "too-large"],
)
async def test_anonymous_gets_401_whatever_the_body(notes_app: CoreApp, content: bytes) -> None:
    before = await _snapshot(notes_app)
    async with _client(notes_app) as http:
        for method, path in (("POST", "/api/v1/notes/"), ("PATCH", "/api/v1/notes/1/")):
            response = await http.request(method, path, content=content, headers=JSON)
            _envelope(response, 401, "not_authenticated")
            assert response.headers["www-authenticate"] == "Bearer"
            assert "slug" not in response.text  # no field list for anonymous callers
    assert await _snapshot(notes_app) == before


# -- bodies that cannot be parsed ------------------------------------------------------------------
HOSTILE_JSON = {
    "invalid-utf8": b'{"title": "\xc3\x28", "slug": "s"}',
    "lone-surrogate": b'{"title": "\\ud800", "slug": "s"}',
    "nan": b'{"title": "t", "slug": "s", "score": NaN}',
    "infinity": b'{"title": "t", "slug": "s", "score": -Infinity}',
    "float-overflow": b'{"title": "t", "slug": "s", "score": 1e400}',
    "integer-overflow": b'{"title": "t", "slug": "s", "priority": 1' + b"0" * 40 + b"}",
    "too-deep": b'{"title": "t", "slug": "s", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
    "far-too-deep": b"[" * 100_000 + b"]" * 100_000,
    "truncated": b'{"title": "t", "slug": ',
}


@pytest.mark.parametrize("name", list(HOSTILE_JSON))
async def test_unparseable_bodies_are_400(notes_app: CoreApp, name: str) -> None:
    before = await _snapshot(notes_app)
    async with _client(notes_app) as http:
        for method, path in (
            ("POST", "/api/v1/notes/"),
            ("PATCH", "/api/v1/notes/1/"),
            ("POST", "/api/v1/checked-notes/"),
            ("POST", "/api/v1/health/"),  # an APIView reading `await request.json()` itself
        ):
            content = HOSTILE_JSON[name]
            response = await http.request(method, path, content=content, headers={**JSON, **ANN})
            if path.startswith("/api/v1/checked-notes/") and len(content) > 4096:
                _envelope(response, 413, "request_too_large")  # that view's own limit
            else:
                _envelope(response, 400, "parse_error")
    assert await _snapshot(notes_app) == before


@pytest.mark.parametrize(
    "content",
    [
        b'{"email": "ann@example.com", "password": "\xff\xfe\xfd"}',
        b'{"email": "ann@example.com", "password": "\\udc00\\ud800"}',
        b'{"email": "ann@example.com", "password": NaN}',
    ],
    ids=["invalid-utf8", "lone-surrogate", "nan"],
)
async def test_auth_bodies_that_cannot_be_parsed_are_400(auth_app: CoreApp, content: bytes) -> None:
    before = await _users(auth_app)
    async with _client(auth_app) as http:
        for path in ("register", "login", "refresh", "logout"):
            response = await http.post(f"/api/v1/auth/{path}/", content=content, headers=JSON)
            _envelope(response, 400, "parse_error")
    assert await _users(auth_app) == before


# -- size limits -----------------------------------------------------------------------------------
async def test_a_64_mb_login_is_refused_while_it_streams_in(auth_app: CoreApp) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"email": "ann@example.com", "password": "'
        for _ in range(64):
            sent += 1
            yield b"a" * MIB
        yield b'"}'

    async with _client(auth_app) as http:
        response = await http.post("/api/v1/auth/login/", content=body(), headers=JSON)
    body_json = _envelope(response, 413, "request_too_large")
    assert "1048576" in body_json["detail"]
    assert len(response.content) < 200  # nothing of the body comes back
    assert sent <= 2  # refused after about a mebibyte, not after 64


async def test_a_declared_content_length_over_the_limit_is_refused_before_reading(
    notes_app: CoreApp,
) -> None:
    before = await _snapshot(notes_app)
    payload = json.dumps({"title": "t", "slug": "s", "x": "a" * 2 * MIB}).encode()
    async with _client(notes_app) as http:
        response = await http.post("/api/v1/notes/", content=payload, headers={**JSON, **ANN})
        _envelope(response, 413, "request_too_large")
        # A view with its own, smaller limit (4096 bytes).
        response = await http.post(
            "/api/v1/checked-notes/", json={"title": "t", "slug": "a" * 5000}, headers=ANN
        )
        _envelope(response, 413, "request_too_large")
    assert await _snapshot(notes_app) == before


# -- 422 echoes no secret and only excerpts ------------------------------------------------------
async def test_validation_errors_echo_no_secret_and_only_excerpts(
    notes_app: CoreApp, auth_app: CoreApp
) -> None:
    password = "hunter2-" + "p" * 5000  # past the schema's 4096 characters
    async with _client(auth_app) as http:
        response = await http.post(
            "/api/v1/auth/register/", json={"email": "not-an-email", "password": password}
        )
        body = _envelope(response, 422, "validation_error")
        assert "hunter2" not in response.text
        assert {tuple(e["loc"]) for e in body["detail"]} >= {("body", "password")}
    async with _client(notes_app) as http:
        before = await _snapshot(notes_app)
        response = await http.post(
            "/api/v1/checked-notes/",
            json={"title": "t" * 1000, "slug": "ok", "secret_code": ["sekrit-value"]},
            headers=ANN,
        )
        body = _envelope(response, 422, "validation_error")
        assert "sekrit" not in response.text
        title = next(e for e in body["detail"] if e["loc"] == ["body", "title"])
        assert len(title["input"]) <= 33 and "t" * 40 not in response.text
        assert await _snapshot(notes_app) == before


# -- writes the server owns --------------------------------------------------------------------
async def test_mass_assignment_and_patch_constraints(notes_app: CoreApp) -> None:
    before = await _snapshot(notes_app)
    ann_id = before[0][6]
    async with _client(notes_app) as http:
        for path in ("/api/v1/notes/", "/api/v1/checked-notes/"):
            response = await http.post(
                path, json={"title": "x", "slug": "plan", "owner_id": ann_id}, headers=BOB
            )
            _envelope(response, 422, "validation_error")
        for body in ({"slug": "Bad Slug!"}, {"title": "x" * 300}, {"priority": 99}):
            response = await http.patch("/api/v1/checked-notes/1/", json=body, headers=ANN)
            _envelope(response, 422, "validation_error")
        response = await http.patch("/api/v1/notes/1/", json={"title": "bob's now"}, headers=BOB)
        _envelope(response, 403, "permission_denied")
    assert await _snapshot(notes_app) == before
