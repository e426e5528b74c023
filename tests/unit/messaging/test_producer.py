"""publish_event and @event: through the outbox inside a unit of work, straight out otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from core import CoreApp
from core.context import use_container
from core.errors import ConfigurationError, NotRunningError
from core.messaging import Event, OutboxMessage, event, flush_events, publish_event
from core.messaging.producer import declared_events
from tests.unit.messaging.conftest import collect, unique
from tests.unit.messaging.shop import ORDER_TOPIC, MsgOrder, MsgUser, build_app


async def _outbox(app: CoreApp) -> list[dict[str, Any]]:
    async with app.session() as db:
        return (
            await OutboxMessage.objects.using(db)
            .order_by("id")
            .values("name", "topic", "key", "status")
        )


async def test_an_action_with_event_publishes_its_result_after_commit(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    received = collect(shop, ORDER_TOPIC)

    response = await client.post("/api/v1/orders/create_order/", json={"user_id": 7, "total": 9.5})

    assert response.status_code == 200
    assert received.messages == [], "nothing leaves before the relay runs"
    assert await _outbox(shop) == [
        {"name": "order.created", "topic": ORDER_TOPIC, "key": "7", "status": "pending"}
    ]
    assert await flush_events(shop) == 1
    [message] = received.messages
    sent = Event.from_message(message)
    assert (sent.name, sent.data) == ("order.created", response.json())
    assert sent.source == "shop"
    # With no X-Correlation-ID, the request's id correlates its events with its log lines.
    assert sent.headers["correlation_id"] == response.headers["x-request-id"]
    assert (await _outbox(shop))[0]["status"] == "sent"


async def test_event_above_action_works_too(shop: CoreApp, client: httpx.AsyncClient) -> None:
    received = collect(shop, ORDER_TOPIC)
    async with shop.session() as db:
        order = await MsgOrder.objects.create(user_id=1, total=3, db=db)

    response = await client.post(f"/api/v1/orders/{order.id}/cancel/")
    await flush_events(shop)

    assert response.status_code == 200
    assert [(m["name"], m["data"]) for m in received.messages] == [
        ("order.cancelled", {"id": order.id, "status": "cancelled"})
    ]


async def test_a_failing_request_publishes_nothing(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    received = collect(shop, ORDER_TOPIC)

    response = await client.post("/api/v1/orders/risky/", json={"user_id": 1, "total": 1})

    assert response.status_code == 400
    assert await _outbox(shop) == [], "the event was written, then rolled back with the order"
    assert await flush_events(shop) == 0
    assert received.messages == []
    async with shop.session() as db:
        assert await MsgOrder.objects.using(db).count() == 0


async def test_a_request_rejected_before_the_handler_ends_publishes_nothing(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    response = await client.post("/api/v1/orders/create_order/", json={"user_id": "x"})

    assert response.status_code in (400, 422)
    assert await _outbox(shop) == []


async def test_publish_event_outside_a_unit_of_work_goes_straight_to_the_broker(
    shop: CoreApp,
) -> None:
    topic = unique("direct")
    received = collect(shop, topic)

    with use_container(shop.container):
        sent = await publish_event(
            "user.updated",
            data={"id": 1, "email": "new@example.com"},
            topic=topic,
            headers={"tenant": "acme"},
        )
    await shop.container.messaging.broker().join()

    assert await _outbox(shop) == []
    [message] = received.messages
    assert Event.from_message(message) == sent
    assert sent.headers == {"tenant": "acme", "correlation_id": str(sent.id)}


async def test_publish_event_inside_a_session_waits_for_its_commit(shop: CoreApp) -> None:
    topic = unique("session")
    received = collect(shop, topic)

    async with shop.session() as db:
        user = await MsgUser.objects.create(email="a@x.io", db=db)
        await publish_event("user.created", data=user, topic=topic, key=str(user.id))
        assert await flush_events(shop) == 0, "not committed yet: invisible to the relay"

    assert await flush_events(shop) == 1
    assert [m["data"] for m in received.messages] == [
        {"id": user.id, "email": "a@x.io", "order_count": 0}
    ]


async def test_publish_event_to_the_memory_broker_with_no_app_running_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env: the process default is the embedded one
    monkeypatch.setenv("MESSAGE_BROKER", "memory")
    # No consumer in this process would ever receive it: an error, not a lost event.
    with pytest.raises(NotRunningError, match=r"'x\.y'.*MESSAGE_BROKER=kafka.*core consumer"):
        await publish_event("x.y", data={}, topic="t")


async def test_publish_event_refuses_data_json_cannot_carry(shop: CoreApp) -> None:
    with use_container(shop.container), pytest.raises(TypeError, match="not JSON serializable"):
        await publish_event("x.y", data={"f": object()}, topic=unique("t"))


async def test_event_on_a_plain_coroutine_publishes_its_return_value() -> None:
    app = build_app()
    topic = unique("plain")

    @event("report.ready", topic=topic, key=lambda data: data["owner"])
    async def make_report(owner: str) -> dict[str, str]:
        return {"owner": owner, "url": "/r/1"}

    received = collect(app, topic)
    async with app.lifespan():
        with use_container(app.container):
            assert await make_report("ann") == {"owner": "ann", "url": "/r/1"}
        await app.container.messaging.broker().join()

    assert [m["data"]["owner"] for m in received.messages] == ["ann"]
    declared = [d for d in declared_events() if d.topic == topic]
    assert [(d.name, d.emitter.rsplit(".", 1)[-1]) for d in declared] == [
        ("report.ready", "make_report")
    ]


async def test_event_publishes_nothing_when_the_function_raises() -> None:
    app = build_app()
    topic = unique("raises")

    @event("never.sent", topic=topic)
    async def fail() -> None:
        raise RuntimeError("boom")

    received = collect(app, topic)
    async with app.lifespan():
        with use_container(app.container), pytest.raises(RuntimeError):
            await fail()
        await app.container.messaging.broker().join()
    assert received.messages == []


async def test_event_refuses_a_response_and_a_missing_key_field() -> None:
    app = build_app()

    @event("a.response", topic="t")
    async def respond() -> JSONResponse:
        return JSONResponse({})

    @event("a.keyed", topic="t", key="missing")
    async def keyed() -> dict[str, int]:
        return {"id": 1}

    with use_container(app.container):
        with pytest.raises(TypeError, match="returned a Response"):
            await respond()
        with pytest.raises(ConfigurationError, match="has no 'missing'"):
            await keyed()


def test_event_decorates_only_coroutine_functions() -> None:
    with pytest.raises(ConfigurationError, match="coroutine"):
        event("x.y", topic="t")(lambda: None)  # type: ignore[type-var]


async def test_the_request_correlation_header_reaches_the_event(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    received = collect(shop, ORDER_TOPIC)

    await client.post(
        "/api/v1/orders/create_order/",
        json={"user_id": 1, "total": 1},
        headers={"X-Correlation-ID": "req-42"},
    )
    await flush_events(shop)

    assert received.messages[0]["headers"]["correlation_id"] == "req-42"
