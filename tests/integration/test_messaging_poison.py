"""Poison messages on real Kafka (Tansu), Redis and RabbitMQ: a body that cannot be decoded or is
not an event the group handles goes to `<topic>.dlq` with its reason and is acknowledged, and
the good events behind it are handled. With a prefetch of 2 on RabbitMQ, so that a message left
unsettled would stall the queue."""

# No `from __future__ import annotations`: FastStream reads the reader's annotations at runtime.

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from faststream import Context

from core.adapters.faststream.rabbitmq import RabbitMqEventBroker
from core.context import use_container
from core.messaging import Event, consumer, on_event, publish_event
from core.testing import isolated_declarations
from tests.integration import test_messaging_brokers as brokers

WITHIN = 30.0

DEEP = b"[" * 100_000 + b"]" * 100_000
ENVELOPE = {"id": "not-a-uuid", "name": "order.created"}

# body -> what its dead letter's reason says
POISON: list[tuple[bytes, str]] = [
    (b"{not json", "JSONDecodeError"),
    (DEEP, "RecursionError"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'{"hello": "world"}', "not an event envelope"),
    (json.dumps(ENVELOPE).encode(), "not an event envelope"),
]


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


class DeadLetters:
    """Reads a dead-letter topic with FastStream itself, raw: each body and its headers."""

    def __init__(self, kind: str, url: str, topic: str) -> None:
        self.letters: list[tuple[bytes, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        group = f"reader-{uuid.uuid4().hex[:6]}"

        async def raw(message: Any) -> Any:
            return message.body

        async def read(message: Annotated[Any, Context("message")]) -> None:
            self.letters.append((message.body, dict(message.headers)))
            self.changed.set()

        if kind == "kafka":
            from faststream.kafka import KafkaBroker

            self.broker: Any = KafkaBroker(url)
            subscriber = self.broker.subscriber(
                topic, group_id=group, auto_offset_reset="earliest", decoder=raw
            )
        elif kind == "redis":
            from faststream.redis import RedisBroker, StreamSub

            self.broker = RedisBroker(url)
            subscriber = self.broker.subscriber(
                stream=StreamSub(topic, group=group, consumer="c", last_id="0"), decoder=raw
            )
        else:
            from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

            self.broker = RabbitBroker(url)
            subscriber = self.broker.subscriber(
                RabbitQueue(f"{topic}.{group}", auto_delete=True, routing_key="#"),
                RabbitExchange(topic, type=ExchangeType.TOPIC, durable=True),
                decoder=raw,
            )
        subscriber(read)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WITHIN):
            while len(self.letters) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_poison_messages_are_dead_lettered_and_the_good_ones_behind_them_handled(
    server: tuple[str, str],
) -> None:
    kind, url = server
    topic, group = brokers.unique("core-poison"), brokers.unique("shipping")
    handled: list[Any] = []
    done = asyncio.Event()

    @consumer(group, topics=[topic], max_retries=0)
    class Shipping:
        @on_event("order.created")
        async def handle(self, event: Event) -> None:
            handled.append(event.data["n"])
            if len(handled) == 3:
                done.set()

    app = brokers.make_app(kind, url, group)
    if kind == "rabbitmq":
        # Two unsettled messages would hold every slot.
        app.container.messaging.broker.override(RabbitMqEventBroker(url, prefetch_count=2))
    reader = DeadLetters(kind, url, f"{topic}.dlq")
    await reader.broker.start()
    try:
        async with app.lifespan():
            broker: Any = app.container.messaging.broker()
            with use_container(app.container):
                await publish_event("order.created", data={"n": 0}, topic=topic)
                for body, _ in POISON:
                    await broker.publish_body(body, topic=topic)
                await publish_event("order.unknown", data={"n": -1}, topic=topic)
                for n in (1, 2):
                    await publish_event("order.created", data={"n": n}, topic=topic)
            await asyncio.wait_for(done.wait(), WITHIN)
            await reader.wait_for(len(POISON) + 1)
    finally:
        await reader.broker.stop()

    assert sorted(handled) == [0, 1, 2]
    letters = reader.letters
    assert len(letters) == len(POISON) + 1

    def letter_of(body: bytes) -> dict[str, Any]:
        # Undecodable bodies go as they came; JSON objects as the same JSON. (Not in order:
        # RabbitMQ hands a consumer up to its prefetch count at once.)
        for got, headers in letters:
            if got == body or (_json(body) and _json(got) == _json(body)):
                return headers
        raise AssertionError(f"no dead letter for {body[:40]!r}")

    for body, reason in POISON:
        headers = letter_of(body)
        assert reason in headers["dead_letter_error"], headers
        assert headers["dead_letter_topic"] == topic
        assert headers["dead_letter_group"] == group
    [unknown] = [
        (body, headers) for body, headers in letters if _json(body).get("name") == "order.unknown"
    ]
    assert "no handler" in unknown[1]["dead_letter_error"]


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


@pytest.mark.redis
async def test_a_foreign_redis_stream_entry_is_dead_lettered(redis_url: str) -> None:
    from redis.asyncio import Redis

    topic, group = brokers.unique("core-poison"), brokers.unique("shipping")
    handled: list[Any] = []
    done = asyncio.Event()

    @consumer(group, topics=[topic], max_retries=0)
    class Shipping:
        @on_event("order.created")
        async def handle(self, event: Event) -> None:
            handled.append(event.data["n"])
            done.set()

    app = brokers.make_app("redis", redis_url, group)
    reader = DeadLetters("redis", redis_url, f"{topic}.dlq")
    await reader.broker.start()
    client = Redis.from_url(redis_url)
    try:
        async with app.lifespan():
            # Entries another program wrote: no `data` field, or `data` that is not JSON.
            await client.xadd(topic, {"foo": "bar", "n": "1"})
            await client.xadd(topic, {"data": b"\xff\xfe not utf-8"})
            with use_container(app.container):
                await publish_event("order.created", data={"n": 1}, topic=topic)
            await asyncio.wait_for(done.wait(), WITHIN)
            await reader.wait_for(2)
    finally:
        await reader.broker.stop()
        await client.delete(topic, f"{topic}.dlq")
        await client.aclose()
    assert handled == [1]
    (fields, first), (raw, second) = reader.letters
    assert json.loads(fields) == {"foo": "bar", "n": "1"}
    assert "not an event envelope" in first["dead_letter_error"]
    assert raw == b"\xff\xfe not utf-8"
    assert second["dead_letter_error"].startswith("JSONDecodeError")
