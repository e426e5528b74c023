"""The outbox on PostgreSQL: concurrent relays never send a row twice (SKIP LOCKED), and the fault
test — the broker down while requests emit events, then back: every event arrives exactly once
to the idempotent handler, and a rolled-back request emits none."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.adapters.faststream.kafka import KafkaEventBroker
from core.context import use_container
from core.declarations import declarations
from core.errors import BrokerUnavailableError, ValidationFailedError
from core.messaging import (
    ConsumerSelection,
    Event,
    OutboxMessage,
    already_processed,
    consumer,
    event,
    on_event,
    publish_event,
)
from core.testing import test_settings
from tests import services
from tests.integration import test_brokers

pytestmark = pytest.mark.postgres

TOPIC = f"core-fault-{uuid.uuid4().hex[:8]}"
GROUP = f"core-fault-users-{uuid.uuid4().hex[:8]}"


class FaultUser(Model):
    __tablename__ = "fault_users"

    id: Mapped[int] = Field.pk()
    email: Mapped[str] = Field.string(max_length=120)
    order_count: Mapped[int] = Field.integer(default=0)


class FaultOrder(Model):
    __tablename__ = "fault_orders"

    id: Mapped[int] = Field.pk()
    user_id: Mapped[int] = Field.integer()
    total: Mapped[float] = Field.float_()


class OrderInput(BaseModel):
    user_id: int
    total: float


class OrderOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    total: float


class OrderViewSet(ModelViewSet):
    model = FaultOrder
    input_schema = OrderInput
    output_schema = OrderOutput

    @action(methods=["POST"], detail=False)
    @event("order.created", topic=TOPIC, key="user_id")
    async def create_order(self, request: Any, db: Any, **kwargs: Any) -> Any:
        order = await FaultOrder.objects.create(**await request.json(), db=db)
        return OrderOutput.model_validate(order).model_dump()

    @action(methods=["POST"], detail=False)
    @event("order.created", topic=TOPIC, key="user_id")
    async def create_then_fail(self, request: Any, db: Any, **kwargs: Any) -> Any:
        await FaultOrder.objects.create(**await request.json(), db=db)
        await publish_event("order.created", data={"user_id": 1}, topic=TOPIC)
        raise ValidationFailedError("refused after writing the order and an event")


deliveries: list[str] = []
delivered = asyncio.Event()


async def wait_for_deliveries(count: int, *, distinct: bool = False) -> None:
    async with asyncio.timeout(30):
        while len(set(deliveries) if distinct else deliveries) < count:
            delivered.clear()
            await delivered.wait()


async def outbox_until(app: CoreApp, *, count: int = 1, **lookups: Any) -> None:
    """Wait until `count` outbox rows match `lookups` (the relays run in the background)."""
    async with asyncio.timeout(30):
        while True:
            async with app.session() as db:
                if await OutboxMessage.objects.using(db).filter(**lookups).count() >= count:
                    return
            await asyncio.sleep(0.05)  # a database has no change notification to wait on


@pytest.fixture(autouse=True)
def _declarations() -> Iterator[None]:
    saved = declarations().snapshot()

    @consumer(GROUP, topics=[TOPIC])
    class OrderEvents:
        """The spec's user-service consumer, made idempotent."""

        @on_event("order.created")
        async def on_order_created(self, event: Event, db: Any) -> None:
            deliveries.append(str(event.id))
            delivered.set()
            if await already_processed(event, db):
                return
            user = await FaultUser.objects.using(db).get(id=event.data["user_id"])
            user.order_count += 1
            await user.save(db)

    deliveries.clear()
    yield
    declarations().restore(saved)


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_outbox")
    yield url
    await services.drop_database(postgres_url, url)


def _settings(database_url: str, kafka_url: str = "127.0.0.1:1", **values: Any) -> Any:
    return test_settings(
        database_url=database_url,
        message_broker="kafka",
        kafka_bootstrap_servers=kafka_url,
        outbox_poll_interval=0.2,
        outbox_retry_backoff_max=0.3,
        consumer_retry_backoff=0.05,
        **values,
    )


class Recording:
    """A broker that keeps the ids of the events it is asked to publish, and checks that no two
    relays publish at the same time."""

    active: set[int] = set()  # the brokers (relays) publishing right now
    overlapped = False

    def __init__(self) -> None:
        self.published: list[str] = []
        self.running = False
        self.in_flight = 0
        self.first = asyncio.Event()

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def subscribe(self, topics: list[str], handler: Any, *, group: str) -> None:
        raise AssertionError("nothing consumes here")

    async def publish(
        self,
        message: Mapping[str, Any],
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.in_flight += 1
        Recording.active.add(id(self))
        Recording.overlapped |= len(Recording.active) > 1
        try:
            await asyncio.sleep(0)  # let the other relay run meanwhile
            self.published.append(str(message["id"]))
            self.first.set()
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                Recording.active.discard(id(self))


async def test_concurrent_relays_take_turns_and_send_no_row_twice(database_url: str) -> None:
    relays = [
        CoreApp(
            settings=_settings(database_url, outbox_batch_size=25, outbox_relay_in_process=False)
        )
        for _ in range(2)
    ]
    brokers = [Recording(), Recording()]
    for app, broker in zip(relays, brokers, strict=True):
        app.container.messaging.broker.override(broker)
    await relays[0].create_all()
    emitted: list[str] = []
    with use_container(relays[0].container):
        for _ in range(10):
            async with relays[0].session():
                for n in range(20):
                    emitted.append(str((await publish_event("tick", data=n, topic="t")).id))

    async def passes(app: CoreApp) -> int:
        relay = app.container.messaging.runtime().relay
        total = 0
        while sent := await relay.relay_once():
            total += sent
        return total

    sent = await asyncio.gather(*(passes(app) for app in relays))

    published = brokers[0].published + brokers[1].published
    assert sum(sent) == 200
    assert sorted(published) == sorted(emitted), "every row sent once, by one relay or the other"
    assert all(brokers[i].published for i in (0, 1)), "both relays took turns"
    assert not Recording.overlapped, "one relay publishes at a time"
    for app in relays:
        await app.container.database.database().dispose()


async def _advisory_holders(database_url: str) -> list[int]:
    import asyncpg

    from core.messaging._sql import RELAY_LOCK

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND objid = $1",
            RELAY_LOCK & 0xFFFFFFFF,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _terminate(database_url: str, pids: list[int]) -> None:
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for pid in pids:
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


class Hanging(Recording):
    """A broker whose publish never returns: a relay stuck (or dead) in the middle of a pass."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def publish(self, message: Mapping[str, Any], **options: Any) -> None:
        self.entered.set()
        await asyncio.Event().wait()


async def test_when_the_active_relay_dies_another_takes_over(database_url: str) -> None:
    apps = [
        CoreApp(settings=_settings(database_url, outbox_relay_in_process=True)) for _ in range(2)
    ]
    stuck, standby = Hanging(), Recording()
    apps[0].container.messaging.broker.override(stuck)
    apps[1].container.messaging.broker.override(standby)
    await apps[0].create_all()
    async with apps[0].lifespan():
        with use_container(apps[0].container):
            async with apps[0].session():
                event_ = await publish_event("tick", data=1, topic="t", key="k")
        await asyncio.wait_for(stuck.entered.wait(), 30)
        async with apps[1].lifespan():
            await asyncio.sleep(1)  # the standby relay polls meanwhile, and waits its turn
            assert standby.published == []
            # The active relay's process dies: the server ends its connection, and its lock.
            holders = await _advisory_holders(database_url)
            assert len(holders) == 1
            await _terminate(database_url, holders)
            await asyncio.wait_for(standby.first.wait(), 30)
    assert standby.published == [str(event_.id)]


@pytest.mark.kafka
async def test_a_broker_outage_loses_nothing_and_duplicates_nothing(
    database_url: str, kafka_url: str
) -> None:
    router = AutoRouter(prefix="/api/v1")
    router.register("/orders", OrderViewSet)
    # Two API processes (two relays, sharing the outbox through SKIP LOCKED), their broker
    # pointing at a port where nothing listens.
    down = [
        KafkaEventBroker(
            f"127.0.0.1:{services.free_port()}", broker_options={"request_timeout_ms": 1_000}
        )
        for _ in range(2)
    ]
    apis = [CoreApp(settings=_settings(database_url), routers=[router]) for _ in range(2)]
    for api, broker in zip(apis, down, strict=True):
        api.container.messaging.broker.override(broker)
        api.container.messaging.runtime().relay.backoff_base = 0.05
    # The worker process only consumes: a relay of its own would reach the live broker and send
    # rows the API processes' relays must still hold while theirs is down.
    worker = CoreApp(
        settings=_settings(
            database_url, kafka_url, consumers_in_process=True, outbox_relay_in_process=False
        )
    )
    worker.container.messaging.broker.override(
        KafkaEventBroker(kafka_url, consumer_options=test_brokers.FAST_KAFKA_CONSUMER)
    )
    worker.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({GROUP}))
    await worker.create_all()
    async with worker.session() as db:
        await FaultUser.objects.create(id=1, email="ann@x.io", db=db)
    await KafkaEventBroker(kafka_url).create_topic(TOPIC, partitions=2)
    up = [KafkaEventBroker(kafka_url) for _ in apis]

    async with apis[0].lifespan(), apis[1].lifespan(), worker.lifespan():
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api")
            for api in apis
        ]
        for n in range(10):
            response = await clients[n % 2].post(
                "/api/v1/orders/create_order/", json={"user_id": 1, "total": n}
            )
            assert response.status_code == 200, response.text
        failed = await clients[0].post(
            "/api/v1/orders/create_then_fail/", json={"user_id": 1, "total": 99}
        )
        assert failed.status_code == 400
        for client in clients:
            await client.aclose()

        async with apis[0].session() as db:
            assert await OutboxMessage.objects.using(db).filter(status="pending").count() == 10
        await outbox_until(apis[0], attempts__gt=0)  # the relays tried, and failed
        async with apis[0].session() as db:
            emitted = sorted(str(r.event_id) for r in await OutboxMessage.objects.using(db).all())

        # The broker is back.
        for api, broker in zip(apis, up, strict=True):
            api.container.messaging.broker.reset_override()
            api.container.messaging.broker.override(broker)

        await wait_for_deliveries(10, distinct=True)
        await outbox_until(apis[0], status="sent", count=10)
        # Every event arrived, none from the rolled-back request. (Kafka may redeliver one after a
        # rebalance: at-least-once, absorbed by the idempotent handler, checked below.)
        assert sorted(set(deliveries)) == emitted
        async with apis[0].session() as db:
            assert await FaultOrder.objects.using(db).count() == 10

        # A redelivery (as after a crash between publish and mark-sent) changes nothing.
        async with apis[0].session() as db:
            first = await OutboxMessage.objects.using(db).order_by("id").first()
        assert first is not None
        before = len(deliveries)
        await up[0].publish(first.payload, topic=TOPIC, key="1", headers=first.headers)
        await wait_for_deliveries(before + 1)

    async with worker.session() as db:
        assert (await FaultUser.objects.using(db).get(id=1)).order_count == 10
    for broker in up:
        await broker.stop()


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    kind = str(request.param)
    return kind, str(request.getfixturevalue(f"{kind}_url"))


async def test_two_relays_keep_every_keys_order(database_url: str, server: tuple[str, str]) -> None:
    from tests.integration import test_messaging_brokers as brokers

    kind, url = server
    topic, group = f"core-order-{uuid.uuid4().hex[:8]}", f"core-order-{uuid.uuid4().hex[:8]}"
    received: dict[str, list[int]] = {}
    arrived = asyncio.Event()

    @consumer(group, topics=[topic])
    class Sequences:
        @on_event("step")
        async def on_step(self, event: Event) -> None:
            received.setdefault(event.data["key"], []).append(event.data["n"])
            arrived.set()

    address = {"kafka": "kafka_bootstrap_servers", "redis": "redis_url"}.get(kind, "rabbitmq_url")
    relays = [
        CoreApp(
            settings=test_settings(
                database_url=database_url,
                message_broker=kind,
                outbox_batch_size=7,
                **{address: url},
            )
        )
        for _ in range(2)
    ]
    for app in relays:
        app.container.messaging.broker.override(brokers.make_broker(kind, url))
    reader = brokers.make_app(kind, url, group)
    await relays[0].create_all()
    keys, per_key = [f"k{n}" for n in range(5)], 30
    async with reader.lifespan(), relays[0].lifespan(), relays[1].lifespan():
        for n in range(per_key):
            for index, key in enumerate(keys):
                app = relays[(n + index) % 2]
                with use_container(app.container):
                    async with app.session():
                        await publish_event("step", data={"key": key, "n": n}, topic=topic, key=key)
        async with asyncio.timeout(60):
            while sum(map(len, received.values())) < len(keys) * per_key:
                arrived.clear()
                await arrived.wait()
    assert received == {key: list(range(per_key)) for key in keys}


class Picky(Recording):
    """A broker that refuses every event whose data says `bad`, as one refuses a message that
    is too large, and records the rest."""

    async def publish(self, message: Mapping[str, Any], **options: Any) -> None:
        if message["data"].get("bad"):
            raise BrokerUnavailableError("message too large (test)")
        self.published.append(str(message["data"]["n"]))
        self.first.set()


async def test_unsendable_rows_delay_nobody_and_are_parked(database_url: str) -> None:
    app = CoreApp(settings=_settings(database_url, outbox_max_attempts=3))
    broker = Picky()
    app.container.messaging.broker.override(broker)
    relay = app.container.messaging.runtime().relay
    # A long first backoff, on a clock the test can move: the good rows must all go before the
    # bad ones are even tried again.
    relay.backoff_base, relay.backoff_max = 60.0, 120.0
    offset = timedelta(0)
    relay.clock = lambda: datetime.now(UTC) + offset
    await app.create_all()
    with use_container(app.container):
        async with app.session():
            for n in range(100):
                await publish_event("bad", data={"n": n, "bad": True}, topic="t", key=f"b{n}")
            for n in range(20):
                await publish_event("good", data={"n": n}, topic="t", key=f"g{n % 4}")

    async with app.lifespan():
        async with asyncio.timeout(30):
            while len(broker.published) < 20:
                broker.first.clear()
                await broker.first.wait()
        async with app.session() as db:
            rows = OutboxMessage.objects.using(db).filter(status="pending")
            assert await rows.filter(attempts=1).count() == 100, "each bad row tried once"
        for attempts in (1, 2):  # two backoffs later, the bad rows are parked
            offset += timedelta(seconds=relay.backoff(attempts) + 1)
            app.container.messaging.runtime().outbox.notify()
            await outbox_until(app, count=100, attempts=attempts + 1)
    async with app.session() as db:
        failed = await OutboxMessage.objects.using(db).filter(status="failed").all()
    assert len(failed) == 100
    assert {row.last_error for row in failed} == {
        "BrokerUnavailableError: message too large (test)"
    }
    assert sorted(map(int, broker.published)) == list(range(20))
    await app.container.database.database().dispose()


async def test_killing_the_active_relay_process_hands_its_work_to_another(
    database_url: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess

    from tests.migration_roundtrip import core_command

    # A "Redis" that accepts connections and never answers: the relay process's publish hangs
    # there, in the middle of its pass, holding the turn.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    writer = CoreApp(settings=_settings(database_url, outbox_relay_in_process=False))
    writer.container.messaging.broker.override(Recording())
    await writer.create_all()
    with use_container(writer.container):
        async with writer.session():
            sent = await publish_event("tick", data=1, topic="t", key="k")
    await writer.container.database.database().dispose()

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text(
        "import core.messaging\nfrom core import CoreApp\n\napp = CoreApp()\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MESSAGE_BROKER": "redis",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "OUTBOX_POLL_INTERVAL": "0.2",
    }
    process = await asyncio.create_subprocess_exec(
        *core_command(),
        "outbox",
        "relay",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    standby = CoreApp(settings=_settings(database_url, outbox_relay_in_process=True))
    broker = Recording()
    standby.container.messaging.broker.override(broker)
    try:
        async with asyncio.timeout(30):
            # Another process's pass holds the lock: there is no event to wait on.
            while not await _advisory_holders(database_url):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        async with standby.lifespan():
            await asyncio.sleep(1)  # the standby relay polls meanwhile, and waits its turn
            assert broker.published == [], "one relay at a time"
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(broker.first.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        server.close()
    assert broker.published == [str(sent.id)]
