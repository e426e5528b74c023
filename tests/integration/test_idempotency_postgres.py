"""Idempotency keys on PostgreSQL: the database store's contract, and over HTTP a retried POST
is one row, one outbox row and one delivered event, however the retries arrive."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from starlette.requests import Request

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.adapters.sqlalchemy.database import SqlAlchemyDatabase
from core.adapters.sqlalchemy.idempotency import SqlAlchemyIdempotencyStore
from core.declarations import declarations
from core.idempotency.models import IdempotencyRecord
from core.messaging import Event, OutboxMessage, consumer, idempotent, on_event, publish_event
from core.ports.idempotency import IdempotencyStore
from core.testing import IdempotencyStoreContract, test_settings
from core.testing.contracts.idempotency import Units
from tests import services
from tests.unit.test_idempotency_store import session_units

pytestmark = pytest.mark.postgres

TOPIC = f"core-idem-{uuid.uuid4().hex[:8]}"


class PgOrder(Model):
    __tablename__ = "idem_pg_orders"

    id: Mapped[int] = Field.pk()
    item: Mapped[str] = Field.string(max_length=100)
    quantity: Mapped[int] = Field.integer()


class OrderIn(BaseModel):
    item: str
    quantity: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item: str
    quantity: int


class Gate:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()


GATE = Gate()
handled: list[int] = []
delivered = asyncio.Event()


class OrderViewSet(ModelViewSet):
    """Every create writes its row and an `order.created` event in the request's transaction."""

    model = PgOrder
    input_schema = OrderIn
    output_schema = OrderOut

    async def perform_create(self, db: Any, data: dict[str, Any]) -> Any:
        order = await super().perform_create(db, data)
        await publish_event("order.created", data={"id": order.id}, topic=TOPIC)
        return order

    @action(methods=["POST"], detail=False, idempotent=True, status_code=201)
    async def held(self, request: Request, db: Any, **kwargs: Any) -> Any:
        order = await PgOrder.objects.using(db).create(item="held", quantity=1)
        await publish_event("order.created", data={"id": order.id}, topic=TOPIC)
        GATE.started.set()
        await GATE.go.wait()  # released once the duplicate is claiming the key
        return {"id": order.id}


class PlainOrderViewSet(ModelViewSet):
    """The framework's own create (INSERT ... RETURNING, no instance)."""

    model = PgOrder
    input_schema = OrderIn
    output_schema = OrderOut


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_idempotency")
    yield url
    await services.drop_database(postgres_url, url)


class TestPostgresIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    async def database(self, database_url: str) -> AsyncIterator[SqlAlchemyDatabase]:
        database = SqlAlchemyDatabase(database_url)
        await database.create_all(IdempotencyRecord.metadata)
        yield database
        await database.dispose()

    @pytest.fixture
    async def store(self, database: SqlAlchemyDatabase) -> AsyncIterator[IdempotencyStore]:
        store = SqlAlchemyIdempotencyStore(database.engine)
        yield store
        await store.close()

    @pytest.fixture
    def units(self, database: SqlAlchemyDatabase) -> Units:
        return session_units(database)


@pytest.fixture(autouse=True)
def _declared() -> Iterator[None]:
    global GATE, delivered
    GATE = Gate()
    delivered = asyncio.Event()  # each test's own: an Event binds to the loop that waits on it
    saved = declarations().snapshot()

    @consumer(f"core-idem-{uuid.uuid4().hex[:8]}", topics=[TOPIC])
    class OrderEvents:
        @on_event("order.created")
        @idempotent
        async def on_order_created(self, event: Event, db: Any) -> None:
            handled.append(event.data["id"])
            delivered.set()

    handled.clear()
    yield
    declarations().restore(saved)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[CoreApp]:
    router = AutoRouter(prefix="/api")
    router.register("orders", OrderViewSet)
    router.register("plain", PlainOrderViewSet, basename="plain")
    application = CoreApp(
        settings=test_settings(
            database_url=database_url,
            idempotency_store="database",
            idempotency_wait_seconds=10,
            outbox_poll_interval=0.05,
        ),
        routers=[router],
    )
    await application.create_all()
    async with application.lifespan():
        yield application
    await application.container.database.database().dispose()


@pytest.fixture
async def client(app: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def rows(app: CoreApp) -> tuple[int, int, int]:
    """Orders, outbox rows and idempotency keys in the database."""
    async with app.session() as db:
        return (
            await PgOrder.objects.using(db).count(),
            await OutboxMessage.objects.using(db).count(),
            await IdempotencyRecord.objects.using(db).count(),
        )


async def handled_count(expected: int) -> list[int]:
    async with asyncio.timeout(20):
        while len(handled) < expected:  # the relay and the consumer run in the background
            delivered.clear()
            await delivered.wait()
    return handled


async def test_a_retried_post_is_one_row_one_outbox_row_and_the_same_response(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"item": "book", "quantity": 2}

    first = await client.post("/api/orders/", json=body, headers=headers)
    retries = [await client.post("/api/orders/", json=body, headers=headers) for _ in range(3)]

    assert first.status_code == 201, first.text
    for retry in retries:
        assert retry.status_code == 201
        assert retry.content == first.content
        assert retry.headers["idempotent-replayed"] == "true"
    assert await rows(app) == (1, 1, 1)
    assert await handled_count(1) == [first.json()["id"]]


async def test_with_an_idempotent_consumer_a_redelivered_event_is_handled_once(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"item": "pen", "quantity": 1}
    created = await client.post("/api/orders/", json=body, headers=headers)
    await client.post("/api/orders/", json=body, headers=headers)
    await handled_count(1)

    # The relay sends the row again (a crash after publishing, before marking it sent).
    async with app.session() as db:
        await db.execute(text("UPDATE core_outbox SET status = 'pending', sent_at = NULL"))
    await app.container.messaging.runtime().relay.flush()
    await asyncio.sleep(0.2)  # let a second delivery reach the consumer, if it were to

    assert handled == [created.json()["id"]], "one row, one event handled"
    assert (await rows(app))[:2] == (1, 1)


async def test_the_same_key_with_another_body_is_422_and_writes_nothing(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    await client.post("/api/orders/", json={"item": "cup", "quantity": 1}, headers=headers)

    other = await client.post("/api/orders/", json={"item": "cup", "quantity": 9}, headers=headers)

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_mismatch"
    assert await rows(app) == (1, 1, 1)


async def test_a_concurrent_duplicate_waits_for_the_first_and_writes_nothing(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    keys = app.container.idempotency.keys()
    store = keys.store
    claims = 0

    class Watching:
        transactional = store.transactional

        async def claim(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal claims
            claims += 1
            if claims == 2:
                GATE.go.set()  # the duplicate is claiming: let the first one commit
            return await store.claim(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    keys.store = Watching()  # type: ignore[assignment]
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = asyncio.create_task(client.post("/api/orders/held/", headers=headers))
    await GATE.started.wait()
    second = await client.post("/api/orders/held/", headers=headers)
    done = await first

    assert done.status_code == second.status_code == 201
    assert second.content == done.content
    assert second.headers["idempotent-replayed"] == "true"
    assert await rows(app) == (1, 1, 1)


async def test_a_duplicate_past_the_wait_is_409_and_never_a_second_row(
    app: CoreApp, client: httpx.AsyncClient
) -> None:
    app.container.idempotency.keys().wait = 0.05
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = asyncio.create_task(client.post("/api/orders/held/", headers=headers))
    await GATE.started.wait()
    busy = await client.post("/api/orders/held/", headers=headers)
    GATE.go.set()
    done = await first

    assert done.status_code == 201
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert "retry-after" in busy.headers
    assert await rows(app) == (1, 1, 1)


async def test_a_burst_of_one_key_writes_one_row(app: CoreApp, client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"item": "lamp", "quantity": 3}

    answers = await asyncio.gather(
        *(client.post("/api/plain/", json=body, headers=headers) for _ in range(10))
    )

    assert {a.status_code for a in answers} <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    assert len({a.content for a in created}) == 1, "every 201 is the same answer"
    assert sum("idempotent-replayed" not in a.headers for a in created) == 1
    assert (await rows(app))[0] == 1, "one write, never two"
