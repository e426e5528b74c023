"""Fixtures of the messaging tests: the shop app per test, a recording consumer, a flaky broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import CoreApp
from core.adapters.memory.broker import InMemoryEventBroker
from core.declarations import Declarations
from core.errors import BrokerUnavailableError
from core.ports.broker import Handler, Message
from tests.unit.messaging.shop import OrderEventsConsumer, build_app


@pytest.fixture(autouse=True)
def _declarations(isolated_declarations: Declarations) -> Declarations:
    """Consumers and events a test declares are forgotten after it (declarations are
    process-wide)."""
    OrderEventsConsumer.handled = []
    return isolated_declarations


@pytest.fixture(params=["memory", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every outbox test runs on the in-memory database and on a SQLite file."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite+aiosqlite:///{tmp_path}/messaging.db"


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[CoreApp]:
    app = build_app(database_url=database_url)
    async with app.lifespan():
        await app.create_all()
        yield app


@pytest.fixture
async def client(shop: CoreApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shop), base_url="http://testserver"
    ) as http:
        yield http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Collector:
    """A broker handler that keeps what it receives and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()


class FlakyBroker:
    """An in-memory broker whose publish fails with BrokerUnavailableError while `down`."""

    def __init__(self) -> None:
        self.inner = InMemoryEventBroker()
        self.down = False
        self.refused = 0
        self._refusal = asyncio.Event()

    @property
    def running(self) -> bool:
        return self.inner.running

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def join(self) -> None:
        await self.inner.join()

    async def wait_for_refusals(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while self.refused < count:
                self._refusal.clear()
                await self._refusal.wait()

    def subscribe(self, topics: list[str], handler: Handler, *, group: str) -> None:
        self.inner.subscribe(topics, handler, group=group)

    async def publish(
        self,
        message: Message,
        *,
        topic: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.down:
            self.refused += 1
            self._refusal.set()
            raise BrokerUnavailableError("the broker is down (test)")
        await self.inner.publish(message, topic=topic, key=key, headers=headers)


def collect(app: CoreApp, topic: str, group: str | None = None) -> Collector:
    """Subscribe a Collector to `topic` on the app's broker (before the lifespan starts)."""
    collector = Collector()
    broker: Any = app.container.messaging.broker()
    broker.subscribe([topic], collector, group=group or unique("collector"))
    return collector
