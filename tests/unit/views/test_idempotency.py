"""Idempotency keys over HTTP, on the in-memory store (memory://) and the database store on a
SQLite file: a retried POST, PATCH or opted-in action is replayed and writes nothing again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped
from starlette.requests import Request

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.declarations import declarations
from core.messaging import OutboxMessage, publish_event
from core.testing import test_settings


class IdemNote(Model):
    __tablename__ = "idem_notes"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=100)
    bumps: Mapped[int] = Field.integer(default=0)


class NoteIn(BaseModel):
    title: str


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    bumps: int


class NoteViewSet(ModelViewSet):
    """Creates publish an event in the request's unit of work (the outbox)."""

    model = IdemNote
    input_schema = NoteIn
    output_schema = NoteOut

    async def perform_create(self, db: Any, data: dict[str, Any]) -> Any:
        note = await super().perform_create(db, data)
        await publish_event("note.created", data={"id": note.id}, topic="notes")
        return note

    @action(methods=["POST"], detail=True, idempotent=True)
    async def bump(self, request: Request, db: Any, **kwargs: Any) -> Any:
        note = await self.get_object(db, **kwargs)
        note.bumps += 1
        await note.save(db)
        return {"bumps": note.bumps}

    @action(methods=["POST"], detail=True)
    async def bump_again(self, request: Request, db: Any, **kwargs: Any) -> Any:
        note = await self.get_object(db, **kwargs)
        note.bumps += 1
        await note.save(db)
        return {"bumps": note.bumps}

    @action(methods=["POST"], detail=False, idempotent=True)
    async def slow(self, request: Request, db: Any, **kwargs: Any) -> Any:
        await IdemNote.objects.using(db).create(title="slow")
        GATE.started.set()
        await GATE.go.wait()  # the test lets it finish once the duplicate is under way
        return {"done": True}

    @action(methods=["POST"], detail=False, idempotent=True)
    async def stream(self, request: Request, db: Any, **kwargs: Any) -> Any:
        from starlette.responses import StreamingResponse

        await IdemNote.objects.using(db).create(title="streamed")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"streamed"

        return StreamingResponse(chunks())

    @action(methods=["POST"], detail=False, idempotent=True)
    async def refuse(self, request: Request, db: Any, **kwargs: Any) -> Any:
        from core.errors import ValidationFailedError

        await IdemNote.objects.using(db).create(title="rolled back")
        raise ValidationFailedError("no")


class Gate:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()


GATE = Gate()


class FastNoteViewSet(ModelViewSet):
    """The framework's own create: INSERT ... RETURNING straight to JSON."""

    model = IdemNote
    input_schema = NoteIn
    output_schema = NoteOut


@pytest.fixture(autouse=True)
def _declared() -> Iterator[None]:
    global GATE
    GATE = Gate()
    saved = declarations().snapshot()
    yield
    declarations().restore(saved)


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoreApp]:
    settings = (
        test_settings(idempotency_wait_seconds=5)
        if request.param == "memory"
        else test_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/idem.db",
            idempotency_store="database",
            idempotency_wait_seconds=5,
            outbox_relay_in_process=False,
        )
    )
    router = AutoRouter(prefix="/api")
    router.register("notes", NoteViewSet)
    router.register("fast", FastNoteViewSet, basename="fast")
    application = CoreApp(settings=settings, routers=[router])
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.fixture
async def client(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def counts(app: CoreApp) -> tuple[int, int]:
    async with app.session() as db:
        return (
            await IdemNote.objects.using(db).count(),
            await OutboxMessage.objects.using(db).count(),
        )


@pytest.mark.parametrize("path", ["/api/notes/", "/api/fast/"])
async def test_a_retried_post_is_replayed_and_writes_nothing(
    app: CoreApp, client: httpx.AsyncClient, path: str
) -> None:
    headers = key()

    first = await client.post(path, json={"title": "Hi"}, headers=headers)
    again = await client.post(path, json={"title": "Hi"}, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    notes, events = await counts(app)
    assert notes == 1
    assert events == (1 if path == "/api/notes/" else 0), "no second event"


async def test_without_a_key_every_post_runs(app: CoreApp, client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post("/api/notes/", json={"title": "Hi"})).status_code == 201
    assert await counts(app) == (2, 2)


async def test_the_same_key_with_another_body_is_422(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = key()
    assert (await client.post("/api/notes/", json={"title": "A"}, headers=headers)).is_success

    other = await client.post("/api/notes/", json={"title": "B"}, headers=headers)

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_mismatch"
    assert await counts(app) == (1, 1)


async def test_the_same_data_serialised_again_is_a_replay(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    # A client that builds its JSON again (other spacing, escapes or key order) sends the same
    # request: the fingerprint reads the document, not its bytes.
    headers = {**key(), "content-type": "application/json"}
    first = await client.post(
        "/api/notes/", content=b'{ "title" : "\\u00e9t\xc3\xa9" }', headers=headers
    )
    again = await client.post("/api/notes/", content='{"title":"été"}'.encode(), headers=headers)

    assert first.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await counts(app) == (1, 1)


async def test_the_same_key_on_another_route_is_422(client: httpx.AsyncClient) -> None:
    headers = key()
    created = await client.post("/api/notes/", json={"title": "A"}, headers=headers)

    other = await client.patch(
        f"/api/notes/{created.json()['id']}/", json={"title": "A"}, headers=headers
    )

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_mismatch"


async def test_keys_belong_to_their_user(app: CoreApp, client: httpx.AsyncClient) -> None:
    # Another caller's identical request with the same key is its own request, not a replay.
    class ByHeader:
        async def authenticate(self, request: Request, db: Any) -> Any:
            name = request.headers.get("x-user")
            return type("U", (), {"id": name, "is_active": True})() if name else None

    headers = key()
    with app.container.auth.authenticator.override(ByHeader()):
        ann = await client.post(
            "/api/notes/", json={"title": "A"}, headers={**headers, "x-user": "ann"}
        )
        bob = await client.post(
            "/api/notes/", json={"title": "A"}, headers={**headers, "x-user": "bob"}
        )

    assert ann.status_code == bob.status_code == 201
    assert "idempotent-replayed" not in bob.headers
    assert ann.json()["id"] != bob.json()["id"]


@pytest.mark.parametrize(
    "value",
    ["", "   ", "a" * 256, "has space", "naïve", 'quote"inside', "back\\slash"],
)
async def test_a_malformed_key_is_400_in_the_envelope(
    app: CoreApp, client: httpx.AsyncClient, value: str
) -> None:
    response = await client.post(
        "/api/notes/", json={"title": "A"}, headers={"Idempotency-Key": value.encode("utf-8")}
    )

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_idempotency_key"
    assert response.json()["field"] == "Idempotency-Key"
    assert await counts(app) == (0, 0)


async def test_two_keys_are_400(client: httpx.AsyncClient) -> None:
    headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]

    response = await client.post("/api/notes/", json={"title": "A"}, headers=headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"


async def test_a_quoted_key_is_the_same_key(app: CoreApp, client: httpx.AsyncClient) -> None:
    # The IETF draft writes the key as a structured-field string: "abc" and abc are one key.
    await client.post("/api/notes/", json={"title": "A"}, headers={"Idempotency-Key": '"k-1"'})
    again = await client.post(
        "/api/notes/", json={"title": "A"}, headers={"Idempotency-Key": "k-1"}
    )

    assert again.headers["idempotent-replayed"] == "true"
    assert await counts(app) == (1, 1)


async def test_a_retried_patch_is_replayed(app: CoreApp, client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/notes/", json={"title": "A"})).json()
    headers = key()
    path = f"/api/notes/{created['id']}/"

    first = await client.patch(path, json={"title": "B"}, headers=headers)
    # Someone else changes the note in between: the retry still answers what the PATCH did.
    await client.patch(path, json={"title": "C"})
    again = await client.patch(path, json={"title": "B"}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {**created, "title": "B"}
    assert again.headers["idempotent-replayed"] == "true"
    assert (await client.get(path)).json()["title"] == "C", "the retry changed nothing"


async def test_an_opted_in_action_runs_once_per_key(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/notes/", json={"title": "A"})).json()
    headers = key()
    path = f"/api/notes/{created['id']}/bump/"

    answers = [(await client.post(path, headers=headers)).json() for _ in range(3)]

    assert answers == [{"bumps": 1}] * 3
    assert (await client.get(f"/api/notes/{created['id']}/")).json()["bumps"] == 1


async def test_an_action_that_did_not_opt_in_ignores_the_key(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/notes/", json={"title": "A"})).json()
    headers = key()
    path = f"/api/notes/{created['id']}/bump_again/"

    answers = [(await client.post(path, headers=headers)).json() for _ in range(2)]

    assert answers == [{"bumps": 1}, {"bumps": 2}]


async def test_put_and_delete_ignore_the_key(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/notes/", json={"title": "A"})).json()
    path = f"/api/notes/{created['id']}/"
    headers = {"Idempotency-Key": "not checked on PUT"}

    assert (await client.put(path, json={"title": "B"}, headers=headers)).status_code == 200
    assert (await client.delete(path, headers=headers)).status_code == 204


async def test_a_failed_request_is_not_stored_and_its_key_is_free(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = key()

    refused = await client.post("/api/notes/refuse/", headers=headers)
    again = await client.post("/api/notes/refuse/", headers=headers)

    assert refused.status_code == again.status_code == 400
    assert "idempotent-replayed" not in again.headers, "errors are run again, not replayed"
    assert await counts(app) == (0, 0)


async def test_a_streamed_response_is_not_replayed_and_frees_its_key(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = key()

    answers = [await client.post("/api/notes/stream/", headers=headers) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert [a.content for a in answers] == [b"streamed", b"streamed"]
    assert all("idempotent-replayed" not in a.headers for a in answers)
    assert (await counts(app))[0] == 2, "it cannot be replayed, so it runs again"


async def test_an_invalid_body_leaves_the_key_free(app: CoreApp, client: httpx.AsyncClient) -> None:
    headers = key()

    bad = await client.post("/api/notes/", json={"title": 5}, headers=headers)
    assert bad.status_code == 422
    # The client fixes its body: another request, but the first wrote nothing and kept nothing.
    good = await client.post("/api/notes/", json={"title": "5"}, headers=headers)

    assert good.status_code == 201
    assert await counts(app) == (1, 1)


class Watching:
    """The app's store, telling the test when a request starts claiming its key."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.transactional = store.transactional
        self.claims = 0

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.claims += 1
        if self.claims == 2:
            GATE.go.set()  # the duplicate is claiming: let the first request finish
        return await self.store.claim(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_a_concurrent_duplicate_waits_for_the_first(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    keys = app.container.idempotency.keys()
    keys.store = Watching(keys.store)  # type: ignore[assignment]
    headers = key()

    first = asyncio.create_task(client.post("/api/notes/slow/", headers=headers))
    await GATE.started.wait()
    second = await client.post("/api/notes/slow/", headers=headers)
    first_response = await first

    assert first_response.status_code == second.status_code == 200
    assert first_response.json() == second.json() == {"done": True}
    assert "idempotent-replayed" not in first_response.headers
    assert second.headers["idempotent-replayed"] == "true", "it waited, then got the answer"
    assert (await counts(app))[0] == 1, "one write, never two"


async def test_a_duplicate_past_the_wait_is_409_with_retry_after(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    app.container.idempotency.keys().wait = 0.01
    headers = key()

    first = asyncio.create_task(client.post("/api/notes/slow/", headers=headers))
    await GATE.started.wait()
    busy = await client.post("/api/notes/slow/", headers=headers)
    GATE.go.set()
    done = await first

    assert done.status_code == 200
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert int(busy.headers["retry-after"]) >= 1
    assert (await counts(app))[0] == 1
    # Once the first finished, the retry the 409 asked for gets its answer.
    retry = await client.post("/api/notes/slow/", headers=headers)
    assert retry.headers["idempotent-replayed"] == "true"


async def test_an_expired_key_runs_again(app: CoreApp, client: httpx.AsyncClient) -> None:
    app.container.idempotency.keys().ttl = 0.0  # expired as soon as it is stored
    headers = key()

    await client.post("/api/notes/", json={"title": "A"}, headers=headers)
    again = await client.post("/api/notes/", json={"title": "A"}, headers=headers)

    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert await counts(app) == (2, 2)
    assert await app.container.idempotency.store().purge() == 1


async def test_openapi_documents_the_header_where_it_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def headers(path: str, method: str) -> list[str]:
        parameters = paths[path][method].get("parameters", [])
        return [p["name"] for p in parameters if p["in"] == "header"]

    assert headers("/api/notes/", "post") == ["Idempotency-Key"]
    assert headers("/api/notes/{id}/", "patch") == ["Idempotency-Key"]
    assert headers("/api/notes/{id}/bump/", "post") == ["Idempotency-Key"]
    assert headers("/api/notes/{id}/bump_again/", "post") == []
    assert headers("/api/notes/{id}/", "put") == []
    assert headers("/api/notes/", "get") == []
    create = paths["/api/notes/"]["post"]
    assert "409" in create["responses"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is False
    assert header["schema"]["maxLength"] == 255
