"""@consumer / @on_event: a unit of work per event, retries then dead letters, unknown names
dead-lettered (or skipped), and in-process consumers on the in-memory broker end to end."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.context import current_session, use_container
from core.errors import ConfigurationError
from core.messaging import (
    ConsumerSelection,
    Event,
    consumer,
    current_event,
    current_group,
    flush_events,
    on_event,
    publish_event,
)
from tests.unit.messaging.conftest import collect, unique
from tests.unit.messaging.shop import GROUP, MsgOrder, MsgUser, OrderEventsConsumer, build_app


def only(app: CoreApp, *groups: str) -> CoreApp:
    """Run just these groups in `app` (other tests' declarations stay out of it)."""
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset(groups))
    return app


async def _publish(app: CoreApp, name: str, data: Any, topic: str) -> Event:
    with use_container(app.container):
        return await publish_event(name, data=data, topic=topic)


async def test_a_handler_gets_the_event_and_a_session_committed_after_it(
    database_url: str,
) -> None:
    topic, group = unique("orders"), unique("svc")
    seen: list[tuple[Any, ...]] = []

    @consumer(group, topics=[topic])
    class Welcome:
        @on_event("user.created")
        async def on_user_created(self, event: Event, db: Any) -> None:
            seen.append((event.data["email"], db is current_session(), current_group()))
            await MsgOrder.objects.create(
                user_id=event.data["id"], total=0, status="welcome", db=db
            )

    app = only(build_app(database_url=database_url), group)
    async with app.lifespan():
        await app.create_all()
        await _publish(app, "user.created", {"id": 5, "email": "a@x.io"}, topic)
        await flush_events(app)
        async with app.session() as db:
            orders = await MsgOrder.objects.using(db).values("user_id", "status")

    assert seen == [("a@x.io", True, group)]
    assert orders == [{"user_id": 5, "status": "welcome"}]


async def test_a_failing_handler_is_retried_then_dead_lettered_with_its_error() -> None:
    topic, group = unique("payments"), unique("svc")
    attempts: list[int] = []

    @consumer(group, topics=[topic], max_retries=2)
    class Payments:
        @on_event("payment.requested")
        async def charge(self, event: Event, db: Any) -> None:
            attempts.append(1)
            await MsgOrder.objects.create(user_id=1, total=1, db=db)
            raise RuntimeError("card declined")

    app = only(build_app(), group)
    dead = collect(app, f"{topic}.dlq")
    async with app.lifespan():
        await app.create_all()
        sent = await _publish(app, "payment.requested", {"id": 1}, topic)
        await flush_events(app)
        async with app.session() as db:
            assert await MsgOrder.objects.using(db).count() == 0, "every attempt rolled back"

    assert len(attempts) == 3, "the first attempt and two retries"
    [message] = dead.messages
    letter = Event.from_message(message)
    assert (letter.id, letter.name, letter.data) == (sent.id, sent.name, sent.data)
    assert letter.headers["dead_letter_error"] == "RuntimeError: card declined"
    assert letter.headers["dead_letter_error_type"] == "RuntimeError"
    assert letter.headers["dead_letter_topic"] == topic
    assert letter.headers["dead_letter_group"] == group
    assert letter.headers["dead_letter_attempts"] == "3"


async def test_retries_follow_the_settings_and_back_off() -> None:
    topic, group = unique("t"), unique("svc")
    calls: list[int] = []

    @consumer(group, topics=[topic])
    class Flaky:
        @on_event("e")
        async def handle(self, event: Event, db: Any) -> None:
            calls.append(1)
            if len(calls) < 2:
                raise RuntimeError("once")

    app = only(build_app(consumer_max_retries=1, consumer_retry_backoff=0.0), group)
    dead = collect(app, f"{topic}.dlq")
    async with app.lifespan():
        await _publish(app, "e", {}, topic)
        await flush_events(app)
    assert (len(calls), dead.messages) == (2, [])
    [dispatcher] = app.container.messaging.runtime().dispatchers
    assert [dispatcher.policy.delay(n) for n in (1, 2)] == [0.0, 0.0]
    policy = type(dispatcher.policy)(backoff=0.5, backoff_max=1.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]


async def test_an_event_no_handler_names_goes_to_the_dead_letter_topic() -> None:
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic])
    class Picky:
        @on_event("wanted")
        async def handle(self, event: Event, db: Any) -> None:
            raise AssertionError("never called")

    app = only(build_app(), group)
    dead = collect(app, f"{topic}.dlq")
    async with app.lifespan():
        sent = await _publish(app, "unwanted", {"n": 1}, topic)
        await flush_events(app)
    [message] = dead.messages
    letter = Event.from_message(message)
    assert (letter.id, letter.data) == (sent.id, {"n": 1})
    assert letter.headers["dead_letter_error"] == (
        f"LookupError: no handler for event 'unwanted' in group '{group}' (handled: wanted)"
    )


async def test_with_unhandled_events_skipped_one_is_acknowledged_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic])
    class Picky:
        @on_event("wanted")
        async def handle(self, event: Event, db: Any) -> None:
            raise AssertionError("never called")

    app = only(build_app(consumer_unhandled_events="skip"), group)
    dead = collect(app, f"{topic}.dlq")
    with caplog.at_level(logging.INFO, logger="core.messaging.consumer"):
        async with app.lifespan():
            for _ in range(2):
                await _publish(app, "unwanted", {}, topic)
            await flush_events(app)
    broker: Any = app.container.messaging.broker()
    assert broker.dead_letters == [] and dead.messages == []
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "unwanted" in r.message]
    assert len(infos) == 1


async def test_a_message_that_is_not_an_event_goes_to_the_dead_letter_topic() -> None:
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic])
    class Strict:
        @on_event("x")
        async def handle(self, event: Event, db: Any) -> None:
            raise AssertionError("never called")

    app = only(build_app(), group)
    dead = collect(app, f"{topic}.dlq")
    async with app.lifespan():
        broker: Any = app.container.messaging.broker()
        await broker.publish({"hello": "world"}, topic=topic)
        await broker.join()
    assert dead.messages == [{"hello": "world"}]


async def test_events_published_by_a_handler_follow_from_the_handled_one() -> None:
    topic, group, downstream = unique("t"), unique("svc"), unique("down")

    @consumer(group, topics=[topic])
    class Chain:
        @on_event("first")
        async def handle(self, event: Event) -> None:  # a handler may do without db
            assert current_event() == event
            await publish_event("second", data={"after": event.data}, topic=downstream)

    app = only(build_app(), group)
    received = collect(app, downstream)
    async with app.lifespan():
        await app.create_all()
        first = await _publish(app, "first", 1, topic)
        await flush_events(app)
    [second] = [Event.from_message(m) for m in received.messages]
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == str(first.id)


async def test_in_process_consumers_on_the_memory_broker_work_end_to_end() -> None:
    # The embedded default: one process, in-memory broker, the relay in the background.
    app = only(build_app(outbox_relay_in_process=True), GROUP)
    async with app.lifespan():
        await app.create_all()
        async with app.session() as db:
            await MsgUser.objects.create(id=1, email="ann@x.io", db=db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            response = await client.post(
                "/api/v1/orders/create_order/", json={"user_id": 1, "total": 5}
            )
        assert response.status_code == 200
        await flush_events(app)
        async with app.session() as db:
            assert (await MsgUser.objects.using(db).get(id=1)).order_count == 1
    assert len(OrderEventsConsumer.handled) == 1


async def test_with_a_real_broker_consumers_run_only_where_asked() -> None:
    app = build_app(message_broker="redis")
    assert app.container.messaging.runtime().default_consumers() is None
    app = build_app(message_broker="redis", consumers_in_process=True)
    assert app.container.messaging.runtime().default_consumers() == ConsumerSelection()
    assert build_app().container.messaging.runtime().default_consumers() == ConsumerSelection()


async def test_one_group_cannot_handle_an_event_twice() -> None:
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic])
    class First:
        @on_event("e")
        async def handle(self, event: Event, db: Any) -> None: ...

    @consumer(group, topics=[topic])
    class Second:
        @on_event("e")
        async def handle(self, event: Event, db: Any) -> None: ...

    app = only(build_app(), group)
    with pytest.raises(ConfigurationError, match="handles event 'e' twice"):
        async with app.lifespan():
            pass


async def test_a_group_can_spread_its_handlers_over_classes_and_topics() -> None:
    first_topic, second_topic, group = unique("a"), unique("b"), unique("svc")
    seen: list[str] = []

    @consumer(group, topics=[first_topic, second_topic])
    class Users:
        @on_event("user.created")
        @on_event("user.updated")
        async def handle(self, event: Event, db: Any) -> None:
            seen.append(event.name)

    @consumer(group, topics=[second_topic])
    class Orders:
        @on_event("order.created")
        async def handle(self, event: Event, db: Any) -> None:
            seen.append(event.name)

    app = only(build_app(), group)
    async with app.lifespan():
        await _publish(app, "user.created", {}, first_topic)
        await _publish(app, "user.updated", {}, second_topic)
        await _publish(app, "order.created", {}, second_topic)
        await flush_events(app)
    assert sorted(seen) == ["order.created", "user.created", "user.updated"]
    assert {(d.group, d.topic) for d in app.container.messaging.runtime().dispatchers} == {
        (group, first_topic),
        (group, second_topic),
    }


def test_declarations_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="no @on_event"):

        @consumer("g", topics=["t"])
        class Empty:
            pass

    with pytest.raises(ConfigurationError, match="list of topic names"):
        consumer("g", topics="t")
    with pytest.raises(ConfigurationError, match="group name"):
        consumer("", topics=["t"])
    with pytest.raises(ConfigurationError, match="coroutine"):
        on_event("e")(lambda self, event, db: None)  # type: ignore[type-var]


def test_a_selection_naming_nothing_declared_is_refused() -> None:
    topic, group = unique("t"), unique("svc")

    @consumer(group, topics=[topic])
    class Some:
        @on_event("e")
        async def handle(self, event: Event, db: Any) -> None: ...

    from core.messaging import declared_consumers

    declared = declared_consumers()
    with pytest.raises(ConfigurationError, match="No @consumer declares group nope"):
        ConsumerSelection(groups=frozenset({"nope"})).apply(declared)
    with pytest.raises(ConfigurationError, match="No selected @consumer reads topic other"):
        ConsumerSelection(groups=frozenset({group}), topics=frozenset({"other"})).apply(declared)
    [(declaration, topics)] = ConsumerSelection(topics=frozenset({topic})).apply(declared)
    assert (declaration.cls, topics) == (Some, (topic,))
