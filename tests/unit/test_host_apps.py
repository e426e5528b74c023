"""Core inside an existing FastAPI app, both ways, through `core_app.attach(host)`.

- included: the host serves Core's routes among its own;
- mounted: the host mounts the CoreApp under /core.

In both, the host is started through its ASGI lifespan as a server starts it, and each test
checks that tasks, events (outbox relay), in-process consumers, error bodies and OpenAPI behave
as in a standalone CoreApp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.declarations import declarations
from core.errors import ConfigurationError
from core.messaging import consumer, event, on_event
from core.tasks import task, wait_for_result
from core.testing import test_settings
from tests.asgi import served

TOPIC = "host-notes"


class HostNote(Model):
    __tablename__ = "host_notes"

    id: Mapped[int] = Field.pk()
    text: Mapped[str] = Field.string(max_length=100)


class NoteInput(BaseModel):
    text: str


class NoteOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str


@dataclass
class Seen:
    """What the task and the consumer saw, and a way to wait for the consumer."""

    reminded: list[int] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def seen() -> Iterator[Seen]:
    """Declares the task and the consumer for one test; forgets them afterwards."""
    saved = declarations().snapshot()
    record = Seen()

    @consumer("host-readers", topics=[TOPIC])
    class Readers:
        @on_event("note.written")
        async def on_note(self: Any, event: Any, db: Any) -> None:
            record.written.append(event.data["text"])
            record.arrived.set()

    @task(name="host.remind")
    async def remind(note_id: int) -> int:
        record.reminded.append(note_id)
        return note_id

    record.task = remind  # type: ignore[attr-defined]
    yield record
    declarations().restore(saved)


def core_app(seen: Seen, **settings: Any) -> CoreApp:
    class NoteViewSet(ModelViewSet):
        model = HostNote
        input_schema = NoteInput
        output_schema = NoteOutput

        @action(methods=["POST"], detail=False)
        @event("note.written", topic=TOPIC)
        async def write(self, request: Any, db: Any, **kwargs: Any) -> Any:
            note = await HostNote.objects.create(**(await request.json()), db=db)
            return {"id": note.id, "text": note.text}

        @action(methods=["POST"], detail=True)
        async def remind(self, request: Any, db: Any, **kwargs: Any) -> Any:
            note = await self.get_object(db, **kwargs)
            return {"task_id": await seen.task.delay(note.id)}  # type: ignore[attr-defined]

    router = AutoRouter(prefix="/api")
    router.register("/notes", NoteViewSet, basename="note")
    return CoreApp(settings=test_settings(**settings), routers=[router], title="Notes")


@dataclass
class Host:
    app: FastAPI
    core: CoreApp
    prefix: str  # where Core's routes are, seen from the host
    started: list[str]


def host_app(core: CoreApp, way: str) -> Host:
    started: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started.append("host")
        yield

    host = FastAPI(title="Host", lifespan=lifespan)

    @host.get("/hello/{number}")
    async def hello(number: int) -> dict[str, int]:
        return {"hello": number}

    if way == "mounted":
        host.mount("/core", core)
    core.attach(host)
    return Host(host, core, "/core" if way == "mounted" else "", started)


@pytest.fixture(params=["included", "mounted"])
async def host(request: pytest.FixtureRequest, seen: Seen) -> AsyncIterator[Host]:
    application = host_app(core_app(seen), request.param)
    async with served(application.app):
        await application.core.create_all()
        yield application


@pytest.fixture
async def client(host: Host) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=host.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_the_host_lifespan_starts_core_and_its_own(host: Host, client: Any) -> None:
    assert host.started == ["host"]
    created = await client.post(f"{host.prefix}/api/notes/", json={"text": "hi"})
    assert created.status_code == 201
    assert (await client.get(f"{host.prefix}/api/notes/")).json()["results"] == [
        {"id": created.json()["id"], "text": "hi"}
    ]
    assert (await client.get("/hello/3")).json() == {"hello": 3}


async def test_error_bodies_are_cores(host: Host, client: Any) -> None:
    missing = await client.get(f"{host.prefix}/api/notes/999/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

    bad_lookup = await client.get(f"{host.prefix}/api/notes/abc/")
    assert bad_lookup.status_code == 422
    assert bad_lookup.json()["detail"]["error"] == "invalid_lookup_value"

    bad_body = await client.post(f"{host.prefix}/api/notes/", json={"txt": "no"})
    assert bad_body.status_code == 422
    assert bad_body.json()["detail"][0]["loc"] == ["body", "text"]


async def test_cores_routes_on_a_host_keep_their_body_limit_and_parser(
    host: Host, client: Any
) -> None:
    too_large = await client.post(f"{host.prefix}/api/notes/", json={"text": "x" * 2_000_000})
    assert too_large.status_code == 413 and too_large.json()["code"] == "request_too_large"
    for content in (b'{"text": NaN}', b'{"text": "\\ud800"}', b"[" * 100):
        malformed = await client.post(
            f"{host.prefix}/api/notes/",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert malformed.status_code == 400 and malformed.json()["code"] == "parse_error"


async def test_the_hosts_own_routes_keep_the_hosts_error_bodies(host: Host, client: Any) -> None:
    response = await client.get("/hello/abc")

    assert response.status_code == 422
    [error] = response.json()["detail"]  # FastAPI's own body, not Core's lookup body
    assert error["loc"] == ["path", "number"] and error["type"] == "int_parsing"


async def test_a_task_delayed_in_a_request_runs(host: Host, client: Any, seen: Seen) -> None:
    note = (await client.post(f"{host.prefix}/api/notes/", json={"text": "x"})).json()

    sent = await client.post(f"{host.prefix}/api/notes/{note['id']}/remind/")

    assert sent.status_code == 200
    # Outside any request: the one running app's queue answers.
    async with asyncio.timeout(10):
        result = await wait_for_result(sent.json()["task_id"], poll_interval=0.01)
    assert result.value == note["id"] and seen.reminded == [note["id"]]


async def test_an_event_goes_through_the_outbox_to_the_in_process_consumer(
    host: Host, client: Any, seen: Seen
) -> None:
    response = await client.post(f"{host.prefix}/api/notes/write/", json={"text": "relayed"})

    assert response.status_code == 200
    async with asyncio.timeout(10):
        await seen.arrived.wait()
    assert seen.written == ["relayed"]


async def test_openapi_lists_cores_operations(host: Host, client: Any) -> None:
    if host.prefix:  # mounted: the CoreApp serves its own document, under the mount
        paths = (await client.get(f"{host.prefix}/openapi.json")).json()["paths"]
    else:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/hello/{number}" in paths
    assert {"/api/notes/", "/api/notes/{id}/", "/api/notes/write/"} <= set(paths)
    assert paths["/api/notes/{id}/"]["get"]["operationId"] == "note_retrieve"


async def test_a_mounted_core_app_nobody_started_says_to_attach_it(seen: Seen) -> None:
    core = core_app(seen)
    host = FastAPI()
    host.mount("/core", core)  # no attach: Starlette never runs a mounted app's lifespan
    transport = httpx.ASGITransport(app=host)

    async with served(host), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/core/api/notes/1/remind/")

    assert response.status_code == 500
    assert response.json()["code"] == "not_running"
    assert "core_app.attach(host)" in response.json()["detail"]
    assert seen.reminded == []


async def test_an_attached_host_served_without_its_lifespan_says_so(seen: Seen) -> None:
    core = core_app(seen)
    host = FastAPI()
    host.mount("/core", core)
    core.attach(host)
    transport = httpx.ASGITransport(app=host)  # runs no lifespan

    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/core/api/notes/")

    assert response.status_code == 500
    assert "serve the host app with its lifespan" in response.json()["detail"]


def test_attach_refuses_routes_the_host_already_includes(seen: Seen) -> None:
    core = core_app(seen)
    host = FastAPI()
    for router in core._routers:  # the AutoRouters given to CoreApp
        host.include_router(router.api_router())

    with pytest.raises(ConfigurationError, match="already includes"):
        core.attach(host)


def test_attach_twice_is_refused(seen: Seen) -> None:
    core = core_app(seen)
    host = FastAPI()
    core.attach(host)

    with pytest.raises(ConfigurationError, match="already attached"):
        core.attach(host)
