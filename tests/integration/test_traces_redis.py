"""One trace from a POST through the outbox, a real Redis broker, a consumer and the task it
sends (to the in-memory queue, or to Taskiq on Redis), with the SDK's in-memory span exporter."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped

pytest.importorskip("opentelemetry.sdk", reason="the `tracing` extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.containers.core import build_container
from core.messaging import consumer, on_event, publish_event
from core.tasks import task, wait_for_result
from core.testing import isolated_declarations, test_settings
from core.tracing import Tracing
from tests import services

pytestmark = pytest.mark.redis

WITHIN = 20.0


class TracedNote(Model):
    __tablename__ = "itrace_notes"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=80)


class NoteInput(BaseModel):
    title: str


class NoteOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str


@pytest.fixture(autouse=True)
def _declarations() -> Iterator[None]:
    with isolated_declarations():
        yield


@pytest.fixture
async def topic(redis_url: str) -> AsyncIterator[str]:
    from redis.asyncio import Redis

    name = f"core-test-traces-{uuid.uuid4().hex[:10]}"
    yield name
    async with Redis.from_url(redis_url) as redis:
        await redis.delete(name, f"{name}.dlq")


async def _stopped(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name!r} among {sorted(s.name for s in spans)}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture(params=["memory", "redis"])
async def task_settings(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Any]:
    """The consumer's task goes to the in-memory queue, or to Taskiq on Redis."""
    if request.param == "memory":
        yield {"task_broker": "memory"}
        return
    async with services.redis_prefix(redis_url, "core-test-traces") as prefix:
        yield {"task_broker": "redis", "task_key_prefix": prefix}


async def test_one_trace_from_a_post_through_the_outbox_redis_a_consumer_and_its_task(
    redis_url: str, topic: str, tmp_path: Path, task_settings: dict[str, Any]
) -> None:
    sent: list[str] = []
    handed_over = asyncio.Event()

    @task(name="itrace.notify")
    async def notify(note_id: int) -> None:
        return None

    @consumer(f"{topic}-group", topics=[topic])
    class NoteConsumer:
        @on_event("note.created")
        async def on_created(self, event: Any, db: Any) -> None:
            sent.append(await notify.delay(event.data["id"]))
            handed_over.set()

    class NoteViewSet(ModelViewSet):
        model = TracedNote
        input_schema = NoteInput
        output_schema = NoteOutput

        @action(methods=["POST"], detail=False)
        async def publish(self, request: Any, db: Any, **kwargs: Any) -> Any:
            note = await TracedNote.objects.create(title=(await request.json())["title"], db=db)
            await publish_event("note.created", data={"id": note.id}, topic=topic)
            return {"id": note.id, "title": note.title}

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    container = build_container(
        test_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/traces.db",
            message_broker="redis",
            redis_url=redis_url,
            consumers_in_process=True,
            tracing_enabled=True,
            outbox_poll_interval=0.1,
            **task_settings,
        )
    )
    container.tracing.override(providers.Object(Tracing(provider)))
    router = AutoRouter(prefix="/api/v1")
    router.register("/notes", NoteViewSet)
    app = CoreApp(container=container, routers=[router])

    async with app.lifespan(), AsyncExitStack() as stack:
        await app.create_all()
        if task_settings["task_broker"] == "redis":
            # A `core worker` of this app, in this process.
            queue = app.container.tasks.queue()
            worker = asyncio.create_task(queue.run_worker(["default"], concurrency=2))
            stack.push_async_callback(_stopped, worker)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/api/v1/notes/publish/", json={"title": "hi"})
        assert response.status_code == 200
        async with asyncio.timeout(WITHIN):
            await handed_over.wait()
            result = await wait_for_result(sent[0], poll_interval=0.01)
        assert result.ready

    spans = list(exporter.get_finished_spans())
    request = one(spans, "POST /api/v1/notes/publish/")
    write = one(spans, f"outbox write {topic}")
    relay = one(spans, f"outbox relay {topic}")
    # FastStream's own middleware on the Redis broker: a producer span per publish, whose
    # context goes in the message's headers, and a consumer span per message received.
    created = one(spans, f"{topic} create")
    published = one(spans, f"{topic} publish")
    processed = one(spans, f"{topic} process")
    consume = one(spans, f"consume {topic}")
    send = one(spans, "task send itrace.notify")
    run = one(spans, "task run itrace.notify")
    chain = [request, write, relay, created, published, processed, consume, send, run]
    assert {span.context.trace_id for span in chain} == {request.context.trace_id}
    assert request.parent is None and request.kind is SpanKind.SERVER
    assert parent_of(write) == request.context.span_id
    assert parent_of(relay) == write.context.span_id
    assert parent_of(created) == relay.context.span_id
    assert parent_of(published) == created.context.span_id
    assert parent_of(processed) == created.context.span_id
    assert parent_of(consume) == processed.context.span_id
    assert parent_of(send) == consume.context.span_id
    assert parent_of(run) == send.context.span_id
    assert (consume.attributes or {})["core.consumer.outcome"] == "handled"
    # The request's statements are spans of its trace too.
    statements = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and "INSERT INTO itrace_notes" in str((s.attributes or {}).get("db.statement"))
    ]
    assert [parent_of(s) for s in statements] == [request.context.span_id]
