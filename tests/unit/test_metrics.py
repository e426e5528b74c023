"""Prometheus metrics: `/metrics` after a scripted run of requests, events (in-memory broker) and
tasks (in-memory queue), the gauges a scrape reads, and what METRICS_ENABLED=false leaves out."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from prometheus_client.parser import text_string_to_metric_families

from core.adapters.memory.tasks import InMemoryTaskQueue, ManualClock
from core.app import CoreApp
from core.context import use_container
from core.declarations import Declarations
from core.errors import MissingDependencyError
from core.messaging import Event, consumer, flush_events, on_event, publish_event
from core.metrics import UNMATCHED_ROUTE, scrape_gauges
from core.ports.tasks import QueueStats
from core.tasks import get_result, task
from core.testing.plugin import test_settings


@pytest.fixture(autouse=True)
def _isolated(isolated_declarations: Declarations) -> Declarations:
    return isolated_declarations


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(404, "no such item")
        return {"id": item_id}

    @router.post("/boom")
    async def boom() -> None:
        raise RuntimeError("handler bug")

    return router


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """`{(sample name, labels): value}` of an exposition, parsed by prometheus-client."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: Samples, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient, path: str = "/metrics") -> Samples:
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def metrics_app(**settings: Any) -> CoreApp:
    options = {
        "metrics_enabled": True,
        "consumer_retry_backoff": 0,
        **settings,
    }
    app = CoreApp(settings=test_settings(**options), routers=[_router()])
    return app


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def app(clock: ManualClock) -> AsyncIterator[CoreApp]:
    application = metrics_app()
    application.container.tasks.queue.override(InMemoryTaskQueue(clock=clock))
    async with application.lifespan():
        await application.create_all()
        yield application


@pytest.fixture
async def http(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_requests_are_counted_by_route_template_method_and_status(
    http: httpx.AsyncClient,
) -> None:
    for item in (1, 2, 3):
        assert (await http.get(f"/items/{item}")).status_code == 200
    assert (await http.get("/items/404")).status_code == 404
    assert (await http.get("/items/not-a-number")).status_code == 422
    assert (await http.post("/boom")).status_code == 500
    for probe in ("/wp-admin", "/.env", "/x/y/z"):
        assert (await http.get(probe)).status_code == 404

    parsed = await scrape(http)

    route = "/items/{item_id}"
    total = "core_http_requests_total"
    assert value(parsed, total, method="GET", route=route, status="200") == 3
    assert value(parsed, total, method="GET", route=route, status="404") == 1
    assert value(parsed, total, method="GET", route=route, status="422") == 1
    assert value(parsed, total, method="POST", route="/boom", status="500") == 1
    # Raw paths never become labels: every unmatched request shares one series.
    assert value(parsed, total, method="GET", route=UNMATCHED_ROUTE, status="404") == 3
    assert not any("wp-admin" in str(labels) for _, labels in parsed)
    histogram = "core_http_request_duration_seconds"
    assert value(parsed, f"{histogram}_count", method="GET", route=route) == 5
    assert value(parsed, f"{histogram}_bucket", method="GET", route=route, le="+Inf") == 5
    assert value(parsed, f"{histogram}_sum", method="GET", route=route) > 0


async def test_the_metrics_route_is_not_in_the_openapi_schema(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()

    assert "/metrics" not in schema["paths"]
    assert "/items/{item_id}" in schema["paths"]


async def test_events_are_counted_per_topic_and_group_by_outcome() -> None:
    topic, group = f"orders-{uuid.uuid4().hex[:6]}", f"billing-{uuid.uuid4().hex[:6]}"

    @consumer(group, topics=[topic], max_retries=2)
    class Billing:
        @on_event("order.paid")
        async def paid(self, event: Event) -> None:
            return None

        @on_event("order.refunded")
        async def refunded(self, event: Event) -> None:
            raise RuntimeError("ledger offline")

    app = metrics_app()  # the in-memory broker runs the consumers in the app's process
    async with app.lifespan():
        await app.create_all()
        async with app.session():
            for _ in range(3):
                await publish_event("order.paid", data={"id": 1}, topic=topic)
            await publish_event("order.refunded", data={"id": 2}, topic=topic)
            await publish_event("order.unknown", data={"id": 3}, topic=topic)
        await flush_events(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            parsed = await scrape(http)

    labels = {"topic": topic, "group": group}
    assert value(parsed, "core_events_handled_total", **labels) == 3
    # The refund failed its first attempt and both retries, then went to the dead letters,
    # as did the event no handler names.
    assert value(parsed, "core_event_handler_failures_total", **labels) == 3
    assert value(parsed, "core_events_dead_lettered_total", **labels) == 2
    assert value(parsed, "core_events_failed_total", **labels) == 0
    assert value(parsed, "core_event_handling_duration_seconds_count", **labels) == 5


async def test_tasks_are_counted_per_name_from_enqueue_to_outcome(
    app: CoreApp, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    @task
    async def send_welcome(user_id: int) -> int:
        return user_id

    @task(retry=1, retry_backoff=5, retry_jitter=False)
    async def charge(order_id: int) -> None:
        raise ConnectionError("gateway down")

    with use_container(app.container):
        sent = [await send_welcome.delay(n) for n in range(4)]
        doomed = await charge.delay(7)
        await _settle()
        clock.advance(5)  # the retry's backoff
        await _settle()
        results = [await get_result(task_id) for task_id in [*sent, doomed]]
    assert all(result.ready for result in results)

    parsed = await scrape(http)

    welcome, doomed_name = send_welcome.name, charge.name
    assert value(parsed, "core_tasks_enqueued_total", task=welcome) == 4
    assert value(parsed, "core_tasks_started_total", task=welcome) == 4
    assert value(parsed, "core_tasks_succeeded_total", task=welcome) == 4
    # One run sent; two attempts: the first retried, the second failed for good.
    assert value(parsed, "core_tasks_enqueued_total", task=doomed_name) == 1
    assert value(parsed, "core_tasks_started_total", task=doomed_name) == 2
    assert value(parsed, "core_tasks_retried_total", task=doomed_name) == 1
    assert value(parsed, "core_tasks_failed_total", task=doomed_name) == 1
    assert value(parsed, "core_tasks_succeeded_total", task=doomed_name) == 0
    assert value(parsed, "core_task_duration_seconds_count", task=welcome) == 4
    assert value(parsed, "core_task_duration_seconds_count", task=doomed_name) == 2


async def _settle(turns: int = 50) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_the_outbox_gauges_read_pending_and_failed_rows_at_scrape() -> None:
    app = metrics_app(outbox_relay_in_process=False)
    async with app.lifespan():
        await app.create_all()
        async with app.session():  # in a unit of work: through the outbox
            await publish_event("order.created", data={"id": 1}, topic="orders-outbox")
            await publish_event("order.created", data={"id": 2}, topic="orders-outbox")
        from core.messaging import OutboxMessage

        async with app.session() as db:
            first = await OutboxMessage.objects.using(db).order_by("id").first()
            assert first is not None
            await OutboxMessage.objects.using(db).filter(id=first.id).update(status="failed")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            parsed = await scrape(http)

    assert value(parsed, "core_outbox_pending") == 1
    assert value(parsed, "core_outbox_failed") == 1
    assert value(parsed, "core_outbox_oldest_pending_age_seconds") >= 0
    assert value(parsed, "core_metrics_source_up", source="outbox") == 1


class _Stats:
    """A task queue that reports its streams, like the Redis one (which the integration tests
    scrape for real)."""

    def __init__(self, outcome: list[QueueStats] | BaseException | None) -> None:
        self.outcome = outcome

    async def stats(self) -> list[QueueStats]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        if self.outcome is None:
            await asyncio.sleep(3600)
        assert isinstance(self.outcome, list)
        return self.outcome


async def test_a_source_that_fails_or_hangs_is_reported_down_and_the_scrape_still_answers() -> None:
    app = metrics_app()
    failing = _Stats(ConnectionError("redis down"))
    with app.container.tasks.queue.override(failing):
        gauges = {g.name: g for g in await scrape_gauges(app.container, limit=0.05)}
    assert gauges["metrics_source_up"].values[("task_queue",)] == 0
    assert "task_queue_depth" not in gauges

    hanging = _Stats(None)
    with app.container.tasks.queue.override(hanging):
        gauges = {g.name: g for g in await scrape_gauges(app.container, limit=0.05)}
    assert gauges["metrics_source_up"].values[("task_queue",)] == 0

    answering = _Stats([QueueStats("default", depth=5, pending=2, delayed=1)])
    with app.container.tasks.queue.override(answering):
        gauges = {g.name: g for g in await scrape_gauges(app.container, limit=1)}
    assert gauges["metrics_source_up"].values[("task_queue",)] == 1
    assert gauges["task_queue_depth"].values == {("default",): 5}
    assert gauges["task_queue_pending"].values == {("default",): 2}
    assert gauges["task_queue_delayed"].values == {("default",): 1}


async def test_the_password_hashing_gauges_follow_the_pool() -> None:
    from core.auth import hashing

    app = metrics_app(auth_hashing_queue_size=7)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            idle = await scrape(http)
            pool = hashing.hashing_pool()
            release = threading.Event()
            running = threading.Semaphore(0)

            def slow() -> None:
                running.release()
                release.wait()

            calls = [asyncio.create_task(pool.run(slow)) for _ in range(pool.workers + 2)]
            for _ in range(pool.workers):  # every hashing thread busy: the other two wait
                await asyncio.to_thread(running.acquire)
            busy = await scrape(http)
            release.set()
            await asyncio.gather(*calls)
            done = await scrape(http)

    assert value(idle, "core_password_hashing_queue_size") == 7
    assert value(idle, "core_password_hashing_running") == 0
    assert value(busy, "core_password_hashing_running") == pool.workers
    assert value(busy, "core_password_hashing_queue_length") == 2
    assert value(done, "core_password_hashing_queue_length") == 0
    assert value(done, "core_password_hashing_running") == 0


async def test_metrics_off_by_default_serve_nothing_and_record_nothing() -> None:
    app = CoreApp(settings=test_settings(), routers=[_router()])
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/items/1")).status_code == 200
            assert (await http.get("/metrics")).status_code == 404

    assert app.container.metrics.recorder().enabled is False


async def test_a_custom_metrics_path_is_served() -> None:
    app = metrics_app(metrics_path="/internal/prometheus")
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.get("/items/1")
            parsed = await scrape(http, "/internal/prometheus")
            assert (await http.get("/metrics")).status_code == 404

    route = "/items/{item_id}"
    assert value(parsed, "core_http_requests_total", method="GET", route=route, status="200") == 1


def test_enabling_metrics_without_prometheus_client_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the `metrics` extra were not installed: the import fails.
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "core.adapters.prometheus.metrics", raising=False)

    with pytest.raises(MissingDependencyError, match=r"core-framework\[metrics\]"):
        metrics_app()


def test_two_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = metrics_app(), metrics_app()

    first.container.metrics.recorder().task_enqueued("t")

    body, _ = second.container.metrics.recorder().expose([])
    assert value(samples(body.decode()), "core_tasks_enqueued_total", task="t") == 0
    body, _ = first.container.metrics.recorder().expose([])
    assert value(samples(body.decode()), "core_tasks_enqueued_total", task="t") == 1
