"""What `core consumer` logs: one INFO line per event handled, with its name, id, attempt,
duration and outcome, under the correlation id the request that caused it started."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from core.context import use_container
from core.logs import ContextFilter
from core.messaging import (
    ConsumerSelection,
    Event,
    consumer,
    flush_events,
    on_event,
    publish_event,
)
from tests.unit.messaging.conftest import unique
from tests.unit.messaging.shop import ORDER_TOPIC, build_app


def _runs(caplog: pytest.LogCaptureFixture, group: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "group", None) == group]


async def test_a_handled_event_logs_one_line_under_the_request_correlation_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    group = unique("audit")
    tries: list[int] = []

    @consumer(group, topics=[ORDER_TOPIC], max_retries=1)
    class Audit:
        @on_event("order.created")
        async def record(self, event: Event, db: Any) -> None:
            tries.append(1)
            logging.getLogger("audit.store").info("auditing order %s", event.data["id"])
            if len(tries) == 1:
                raise ConnectionError("audit store busy")

    app = build_app()
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({group}))
    async with app.lifespan():
        await app.create_all()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post(
                "/api/v1/orders/create_order/",
                json={"user_id": 3, "total": 2},
                headers={"X-Request-ID": "req-audit-1"},
            )
        await flush_events(app)

    assert response.status_code == 200
    [line] = _runs(caplog, group)
    assert line.levelno == logging.INFO
    assert (line.event, line.topic, line.attempt, line.outcome) == (
        "order.created",
        ORDER_TOPIC,
        2,
        "handled",
    )
    assert line.duration_ms >= 0
    # No X-Correlation-ID sent: the request id correlates the request and its consequences.
    assert line.correlation_id == "req-audit-1"
    handler_lines = [r for r in caplog.records if r.name == "audit.store"]
    assert [r.correlation_id for r in handler_lines] == ["req-audit-1", "req-audit-1"]  # type: ignore[attr-defined]
    assert f"Event order.created {line.event_id} on {ORDER_TOPIC}/{group}: handled" in (
        line.getMessage()
    )


async def test_a_dead_lettered_event_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic], max_retries=0)
    class Broken:
        @on_event("thing.happened")
        async def handle(self, event: Event, db: Any) -> None:
            raise RuntimeError("bug")

    app = build_app()
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({group}))
    async with app.lifespan():
        with use_container(app.container):
            sent = await publish_event("thing.happened", data={}, topic=topic)
        await flush_events(app)

    [line] = _runs(caplog, group)
    assert (line.event_id, line.attempt, line.outcome) == (str(sent.id), 1, "dead_lettered")
