"""InMemoryEventBroker: the broker contract, its own guarantees, and MESSAGE_BROKER selection."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from core.adapters.memory.broker import InMemoryEventBroker
from core.containers import build_container
from core.errors import ConfigurationError, MissingDependencyError
from core.ports.broker import EventBroker, Message
from core.settings import Settings
from core.testing import BrokerContract, Inbox


class TestInMemoryBrokerContract(BrokerContract):
    timeout = 5.0

    def create_broker(self, *, max_redeliveries: int = 3) -> EventBroker:
        return InMemoryEventBroker(max_redeliveries=max_redeliveries)

    async def settle(self, broker: EventBroker) -> None:
        assert isinstance(broker, InMemoryEventBroker)
        await broker.join()


@pytest.fixture
async def broker() -> Any:
    broker = InMemoryEventBroker(max_redeliveries=1)
    yield broker
    await broker.stop()


async def test_subscribers_of_a_group_take_turns(broker: InMemoryEventBroker) -> None:
    first, second = Inbox(), Inbox()
    broker.subscribe(["orders"], first, group="billing")
    broker.subscribe(["orders"], second, group="billing")
    await broker.start()

    for n in range(4):
        await broker.publish({"n": n}, topic="orders")
    await broker.join()

    assert [m["n"] for m in first.messages] == [0, 2]
    assert [m["n"] for m in second.messages] == [1, 3]


async def test_a_failed_message_goes_to_the_next_subscriber_of_the_group(
    broker: InMemoryEventBroker,
) -> None:
    failing, healthy = Inbox(poison=frozenset({0})), Inbox()
    broker.subscribe(["orders"], failing, group="billing")
    broker.subscribe(["orders"], healthy, group="billing")
    await broker.start()

    await broker.publish({"n": 0}, topic="orders")
    await broker.join()

    assert failing.attempts[0] == 1
    assert healthy.messages == [{"n": 0}]


async def test_publish_before_start_is_buffered_until_start(broker: InMemoryEventBroker) -> None:
    inbox = Inbox()
    broker.subscribe(["orders"], inbox, group="billing")

    await broker.publish({"n": 1}, topic="orders")
    assert inbox.messages == []
    with pytest.raises(RuntimeError, match="started broker"):
        await broker.join()

    await broker.start()
    await broker.join()
    assert inbox.messages == [{"n": 1}]


async def test_messages_queued_at_stop_are_delivered_after_a_restart(
    broker: InMemoryEventBroker,
) -> None:
    inbox = Inbox()
    broker.subscribe(["orders"], inbox, group="billing")
    await broker.start()
    await broker.stop()

    await broker.publish({"n": 1}, topic="orders")
    await broker.start()
    await broker.join()

    assert inbox.messages == [{"n": 1}]


async def test_a_message_given_up_is_kept_as_a_dead_letter(broker: InMemoryEventBroker) -> None:
    inbox = Inbox(poison=frozenset({1}))
    broker.subscribe(["orders"], inbox, group="billing")
    await broker.start()

    await broker.publish({"n": 1}, topic="orders", key="k", headers={"event": "order.created"})
    await broker.join()

    [dead] = broker.dead_letters
    assert (dead.topic, dead.group, dead.message, dead.attempts) == (
        "orders",
        "billing",
        {"n": 1},
        2,
    )
    assert (dead.key, dead.headers) == ("k", {"event": "order.created"})
    assert isinstance(dead.error, RuntimeError)


async def test_each_delivery_gets_its_own_copy(broker: InMemoryEventBroker) -> None:
    seen: list[Message] = []

    async def mutate(message: Message) -> None:
        message["items"].append("changed")
        seen.append(message)

    broker.subscribe(["orders"], mutate, group="a")
    broker.subscribe(["orders"], mutate, group="b")
    await broker.start()
    published = {"items": ["original"]}

    await broker.publish(published, topic="orders")
    await broker.join()

    assert published == {"items": ["original"]}
    assert seen == [{"items": ["original", "changed"]}] * 2


async def test_a_subscriber_added_while_running_is_served(broker: InMemoryEventBroker) -> None:
    inbox = Inbox()
    await broker.start()

    broker.subscribe(["orders"], inbox, group="late")
    await broker.publish({"n": 1}, topic="orders")
    await broker.join()

    assert inbox.messages == [{"n": 1}]


async def test_join_returns_at_once_when_idle(broker: InMemoryEventBroker) -> None:
    await broker.start()

    await asyncio.wait_for(broker.join(), timeout=1)


def test_negative_redeliveries_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_redeliveries"):
        InMemoryEventBroker(max_redeliveries=-1)


# -- MESSAGE_BROKER picks the adapter (nothing connects: providers only build objects) ----------


@pytest.mark.parametrize(
    ("message_broker", "module", "class_name"),
    [
        ("memory", "core.adapters.memory.broker", "InMemoryEventBroker"),
        ("kafka", "core.adapters.faststream.kafka", "KafkaEventBroker"),
        ("redis", "core.adapters.faststream.redis", "RedisEventBroker"),
        ("rabbitmq", "core.adapters.faststream.rabbitmq", "RabbitMqEventBroker"),
    ],
)
def test_message_broker_setting_selects_the_adapter(
    message_broker: str, module: str, class_name: str
) -> None:
    settings = Settings(
        message_broker=message_broker,
        kafka_bootstrap_servers="kafka.invalid:9092",
        redis_url="redis://redis.invalid:6379/0",
        rabbitmq_url="amqp://guest:guest@rabbitmq.invalid:5672/",
    )

    broker = build_container(settings).messaging.broker()

    assert type(broker).__name__ == class_name
    assert type(broker).__module__ == module
    assert isinstance(broker, EventBroker)


def test_the_container_passes_the_settings_to_the_adapter() -> None:
    container = build_container(
        Settings(message_broker="kafka", kafka_bootstrap_servers="k1:9092,k2:9092", app_name="shop")
    )

    broker = container.messaging.broker()

    assert (broker.bootstrap_servers, broker.client_id) == ("k1:9092,k2:9092", "shop")
    assert container.messaging.broker() is broker, "one broker per container"


def test_a_selected_broker_without_its_extra_raises_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes `import` raise ImportError, as a missing package would.
    monkeypatch.setitem(sys.modules, "core.adapters.faststream.rabbitmq", None)
    container = build_container(Settings(message_broker="rabbitmq"))

    with pytest.raises(MissingDependencyError, match=r"core-framework\[rabbitmq\]"):
        container.messaging.broker()
