"""Messaging through the public API on real Kafka (Tansu), Redis and RabbitMQ: a group shares the
events of its topic, each handled once; a failing handler is retried, then dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from core import CoreApp
from core.adapters.faststream.kafka import KafkaEventBroker
from core.adapters.faststream.rabbitmq import RabbitMqEventBroker
from core.adapters.faststream.redis import RedisEventBroker
from core.context import use_container
from core.messaging import (
    ConsumerSelection,
    Event,
    consumer,
    flush_events,
    on_event,
    publish_event,
)
from core.ports.broker import EventBroker
from core.testing import isolated_declarations, test_settings
from tests.integration import test_brokers

WITHIN = 30.0  # seconds: Tansu's group joins take a few


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _declarations() -> Iterator[None]:
    with isolated_declarations():
        yield


@pytest.fixture(
    params=[
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    kind = str(request.param)
    return kind, str(request.getfixturevalue(f"{kind}_url"))


def make_broker(kind: str, url: str) -> EventBroker:
    """The adapter the container would build, tuned for quick tests (see test_brokers.py)."""
    if kind == "kafka":
        return KafkaEventBroker(url, consumer_options=test_brokers.FAST_KAFKA_CONSUMER)
    if kind == "redis":
        return RedisEventBroker(url, redelivery_after_ms=300, polling_interval_ms=50)
    return RabbitMqEventBroker(url)


def make_app(kind: str, url: str, *groups: str) -> CoreApp:
    """A service running `groups` in-process on the real broker, on an in-memory database."""
    settings: dict[str, Any] = {
        "message_broker": kind,
        "consumers_in_process": True,
        "consumer_retry_backoff": 0.05,
        "outbox_relay_in_process": False,
    }
    settings[
        {"kafka": "kafka_bootstrap_servers", "redis": "redis_url"}.get(kind, "rabbitmq_url")
    ] = url
    app = CoreApp(settings=test_settings(**settings))
    app.container.messaging.broker.override(make_broker(kind, url))
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset(groups))
    return app


class Seen:
    """What a group's handlers received, and a way to wait for it."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WITHIN):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_a_group_shares_its_events_each_handled_once(server: tuple[str, str]) -> None:
    kind, url = server
    topic, group = unique("core-msg"), unique("billing")
    if kind == "kafka":
        # Two partitions, so both members of the group get a share.
        await KafkaEventBroker(url).create_topic(topic, partitions=2)
    seen = Seen()

    @consumer(group, topics=[topic])
    class Billing:
        @on_event("invoice.requested")
        async def handle(self, event: Event, db: Any) -> None:
            seen.add(event)

    members = [make_app(kind, url, group) for _ in range(2)]
    async with AsyncExitStack() as stack:
        for member in members:
            await stack.enter_async_context(member.lifespan())
        producer = members[0]

        with use_container(producer.container):
            direct = [
                await publish_event("invoice.requested", data={"n": n}, topic=topic, key=str(n))
                for n in range(4)
            ]
            async with producer.session():
                relayed = [
                    await publish_event("invoice.requested", data={"n": n}, topic=topic, key=str(n))
                    for n in range(4, 8)
                ]
        assert await flush_events(producer) == 4

        await seen.wait_for(8)
        await asyncio.sleep(0.5)  # time for a wrongly duplicated delivery to show up
    assert sorted(str(e.id) for e in seen.events) == sorted(str(e.id) for e in direct + relayed)
    assert sorted(e.data["n"] for e in seen.events) == list(range(8))


async def test_a_failing_handler_is_retried_then_dead_lettered(server: tuple[str, str]) -> None:
    kind, url = server
    topic, group = unique("core-msg"), unique("payments")
    attempts: list[int] = []
    letters = Seen()

    @consumer(group, topics=[topic], max_retries=2)
    class Payments:
        @on_event("payment.requested")
        async def handle(self, event: Event, db: Any) -> None:
            attempts.append(1)
            raise RuntimeError("card declined")

    @consumer(f"{group}-dlq", topics=[f"{topic}.dlq"])
    class DeadLetters:
        @on_event("payment.requested")
        async def handle(self, event: Event, db: Any) -> None:
            letters.add(event)

    app = make_app(kind, url, group, f"{group}-dlq")
    async with app.lifespan():
        with use_container(app.container):
            sent = await publish_event("payment.requested", data={"id": 9}, topic=topic)

        await letters.wait_for(1)
    [letter] = letters.events
    assert (letter.id, letter.data) == (sent.id, {"id": 9})
    assert letter.headers["dead_letter_error"] == "RuntimeError: card declined"
    assert letter.headers["dead_letter_attempts"] == "3"
    assert letter.headers["dead_letter_group"] == group
    assert len(attempts) == 3
