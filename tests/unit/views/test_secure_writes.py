"""Writes are safe by default: PATCH keeps every constraint, takes update's permissions, and no
derived schema lets a client set what the server owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.testing import test_settings
from tests.apps import build_notes_app
from tests.models import Author, Note
from tests.unit.views.conftest import HeaderAuthenticator, User

ANN = {"x-user": "ann"}
BOB = {"x-user": "bob"}


@pytest.fixture(params=["memory", "sqlite"])
async def notes_app(
    request: pytest.FixtureRequest, users: HeaderAuthenticator, tmp_path: Path
) -> AsyncIterator[CoreApp]:
    url = "memory://" if request.param == "memory" else f"sqlite+aiosqlite:///{tmp_path}/n.db"
    application = build_notes_app(test_settings(database_url=url))
    with application.container.auth.authenticator.override(users):
        async with application.lifespan():
            await application.create_all()
            yield application


@pytest.fixture
async def http(notes_app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=notes_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def notes(notes_app: CoreApp, users: HeaderAuthenticator) -> dict[str, Any]:
    async with notes_app.session() as db:
        ann = await Author.objects.create(email="ann@x.io", name="Ann", db=db)
        bob = await Author.objects.create(email="bob@x.io", name="Bob", db=db)
        mine = await Note.objects.create(title="Ann's", slug="anns", owner_id=ann.id, db=db)
        theirs = await Note.objects.create(title="Bob's", slug="bobs", owner_id=bob.id, db=db)
    users.users.update({"ann": User(id=ann.id), "bob": User(id=bob.id)})
    return {"ann": ann, "bob": bob, "mine": mine, "theirs": theirs}


async def _note(app: CoreApp, note_id: int) -> dict[str, Any]:
    async with app.session() as db:
        note = await Note.objects.using(db).get(id=note_id)
        return {
            "title": note.title,
            "slug": note.slug,
            "status": note.status,
            "priority": note.priority,
            "owner_id": note.owner_id,
        }


# -- PATCH validates like POST and PUT ----------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"title": "x" * 21}, "string_too_long"),  # max_length
        ({"title": ""}, "string_too_short"),  # min_length
        ({"slug": "Bad Slug!"}, "string_pattern_mismatch"),  # pattern
        ({"priority": 6}, "less_than_equal"),  # le
        ({"priority": -1}, "greater_than_equal"),  # ge
        ({"status": "deleted"}, "enum"),  # enum
        ({"title": "SHOUTING"}, "value_error"),  # field validator
        ({"title": None}, "string_type"),  # null where the field refuses it
        ({"owner_id": 2}, "extra_forbidden"),  # not a field of the schema
    ],
)
async def test_patch_keeps_every_constraint_of_an_explicit_schema(
    http: httpx.AsyncClient,
    notes_app: CoreApp,
    notes: dict[str, Any],
    body: dict[str, Any],
    error_type: str,
) -> None:
    note = notes["mine"]
    before = await _note(notes_app, note.id)

    for method in ("PATCH", "PUT", "POST"):
        full = {"title": "ok", "slug": "fine-slug"} if method != "PATCH" else {}
        path = "/api/v1/checked-notes/" + ("" if method == "POST" else f"{note.id}/")
        response = await http.request(method, path, json={**full, **body}, headers=ANN)
        assert response.status_code == 422, (method, response.text)
        assert response.json()["code"] == "validation_error"
        assert error_type in {e["type"] for e in response.json()["detail"]}, method

    assert await _note(notes_app, note.id) == before


async def test_patch_runs_model_validators_on_the_object_it_makes(
    http: httpx.AsyncClient, notes_app: CoreApp, notes: dict[str, Any]
) -> None:
    note = notes["mine"]  # priority 0

    refused = await http.patch(
        f"/api/v1/checked-notes/{note.id}/", json={"status": "published"}, headers=ANN
    )
    assert refused.status_code == 422, refused.text
    assert "priority" in refused.json()["detail"][0]["msg"]

    accepted = await http.patch(
        f"/api/v1/checked-notes/{note.id}/",
        json={"status": "published", "priority": 3},
        headers=ANN,
    )
    assert accepted.status_code == 200, accepted.text
    assert (await _note(notes_app, note.id))["status"] == "published"
    changed = await http.patch(
        f"/api/v1/checked-notes/{note.id}/", json={"title": "calm"}, headers=ANN
    )
    assert changed.status_code == 200 and changed.json()["title"] == "calm"
    assert (await _note(notes_app, note.id))["priority"] == 3  # fields not sent stay


async def test_patch_keeps_derived_column_limits(
    http: httpx.AsyncClient, notes_app: CoreApp, notes: dict[str, Any]
) -> None:
    note = notes["mine"]
    for body in ({"title": "x" * 51}, {"priority": 2**40}, {"slug": None}):
        response = await http.patch(f"/api/v1/notes/{note.id}/", json=body, headers=ANN)
        assert response.status_code == 422, body
    assert (await _note(notes_app, note.id))["title"] == "Ann's"


# -- PATCH takes update's permissions -----------------------------------------------------------
async def test_patch_and_put_refuse_someone_elses_object_alike(
    http: httpx.AsyncClient, notes_app: CoreApp, notes: dict[str, Any]
) -> None:
    theirs = notes["theirs"]
    put = await http.put(
        f"/api/v1/notes/{theirs.id}/", json={"title": "mine now", "slug": "x"}, headers=ANN
    )
    patch = await http.patch(f"/api/v1/notes/{theirs.id}/", json={"title": "mine now"}, headers=ANN)
    assert put.status_code == patch.status_code == 403
    assert patch.json() == {"detail": "You do not own this object.", "code": "permission_denied"}
    assert (await _note(notes_app, theirs.id))["title"] == "Bob's"

    own = await http.patch(f"/api/v1/notes/{notes['mine'].id}/", json={"title": "new"}, headers=ANN)
    assert own.status_code == 200 and own.json()["title"] == "new"


async def test_detail_actions_check_object_permissions_through_get_object(
    http: httpx.AsyncClient, notes_app: CoreApp, notes: dict[str, Any]
) -> None:
    theirs, mine = notes["theirs"], notes["mine"]
    refused = await http.post(f"/api/v1/notes/{theirs.id}/archive/", headers=ANN)
    assert refused.status_code == 403
    assert (await _note(notes_app, theirs.id))["status"] == "draft"
    allowed = await http.post(f"/api/v1/notes/{mine.id}/archive/", headers=ANN)
    assert allowed.status_code == 200 and allowed.json() == {"archived": True}
    anonymous = await http.post(f"/api/v1/notes/{mine.id}/archive/")
    assert anonymous.status_code == 401


async def test_isowner_scope_filters_list_and_retrieve(
    http: httpx.AsyncClient, notes: dict[str, Any]
) -> None:
    listing = (await http.get("/api/v1/checked-notes/", headers=ANN)).json()
    assert [n["slug"] for n in listing["results"]] == ["anns"]
    # Another's object is not there at all: 404, not 403.
    theirs = await http.get(f"/api/v1/checked-notes/{notes['theirs'].id}/", headers=ANN)
    assert theirs.status_code == 404
    mine = await http.get(f"/api/v1/checked-notes/{notes['mine'].id}/", headers=ANN)
    assert mine.status_code == 200
    everyone = (await http.get("/api/v1/open-notes/")).json()
    assert {n["slug"] for n in everyone["results"]} == {"anns", "bobs"}


# -- mass assignment ----------------------------------------------------------------------------
async def test_nobody_creates_a_note_in_someone_elses_name(
    http: httpx.AsyncClient, notes_app: CoreApp, notes: dict[str, Any]
) -> None:
    ann_id = notes["ann"].id
    body = {"title": "Bob's plan", "slug": "plan", "owner_id": ann_id}
    for path in ("/api/v1/notes/", "/api/v1/checked-notes/"):
        refused = await http.post(path, json=body, headers=BOB)
        assert refused.status_code == 422, path
        assert refused.json()["detail"][0]["type"] == "extra_forbidden"
    async with notes_app.session() as db:
        assert await Note.objects.using(db).filter(slug="plan").count() == 0

    created = await http.post("/api/v1/notes/", json={"title": "t", "slug": "plan"}, headers=BOB)
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == notes["bob"].id  # the owner is the caller
    checked = await http.post(
        "/api/v1/checked-notes/", json={"title": "t", "slug": "plan-2"}, headers=BOB
    )
    assert checked.status_code == 201 and checked.json()["owner_id"] == notes["bob"].id


@pytest.mark.parametrize(
    "field", ["id", "owner_id", "created_at", "is_active", "is_superuser", "password"]
)
async def test_derived_schemas_refuse_server_owned_fields(
    http: httpx.AsyncClient, notes: dict[str, Any], field: str
) -> None:
    note = notes["mine"]
    value: Any = 1 if field.endswith("id") else True
    create = await http.post(
        "/api/v1/notes/", json={"title": "t", "slug": "s", field: value}, headers=ANN
    )
    patch = await http.patch(f"/api/v1/notes/{note.id}/", json={field: value}, headers=ANN)
    author = await http.patch(f"/api/v1/authors/{notes['ann'].id}/", json={field: value})
    assert create.status_code == patch.status_code == author.status_code == 422


def test_read_only_and_write_only_fields_adjust_derived_schemas() -> None:
    from core import ModelViewSet

    class Tuned(ModelViewSet):
        model = Note
        read_only_fields = ["status"]
        write_only_fields = ["score"]

    inputs = set(Tuned.resolved_input_schema().model_fields)
    outputs = set(Tuned.resolved_output_schema().model_fields)
    assert inputs == {"title", "slug", "priority", "score", "owner_id"}
    assert "score" not in outputs and "status" in outputs


# -- OpenAPI ------------------------------------------------------------------------------------
def test_openapi_lists_refusals_only_where_permissions_refuse() -> None:
    app = build_notes_app(test_settings())
    paths = app.fastapi.openapi()["paths"]
    open_list = paths["/api/v1/open-notes/"]["get"]["responses"]
    assert "401" not in open_list and "403" not in open_list
    assert {"401", "403"} <= set(paths["/api/v1/notes/{id}/"]["patch"]["responses"])
    size = next(
        p for p in paths["/api/v1/open-notes/"]["get"]["parameters"] if p["name"] == "page_size"
    )
    # Larger sizes are accepted and capped: the description says so, the schema refuses none.
    assert "at most 100" in size["description"]
    assert size["schema"]["maximum"] == 2**31 - 1
