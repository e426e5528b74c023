"""The outbox relay: rows relayed after commit and marked sent, cleaned later, and nothing lost
or sent twice while the broker is down."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.context import use_container
from core.errors import BrokerUnavailableError
from core.messaging import (
    ConsumerSelection,
    OutboxMessage,
    ProcessedEvent,
    RelayError,
    flush_events,
    publish_event,
)
from core.messaging.models import FAILED, SENT
from tests.unit.messaging.conftest import Collector, FlakyBroker, collect, unique
from tests.unit.messaging.shop import GROUP, ORDER_TOPIC, MsgUser, OrderEventsConsumer, build_app


async def _rows(app: CoreApp) -> list[OutboxMessage]:
    async with app.session() as db:
        return await OutboxMessage.objects.using(db).order_by("id").all()


async def test_relayed_rows_are_marked_sent_then_cleaned_after_the_retention(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    for total in (1, 2):
        await client.post("/api/v1/orders/create_order/", json={"user_id": 1, "total": total})
    await flush_events(shop)
    relay = shop.container.messaging.runtime().relay

    rows = await _rows(shop)
    assert [r.status for r in rows] == [SENT, SENT]
    sent_at = rows[0].sent_at
    assert sent_at is not None and sent_at.tzinfo is not None

    assert await relay.cleanup(now=sent_at + timedelta(seconds=relay.retention - 1)) == (0, 0)
    assert len(await _rows(shop)) == 2
    cleaned, _ = await relay.cleanup(now=sent_at + timedelta(seconds=relay.retention + 1))
    assert cleaned == 2
    assert await _rows(shop) == []


async def test_pending_rows_are_never_cleaned(shop: CoreApp, client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/orders/create_order/", json={"user_id": 1, "total": 1})
    relay = shop.container.messaging.runtime().relay

    await relay.cleanup(now=relay.clock() + timedelta(days=365))

    assert [r.status for r in await _rows(shop)] == ["pending"]


async def test_idempotency_records_are_cleaned_after_their_retention(shop: CoreApp) -> None:
    relay = shop.container.messaging.runtime().relay
    async with shop.session() as db:
        record = await ProcessedEvent.objects.create(
            consumer_group="g", event_id=uuid.uuid4(), db=db
        )
    later = record.processed_at + timedelta(seconds=relay.processed_retention + 1)

    assert await relay.cleanup(now=later) == (0, 1)


@pytest.fixture
def flaky() -> FlakyBroker:
    return FlakyBroker()


@pytest.fixture
async def flaky_shop(database_url: str, flaky: FlakyBroker) -> Any:
    app = build_app(database_url=database_url)
    # Only the shop's own consumer: other tests' declarations stay out of this app.
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({GROUP}))
    with app.container.messaging.broker.override(flaky):
        async with app.lifespan():
            await app.create_all()
            async with app.session() as db:
                await MsgUser.objects.create(id=1, email="ann@x.io", db=db)
            yield app


async def test_a_broker_outage_delays_events_and_then_delivers_each_exactly_once(
    flaky_shop: CoreApp, flaky: FlakyBroker
) -> None:
    relay = flaky_shop.container.messaging.runtime().relay
    flaky.down = True
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=flaky_shop), base_url="http://testserver"
    ) as client:
        for total in (10, 20, 30):
            response = await client.post(
                "/api/v1/orders/create_order/", json={"user_id": 1, "total": total}
            )
            assert response.status_code == 200, "the API serves while the broker is down"

    for _ in range(2):
        with pytest.raises(RelayError, match="the broker is down"):
            await relay.flush()
    rows = await _rows(flaky_shop)
    assert [r.status for r in rows] == ["pending"] * 3
    # The lane of user 1 stops at its first failure, so its later rows are not even tried.
    assert [r.attempts for r in rows] == [2, 0, 0]
    assert rows[0].last_error == "BrokerUnavailableError: the broker is down (test)"

    flaky.down = False
    assert await flush_events(flaky_shop) == 3
    # A redelivery, as after a relay crash between publishing and marking the row sent.
    await flaky.inner.publish(rows[0].payload, topic=ORDER_TOPIC, headers=rows[0].headers)
    await flaky.join()

    assert sorted(OrderEventsConsumer.handled) == sorted(str(r.event_id) for r in rows)
    async with flaky_shop.session() as db:
        user = await MsgUser.objects.using(db).get(id=1)
    assert user.order_count == 3, "each event counted once, the duplicate ignored"
    assert [r.status for r in await _rows(flaky_shop)] == [SENT] * 3


async def test_one_keys_failure_holds_its_later_rows_but_not_other_keys(
    shop: CoreApp,
) -> None:
    topic = unique("lanes")
    refused: set[str] = {"a1"}
    broker: Any = shop.container.messaging.broker()
    original = broker.publish

    async def publish(message: Any, **options: Any) -> None:
        if message["data"]["n"] in refused:
            raise BrokerUnavailableError("refused (test)")
        await original(message, **options)

    broker.publish = publish
    received = collect(shop, topic)
    async with shop.session():
        for n, key in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")):
            await publish_event("step", data={"n": n}, topic=topic, key=key)

    with pytest.raises(RelayError):
        await flush_events(shop)
    await broker.join()
    assert [m["data"]["n"] for m in received.messages] == ["b1", "b2"]

    refused.clear()
    await flush_events(shop)
    assert [m["data"]["n"] for m in received.messages] == ["b1", "b2", "a1", "a2"]


async def test_the_background_relay_wakes_on_commit() -> None:
    # A poll interval far longer than the test: only the commit's signal can deliver in time.
    app = build_app(outbox_relay_in_process=True, outbox_poll_interval=3_600)
    topic = unique("wake")
    received = collect(app, topic)
    async with app.lifespan():
        await app.create_all()
        async with app.session():
            await publish_event("woken", data={}, topic=topic)
        await received.wait_for(1)
    assert received.messages[0]["name"] == "woken"


async def test_the_background_relay_retries_an_unreachable_broker(flaky: FlakyBroker) -> None:
    app = build_app(outbox_relay_in_process=True, outbox_poll_interval=3_600)
    topic = unique("retry")
    received = Collector()
    flaky.subscribe([topic], received, group="g")
    relay = app.container.messaging.runtime().relay
    relay.backoff_base = 0.001
    flaky.down = True
    with app.container.messaging.broker.override(flaky):
        async with app.lifespan():
            await app.create_all()
            async with app.session():
                await publish_event("late", data={}, topic=topic)
            await flaky.wait_for_refusals(2)
            flaky.down = False
            await received.wait_for(1)
    assert len(received.messages) == 1


async def test_an_app_starts_while_the_broker_is_down_when_it_consumes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unreachable(FlakyBroker):
        async def start(self) -> None:
            raise BrokerUnavailableError("no broker (test)")

    app = build_app(message_broker="memory")
    app.container.messaging.runtime().consumers = None
    with app.container.messaging.broker.override(Unreachable()), caplog.at_level(logging.WARNING):
        async with app.lifespan():
            pass
    assert "unreachable at start-up" in caplog.text

    consuming = build_app()
    consuming.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({GROUP}))
    with (
        consuming.container.messaging.broker.override(Unreachable()),
        pytest.raises(BrokerUnavailableError),
    ):
        async with consuming.lifespan():
            pass


async def test_no_relay_runs_on_an_in_memory_sqlite_database(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(database_url="sqlite+aiosqlite:///:memory:", outbox_relay_in_process=True)
    with caplog.at_level(logging.WARNING):
        async with app.lifespan():
            assert not app.container.messaging.runtime().relay.running
    assert "shares one connection" in caplog.text


async def test_two_apps_relay_their_own_outboxes(tmp_path: Any) -> None:
    first = build_app(app_name="first")
    second = build_app(app_name="second", database_url=f"sqlite+aiosqlite:///{tmp_path}/2.db")
    topic = unique("iso")
    inboxes = {app.settings.app_name: collect(app, topic) for app in (first, second)}
    for app in (first, second):
        async with app.lifespan():
            await app.create_all()
            async with app.session():
                await publish_event("hello", data=app.settings.app_name, topic=topic)
            await flush_events(app)
    assert {name: [m["data"] for m in inbox.messages] for name, inbox in inboxes.items()} == {
        "first": ["first"],
        "second": ["second"],
    }
    assert first.container.messaging.runtime() is not second.container.messaging.runtime()


async def test_the_outbox_writes_through_the_repository_port(shop: CoreApp) -> None:
    with use_container(shop.container):
        async with shop.session() as db:
            await publish_event("a", data=1, topic="t")
            await publish_event("b", data=2, topic="t")
            pending = await OutboxMessage.objects.using(db).filter(status="pending").count()
    assert pending == 2


async def test_stopping_cuts_a_hung_publish_short_and_keeps_its_row(shop: CoreApp) -> None:
    relay = shop.container.messaging.runtime().relay
    broker: Any = shop.container.messaging.broker()
    entered = asyncio.Event()

    async def hang(message: Any, **options: Any) -> None:
        entered.set()
        await asyncio.Event().wait()  # a broker that never answers

    broker.publish = hang
    async with shop.session():
        await publish_event("stuck", data={}, topic=unique("hung"))
    relay.start()
    await entered.wait()

    await relay.stop(grace=0)

    assert not relay.running
    assert [r.status for r in await _rows(shop)] == ["pending"]


class StepClock:
    """The relay's clock, moved by the test: backoffs pass without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def refusing(shop: CoreApp, error: type[Exception] = BrokerUnavailableError) -> Any:
    """Make the shop's broker refuse every event whose data says `bad`."""
    broker: Any = shop.container.messaging.broker()
    original = broker.publish

    async def publish(message: Any, **options: Any) -> None:
        if message["data"].get("bad"):
            raise error("message too large (test)")
        await original(message, **options)

    broker.publish = publish
    return broker


async def test_unsendable_rows_delay_nobody_and_are_parked_after_max_attempts(
    shop: CoreApp,
) -> None:
    topic = unique("poison")
    relay = shop.container.messaging.runtime().relay
    relay.clock = clock = StepClock()
    relay.max_attempts = 3
    broker = refusing(shop)
    received = collect(shop, topic)
    async with shop.session():
        for n in range(100):
            await publish_event("bad", data={"n": n, "bad": True}, topic=topic, key=f"b{n}")
        for n in range(20):
            await publish_event("good", data={"n": n}, topic=topic, key=f"g{n % 3}")

    # The first pass takes the 100 bad rows (a batch) and fails them all; they wait out their
    # backoff, so the second pass, at the same moment, takes the good ones.
    with pytest.raises(RelayError):
        await relay.relay_once()
    assert await relay.relay_once() == 20
    await broker.join()
    got = [m["data"]["n"] for m in received.messages]
    assert sorted(got) == list(range(20))
    for key in range(3):
        assert [n for n in got if n % 3 == key] == list(range(key, 20, 3)), "each key in order"

    for _ in range(2):
        clock.advance(relay.backoff_max)
        with pytest.raises(RelayError):
            await relay.relay_once()
    rows = await _rows(shop)
    failed = [r for r in rows if r.status == FAILED]
    assert len(failed) == 100
    assert {r.attempts for r in failed} == {3}
    assert {r.last_error for r in failed} == {"BrokerUnavailableError: message too large (test)"}
    clock.advance(relay.backoff_max)
    assert await relay.relay_once() == 0, "parked rows are not tried again"

    # Requeued by hand (`core outbox requeue`), a row is pending and due again.
    assert await relay.requeue([failed[0].id]) == 1
    requeued = [r for r in await _rows(shop) if r.id == failed[0].id]
    assert (requeued[0].status, requeued[0].attempts) == ("pending", 0)


async def test_a_backing_off_row_holds_its_keys_later_rows_until_it_is_parked(
    shop: CoreApp,
) -> None:
    topic = unique("held")
    relay = shop.container.messaging.runtime().relay
    relay.clock = clock = StepClock()
    relay.max_attempts = 2
    broker = refusing(shop, ValueError)
    received = collect(shop, topic)
    async with shop.session():
        await publish_event("step", data={"n": "a1", "bad": True}, topic=topic, key="a")
        await publish_event("step", data={"n": "a2"}, topic=topic, key="a")
        await publish_event("step", data={"n": "b1"}, topic=topic, key="b")

    with pytest.raises(RelayError):
        await relay.relay_once()
    # a1 waits out its backoff; a2 waits behind it, b1 went.
    assert await relay.relay_once() == 0
    clock.advance(relay.backoff_max)
    with pytest.raises(RelayError):
        await relay.relay_once()
    # Parked, a1 no longer holds its key.
    assert await relay.relay_once() == 1
    await broker.join()
    assert [m["data"]["n"] for m in received.messages] == ["b1", "a2"]


async def test_an_outage_uses_up_no_attempts(flaky_shop: CoreApp, flaky: FlakyBroker) -> None:
    relay = flaky_shop.container.messaging.runtime().relay
    relay.clock = clock = StepClock()
    relay.max_attempts = 2
    flaky.down = True
    async with flaky_shop.session():
        await publish_event("late", data={}, topic=unique("outage"))
    for _ in range(4):
        clock.advance(relay.backoff_max)
        with pytest.raises(RelayError):
            await relay.relay_once()
    [row] = await _rows(flaky_shop)
    assert (row.status, row.attempts) == ("pending", 4)
    flaky.down = False
    clock.advance(relay.backoff_max)
    assert await relay.relay_once() == 1


async def test_a_batch_full_of_held_rows_does_not_hide_the_other_keys(shop: CoreApp) -> None:
    topic = unique("window")
    relay = shop.container.messaging.runtime().relay
    relay.clock = StepClock()
    relay.batch_size = 2
    broker = refusing(shop, ValueError)
    received = collect(shop, topic)
    async with shop.session():
        await publish_event("step", data={"n": "a1", "bad": True}, topic=topic, key="a")
        for n in ("a2", "a3", "a4"):
            await publish_event("step", data={"n": n}, topic=topic, key="a")
        await publish_event("step", data={"n": "b1"}, topic=topic, key="b")

    with pytest.raises(RelayError):
        await relay.relay_once()  # a1 fails; a2 waits behind it in the same pass
    assert await relay.relay_once() == 1
    await broker.join()
    assert [m["data"]["n"] for m in received.messages] == ["b1"]
