"""The broker contract on real Kafka (Tansu), Redis and RabbitMQ, plus each adapter's own API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from core.adapters.faststream.kafka import KafkaEventBroker
from core.adapters.faststream.rabbitmq import RabbitMqEventBroker
from core.adapters.faststream.redis import RedisEventBroker
from core.errors import BrokerUnavailableError, ConfigurationError
from core.ports.broker import EventBroker
from core.testing import BrokerContract
from tests.services import free_port

# Tansu holds every JoinGroup for about half the session timeout (3 s at aiokafka's 10 s
# default), and starts generations at 0, so aiokafka skips LeaveGroup for a member of the first
# generation and a restarted group waits for that ghost's session to expire. A short session
# makes both cheap; quick heartbeats and a short fetch wait make rebalances and deliveries prompt.
FAST_KAFKA_CONSUMER = {
    "session_timeout_ms": 2_000,
    "heartbeat_interval_ms": 300,
    "fetch_max_wait_ms": 100,
}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- the contract on each server ---------------------------------------------------------------


class TestKafkaBrokerContract(BrokerContract):
    pytestmark = pytest.mark.kafka

    @pytest.fixture(autouse=True)
    def _server(self, kafka_url: str) -> None:
        self.url = kafka_url

    def create_broker(self, *, max_redeliveries: int = 3) -> EventBroker:
        return KafkaEventBroker(
            self.url, max_redeliveries=max_redeliveries, consumer_options=FAST_KAFKA_CONSUMER
        )

    async def settle(self, broker: EventBroker) -> None:
        await asyncio.sleep(1.0)

    async def new_topic(self) -> str:
        # Two partitions, so two members of one group each get one and share the messages.
        name = await super().new_topic()
        assert await KafkaEventBroker(self.url).create_topic(name, partitions=2)
        return name


class TestRedisBrokerContract(BrokerContract):
    pytestmark = pytest.mark.redis

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def create_broker(self, *, max_redeliveries: int = 3) -> EventBroker:
        return RedisEventBroker(
            self.url,
            max_redeliveries=max_redeliveries,
            redelivery_after_ms=300,
            polling_interval_ms=50,
        )

    async def settle(self, broker: EventBroker) -> None:
        await asyncio.sleep(1.0)  # three redelivery periods


class TestRabbitMqBrokerContract(BrokerContract):
    pytestmark = pytest.mark.rabbitmq

    @pytest.fixture(autouse=True)
    def _server(self, rabbitmq_url: str) -> None:
        self.url = rabbitmq_url

    def create_broker(self, *, max_redeliveries: int = 3) -> EventBroker:
        return RabbitMqEventBroker(self.url, max_redeliveries=max_redeliveries)

    async def settle(self, broker: EventBroker) -> None:
        await asyncio.sleep(0.5)


# -- driver errors become BrokerUnavailableError -----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda port: KafkaEventBroker(
                f"127.0.0.1:{port}", broker_options={"request_timeout_ms": 2_000}
            ),
            marks=pytest.mark.kafka,
            id="kafka",
        ),
        pytest.param(
            lambda port: RedisEventBroker(f"redis://127.0.0.1:{port}/0", connect_timeout=1),
            marks=pytest.mark.redis,
            id="redis",
        ),
        pytest.param(
            lambda port: RabbitMqEventBroker(f"amqp://guest:guest@127.0.0.1:{port}/"),
            marks=pytest.mark.rabbitmq,
            id="rabbitmq",
        ),
    ],
)
async def test_an_unreachable_server_raises_broker_unavailable(make: Any) -> None:
    broker = make(free_port())  # nothing listens there

    with pytest.raises(BrokerUnavailableError):
        await broker.publish({"n": 1}, topic="orders")
    with pytest.raises(BrokerUnavailableError):
        await broker.start()
    assert not broker.running
    await broker.stop()


# -- topic administration ----------------------------------------------------------------------


@pytest.mark.kafka
async def test_kafka_creates_and_lists_topics(kafka_url: str) -> None:
    broker, name = KafkaEventBroker(kafka_url), _unique("core-admin")

    assert await broker.create_topic(name, partitions=3) is True
    assert await broker.create_topic(name, partitions=3) is False, "already there: left alone"

    topics = await broker.list_topics()
    assert name in topics
    assert topics == sorted(topics)
    assert not any(t.startswith("__") for t in topics)


@pytest.mark.kafka
async def test_kafka_refuses_an_invalid_topic(kafka_url: str) -> None:
    with pytest.raises(ConfigurationError, match="at least one partition"):
        await KafkaEventBroker(kafka_url).create_topic(_unique("core-admin"), partitions=0)


@pytest.mark.redis
async def test_redis_lists_streams_and_has_no_topic_creation(redis_url: str) -> None:
    broker, name = RedisEventBroker(redis_url), _unique("core-admin")
    await broker.publish({"n": 1}, topic=name)
    await broker.stop()

    assert name in await broker.list_topics()
    with pytest.raises(ConfigurationError, match="not applicable"):
        await broker.create_topic(name)


@pytest.mark.rabbitmq
async def test_rabbitmq_declares_exchanges_and_cannot_list_them(rabbitmq_url: str) -> None:
    broker, name = RabbitMqEventBroker(rabbitmq_url), _unique("core-admin")

    assert await broker.create_topic(name) is True
    assert await broker.create_topic(name) is False
    with pytest.raises(ConfigurationError, match="no partitions"):
        await broker.create_topic(name, partitions=3)
    with pytest.raises(ConfigurationError, match="not applicable"):
        await broker.list_topics()
