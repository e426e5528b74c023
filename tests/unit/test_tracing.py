"""Traces: a span for each request, database statement, outbox write and relay, event handled,
task sent and run, all in one trace, and the trace ids on the log lines of each."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
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
from opentelemetry.trace import SpanKind, StatusCode

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.containers.core import build_container
from core.declarations import Declarations
from core.logs import configure_logging
from core.messaging import consumer, event, on_event, publish_event
from core.messaging.runtime import flush_events
from core.tasks import task, wait_for_result
from core.testing import test_settings
from core.tracing import Tracing

NOTE_TOPIC = "unit-trace-notes"


class TraceNote(Model):
    __tablename__ = "trace_notes"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=80)


class NoteInput(BaseModel):
    title: str


class NoteOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str


class NoteViewSet(ModelViewSet):
    model = TraceNote
    input_schema = NoteInput
    output_schema = NoteOutput

    @action(methods=["POST"], detail=False)
    @event("note.created", topic=NOTE_TOPIC)
    async def publish(self, request: Any, db: Any, **kwargs: Any) -> Any:
        body = await request.json()
        note = await TraceNote.objects.create(title=body["title"], db=db)
        logging.getLogger("tests.trace").info("note %s written", note.id)
        return {"id": note.id, "title": note.title}


class Flow:
    """What the consumer saw and the task ids it sent."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.sent: list[str] = []


@pytest.fixture
def flow(isolated_declarations: Declarations) -> Flow:
    flow = Flow()

    @task(name="unit-trace.notify")
    async def notify(note_id: int) -> None:
        logging.getLogger("tests.trace").info("notifying about note %s", note_id)

    @consumer("unit-trace-group", topics=[NOTE_TOPIC])
    class NoteConsumer:
        @on_event("note.created")
        async def on_created(self, event: Any, db: Any) -> None:
            flow.headers.append(dict(event.headers))
            flow.sent.append(await notify.delay(event.data["id"]))

    return flow


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def build(tmp_path: Path, exporter: InMemorySpanExporter | None, **settings: Any) -> CoreApp:
    """The notes app on SQLite, the relay driven by the test; traced into `exporter` when
    given, through a tracer provider of the test's own (no process-global state)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/trace.db",
        "outbox_relay_in_process": False,
        "consumer_retry_backoff": 0.0,
        "tracing_enabled": exporter is not None,
        **settings,
    }
    container = build_container(test_settings(**values))
    if exporter is not None:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        container.tracing.override(providers.Object(Tracing(provider)))
    router = AutoRouter(prefix="/api/v1")
    router.register("/notes", NoteViewSet)
    return CoreApp(container=container, routers=[router])


async def run_flow(app: CoreApp, flow: Flow, **headers: str) -> httpx.Response:
    """POST a note, relay its event to the consumer, wait for the task the consumer sends."""
    async with app.lifespan():
        await app.create_all()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post(
                "/api/v1/notes/publish/", json={"title": "hello"}, headers=headers
            )
        assert await flush_events(app) == 1
        assert len(flow.sent) == 1
        async with asyncio.timeout(10):
            await wait_for_result(flow.sent[0], poll_interval=0.005)
    return response


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name!r}: {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_follows_a_request_through_the_outbox_a_consumer_and_a_task(
    tmp_path: Path, flow: Flow, exporter: InMemorySpanExporter
) -> None:
    response = await run_flow(build(tmp_path, exporter), flow)

    assert response.status_code == 200
    spans = list(exporter.get_finished_spans())
    request = one(spans, "POST /api/v1/notes/publish/")
    write = one(spans, f"outbox write {NOTE_TOPIC}")
    relay = one(spans, f"outbox relay {NOTE_TOPIC}")
    consume = one(spans, f"consume {NOTE_TOPIC}")
    send = one(spans, "task send unit-trace.notify")
    run = one(spans, "task run unit-trace.notify")
    trace_id = request.context.trace_id
    traced = [request, write, relay, consume, send, run]
    assert {span.context.trace_id for span in traced} == {trace_id}
    # Each hop is the child of the one before it.
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert parent_of(write) == request.context.span_id
    assert parent_of(relay) == write.context.span_id
    assert parent_of(consume) == relay.context.span_id
    assert parent_of(send) == consume.context.span_id
    assert parent_of(run) == send.context.span_id
    assert [write.kind, relay.kind, consume.kind, send.kind, run.kind] == [
        SpanKind.PRODUCER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    ]
    assert consume.attributes is not None and run.attributes is not None
    assert consume.attributes["core.event.name"] == "note.created"
    assert consume.attributes["core.consumer.outcome"] == "handled"
    assert run.attributes["core.task.id"] == flow.sent[0]
    # The event the consumer got carries the relay's context (W3C traceparent).
    assert flow.headers[0]["traceparent"].split("-")[1:3] == [
        f"{trace_id:032x}",
        f"{relay.context.span_id:016x}",
    ]


async def test_database_statements_are_spans_of_the_request_and_of_the_relay(
    tmp_path: Path, flow: Flow, exporter: InMemorySpanExporter
) -> None:
    await run_flow(build(tmp_path, exporter), flow)

    spans = list(exporter.get_finished_spans())
    request = one(spans, "POST /api/v1/notes/publish/")
    statements = [s for s in spans if s.kind is SpanKind.CLIENT]
    by_statement = {str((s.attributes or {}).get("db.statement", "")): s for s in statements}
    insert_note = next(s for sql, s in by_statement.items() if "INSERT INTO trace_notes" in sql)
    insert_row = next(s for sql, s in by_statement.items() if "INSERT INTO core_outbox" in sql)
    assert insert_note.context.trace_id == request.context.trace_id
    assert parent_of(insert_note) == request.context.span_id
    assert (insert_note.attributes or {})["db.system"] == "sqlite"
    # The outbox row is written inside the outbox-write span.
    assert parent_of(insert_row) == one(spans, f"outbox write {NOTE_TOPIC}").context.span_id
    # The relay's own statements (claiming rows, marking them sent) are not traced: an idle
    # relay polls every second, and each poll would be a trace of its own.
    assert not [sql for sql in by_statement if sql.startswith(("UPDATE core_outbox", "SELECT"))]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    handler: Any = configure_logging(test_settings(log_format="json"), process=True)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_log_lines_carry_the_request_correlation_and_trace_ids(
    tmp_path: Path, flow: Flow, exporter: InMemorySpanExporter, json_lines: io.StringIO
) -> None:
    await run_flow(build(tmp_path, exporter), flow, **{"X-Request-ID": "req-trace-1"})

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    spans = list(exporter.get_finished_spans())
    trace_id = f"{one(spans, 'POST /api/v1/notes/publish/').context.trace_id:032x}"
    span_ids = {f"{s.context.span_id:016x}": s.name for s in spans}

    def line(text: str) -> dict[str, Any]:
        return next(entry for entry in lines if text in entry["message"])

    in_request = line("written")
    handled = line("Event note.created")
    notified = line("notifying about note")
    ran = line("Task unit-trace.notify")
    # The request's id is its lines'; its correlation id (the request id, as the client sent
    # no X-Correlation-ID) and its trace follow the event and the task.
    assert in_request["request_id"] == "req-trace-1"
    for entry in (in_request, handled, notified, ran):
        assert entry["trace_id"] == trace_id
        assert entry["correlation_id"] == "req-trace-1"
    assert span_ids[in_request["span_id"]] == "POST /api/v1/notes/publish/"
    assert span_ids[handled["span_id"]] == f"consume {NOTE_TOPIC}"
    assert (
        span_ids[notified["span_id"]] == span_ids[ran["span_id"]] == ("task run unit-trace.notify")
    )
    assert ran["task_id"] == flow.sent[0]


async def test_tracing_off_opens_no_span_and_adds_no_header(
    tmp_path: Path, flow: Flow, json_lines: io.StringIO
) -> None:
    app = build(tmp_path, None)

    await run_flow(app, flow)

    assert app.container.tracing() is None
    assert "traceparent" not in flow.headers[0]
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert lines and not any("trace_id" in entry for entry in lines)


def test_core_installs_a_tracer_provider_from_settings_or_keeps_the_applications() -> None:
    # In a fresh process: the global tracer provider is set once per process.
    script = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from core.testing import test_settings
from core.tracing import build_tracing

assert build_tracing(test_settings()) is None
assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
build_tracing(test_settings(tracing_enabled=True, tracing_exporter="none", app_name="notes"))
first = trace.get_tracer_provider()
build_tracing(test_settings(tracing_enabled=True, tracing_service_name="other"))
print(json.dumps({
    "sdk": isinstance(first, TracerProvider),
    "service": first.resource.attributes["service.name"],
    "kept": trace.get_tracer_provider() is first,
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(out.stdout) == {"sdk": True, "service": "notes", "kept": True}


def test_a_span_continues_the_trace_its_headers_carry_and_ignores_a_bad_one() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    with tracing.span("sender") as sender:
        carried = tracing.inject({})
    sent = sender.get_span_context()

    with tracing.span("receiver", parent=carried) as receiver:
        pass
    with tracing.span("garbled", parent={"traceparent": "00-not-a-trace-01"}) as garbled:
        pass
    with tracing.span("not text", parent={"traceparent": 42}) as not_text:
        pass

    assert carried["traceparent"].split("-")[:3] == [
        "00",
        f"{sent.trace_id:032x}",
        f"{sent.span_id:016x}",
    ]
    assert receiver.get_span_context().trace_id == sent.trace_id
    assert garbled.get_span_context().trace_id != sent.trace_id
    assert not_text.get_span_context().trace_id != sent.trace_id


def test_tracing_off_loads_no_sdk_and_on_without_the_extra_says_what_to_install() -> None:
    script = """
import sys
from core import CoreApp
from core.testing import test_settings

CoreApp(settings=test_settings())
prefixes = ("opentelemetry.sdk", "opentelemetry.instrumentation")
loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
print("loaded:", loaded)
sys.modules["opentelemetry.sdk"] = None  # as if the `tracing` extra were not installed
sys.modules["opentelemetry.sdk.trace"] = None
try:
    CoreApp(settings=test_settings(tracing_enabled=True))
except ImportError as exc:
    print(type(exc).__name__, exc)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "loaded: []",
        "MissingDependencyError opentelemetry-sdk is not installed; install it with: "
        "pip install 'core-framework[tracing]'",
    ]


async def test_an_event_published_outside_a_unit_of_work_carries_its_publish_span(
    tmp_path: Path, flow: Flow, exporter: InMemorySpanExporter
) -> None:
    app = build(tmp_path, exporter)
    async with app.lifespan():
        await app.create_all()
        await publish_event("note.created", data={"id": 7}, topic=NOTE_TOPIC)
        await flush_events(app)
        async with asyncio.timeout(10):
            await wait_for_result(flow.sent[0], poll_interval=0.005)

    spans = list(exporter.get_finished_spans())
    published = one(spans, f"publish {NOTE_TOPIC}")
    consume = one(spans, f"consume {NOTE_TOPIC}")
    assert published.parent is None
    assert parent_of(consume) == published.context.span_id
    assert parent_of(one(spans, "task run unit-trace.notify")) is not None
    assert {s.context.trace_id for s in spans if s.kind is not SpanKind.CLIENT} == {
        published.context.trace_id
    }


async def test_a_dead_lettered_event_ends_its_span_with_an_error(
    tmp_path: Path, isolated_declarations: Declarations, exporter: InMemorySpanExporter
) -> None:
    @consumer("unit-trace-failing", topics=[NOTE_TOPIC], max_retries=0)
    class Failing:
        @on_event("note.created")
        async def on_created(self, event: Any, db: Any) -> None:
            raise RuntimeError("refused")

    app = build(tmp_path, exporter)
    async with app.lifespan():
        await app.create_all()
        async with app.session():
            await publish_event("note.created", data={"id": 1}, topic=NOTE_TOPIC)
        await flush_events(app)

    consume = one(list(exporter.get_finished_spans()), f"consume {NOTE_TOPIC}")
    assert (consume.attributes or {})["core.consumer.outcome"] == "dead_lettered"
    assert consume.status.status_code is StatusCode.ERROR
