"""A Kafka cluster that cannot be reached leaves no producer behind (no server needed)."""

from __future__ import annotations

import gc
import logging

import pytest

from core.adapters.faststream.kafka import KafkaEventBroker
from core.errors import BrokerUnavailableError
from tests.services import free_port


async def test_failed_connects_leave_no_unclosed_producer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = KafkaEventBroker(f"127.0.0.1:{free_port()}", connect_timeout=1.0)
    caplog.set_level(logging.ERROR)
    with pytest.raises(BrokerUnavailableError):
        await broker.start()
    with pytest.raises(BrokerUnavailableError):
        await broker.publish({"name": "x"}, topic="t")
    await broker.stop()
    gc.collect()
    assert "Unclosed AIOKafkaProducer" not in caplog.text
