"""The EventBroker contract: one suite, written against the port, run on every adapter.

Subclass `BrokerContract`, implement `create_broker`, and (for a real server) `settle` and
`new_topic`. `tests/unit/test_memory_broker.py` runs it on the in-memory broker,
`tests/integration/test_brokers.py` on Kafka, Redis and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from core.ports.broker import EventBroker, Message

MakeBroker = Callable[..., EventBroker]


class Inbox:
    """A handler that records what it receives and lets a test wait for it."""

    def __init__(
        self,
        fail_first: int = 0,
        poison: frozenset[int] = frozenset(),
        changed: asyncio.Event | None = None,
    ) -> None:
        """Args:
        fail_first: attempts of each message that raise.
        poison: the `n`s whose every attempt raises.
        changed: set on every delivery; share one to wait on several inboxes.
        """
        self.messages: list[Message] = []
        self.attempts: Counter[int] = Counter()
        self._fail_first = fail_first
        self._poison = poison
        self._changed = changed if changed is not None else asyncio.Event()

    async def __call__(self, message: Message) -> None:
        marker = int(message["n"])
        self.attempts[marker] += 1
        self._changed.set()
        if marker in self._poison or self.attempts[marker] <= self._fail_first:
            raise RuntimeError(f"handler failure on attempt {self.attempts[marker]}")
        self.messages.append(message)

    async def wait_for(self, condition: Callable[[], bool], within: float) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_messages(self, count: int, within: float) -> None:
        await self.wait_for(lambda: len(self.messages) >= count, within)


class BrokerContract:
    """What every EventBroker must do. Each test builds fresh brokers on fresh topics."""

    #: Longest a test waits for a delivery.
    timeout: ClassVar[float] = 15.0

    def create_broker(self, *, max_redeliveries: int = 3) -> EventBroker:
        """A new, unstarted broker under test."""
        raise NotImplementedError

    async def settle(self, broker: EventBroker) -> None:
        """Wait long enough that a delivery which has not happened yet will not happen."""
        raise NotImplementedError

    async def new_topic(self) -> str:
        """A topic no other test uses (created beforehand where the technology needs it)."""
        return f"core-test-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def new_group() -> str:
        return f"core-group-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    async def make_broker(self) -> AsyncIterator[MakeBroker]:
        created: list[EventBroker] = []

        def make(**options: Any) -> EventBroker:
            broker = self.create_broker(**options)
            created.append(broker)
            return broker

        yield make
        for broker in created:
            await broker.stop()

    # -- the contract ------------------------------------------------------------------------

    def test_satisfies_the_port(self, make_broker: MakeBroker) -> None:
        assert isinstance(make_broker(), EventBroker)

    async def test_check_answers_when_the_broker_is_up(self, make_broker: MakeBroker) -> None:
        await make_broker().check()  # returns: the backend answered

    async def test_handler_receives_the_published_dict(self, make_broker: MakeBroker) -> None:
        topic, inbox = await self.new_topic(), Inbox()
        broker = make_broker()
        broker.subscribe([topic], inbox, group=self.new_group())
        await broker.start()
        message = {
            "n": 1,
            "name": "order.created",
            "data": {"id": 7, "total": 12.5, "paid": True, "note": None, "tags": ["a", "b"]},
            "text": "pão de queijo ✓",
        }

        await broker.publish(message, topic=topic)

        await inbox.wait_for_messages(1, self.timeout)
        assert inbox.messages == [message]
        assert isinstance(inbox.messages[0], dict)

    async def test_headers_and_key_travel_without_changing_the_body(
        self, make_broker: MakeBroker
    ) -> None:
        topic, inbox = await self.new_topic(), Inbox()
        broker = make_broker()
        broker.subscribe([topic], inbox, group=self.new_group())
        await broker.start()

        await broker.publish(
            {"n": 1, "id": "42"},
            topic=topic,
            key="customer-42",
            headers={"event": "user.updated", "trace-id": "abc"},
        )

        await inbox.wait_for_messages(1, self.timeout)
        assert inbox.messages == [{"n": 1, "id": "42"}]

    async def test_publish_refuses_a_body_json_cannot_carry(self, make_broker: MakeBroker) -> None:
        broker = make_broker()

        with pytest.raises(TypeError):
            await broker.publish({"at": datetime.now(UTC)}, topic=await self.new_topic())

    async def test_publish_to_a_topic_nobody_reads_is_not_an_error(
        self, make_broker: MakeBroker
    ) -> None:
        broker = make_broker()
        await broker.start()

        await broker.publish({"n": 1}, topic=await self.new_topic())

    async def test_every_group_gets_every_message(self, make_broker: MakeBroker) -> None:
        topic, billing, shipping = await self.new_topic(), Inbox(), Inbox()
        broker = make_broker()
        broker.subscribe([topic], billing, group=self.new_group())
        broker.subscribe([topic], shipping, group=self.new_group())
        await broker.start()

        for n in range(5):
            await broker.publish({"n": n}, topic=topic, key=f"k{n}")

        await billing.wait_for_messages(5, self.timeout)
        await shipping.wait_for_messages(5, self.timeout)
        await self.settle(broker)
        assert sorted(m["n"] for m in billing.messages) == list(range(5))
        assert sorted(m["n"] for m in shipping.messages) == list(range(5))

    async def test_subscribers_of_one_group_share_its_messages(
        self, make_broker: MakeBroker
    ) -> None:
        topic, group, changed = await self.new_topic(), self.new_group(), asyncio.Event()
        first, second = Inbox(changed=changed), Inbox(changed=changed)
        broker = make_broker()
        broker.subscribe([topic], first, group=group)
        broker.subscribe([topic], second, group=group)
        await broker.start()

        for n in range(20):
            await broker.publish({"n": n}, topic=topic, key=f"key-{n}")

        await first.wait_for(lambda: len(first.messages) + len(second.messages) >= 20, self.timeout)
        await self.settle(broker)
        handled = sorted(m["n"] for m in first.messages + second.messages)
        assert handled == list(range(20)), "each message once across the group"
        assert first.messages and second.messages, "both subscribers took a share"

    async def test_one_subscription_reads_several_topics(self, make_broker: MakeBroker) -> None:
        users, orders, inbox = await self.new_topic(), await self.new_topic(), Inbox()
        broker = make_broker()
        broker.subscribe([users, orders], inbox, group=self.new_group())
        await broker.start()

        await broker.publish({"n": 1}, topic=users)
        await broker.publish({"n": 2}, topic=orders)

        await inbox.wait_for_messages(2, self.timeout)
        assert sorted(m["n"] for m in inbox.messages) == [1, 2]

    async def test_a_failed_message_is_redelivered(self, make_broker: MakeBroker) -> None:
        topic, inbox = await self.new_topic(), Inbox(fail_first=1)
        broker = make_broker()
        broker.subscribe([topic], inbox, group=self.new_group())
        await broker.start()

        await broker.publish({"n": 1}, topic=topic)

        await inbox.wait_for_messages(1, self.timeout)
        assert inbox.messages == [{"n": 1}]
        assert inbox.attempts[1] == 2

    async def test_a_message_that_keeps_failing_is_given_up_and_the_group_moves_on(
        self, make_broker: MakeBroker
    ) -> None:
        topic, inbox = await self.new_topic(), Inbox(poison=frozenset({1}))
        broker = make_broker(max_redeliveries=2)
        broker.subscribe([topic], inbox, group=self.new_group())
        await broker.start()

        await broker.publish({"n": 1}, topic=topic, key="same")
        await broker.publish({"n": 2}, topic=topic, key="same")

        await inbox.wait_for(lambda: inbox.attempts[1] >= 3 and bool(inbox.messages), self.timeout)
        await self.settle(broker)
        assert inbox.attempts[1] == 3, "the first delivery and two redeliveries, then no more"
        assert inbox.messages == [{"n": 2}]

    async def test_a_group_gets_what_was_published_while_it_was_stopped(
        self, make_broker: MakeBroker
    ) -> None:
        topic, inbox = await self.new_topic(), Inbox()
        broker = make_broker()
        broker.subscribe([topic], inbox, group=self.new_group())
        await broker.start()  # the group exists from here on
        await broker.stop()

        await broker.publish({"n": 1}, topic=topic)
        await broker.start()

        await inbox.wait_for_messages(1, self.timeout)
        assert inbox.messages == [{"n": 1}]

    async def test_stop_is_clean_and_idempotent(self, make_broker: MakeBroker) -> None:
        topic, inbox = await self.new_topic(), Inbox()
        broker = make_broker()
        await broker.stop()  # stopping a broker that never started is harmless
        broker.subscribe([topic], inbox, group=self.new_group())
        tasks_before = asyncio.all_tasks()
        await broker.start()
        await broker.publish({"n": 1}, topic=topic)
        await inbox.wait_for_messages(1, self.timeout)

        await broker.stop()
        await broker.stop()

        await asyncio.sleep(0)  # let cancelled tasks finish unwinding
        leftover = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
        assert not leftover, f"tasks still running after stop: {leftover}"
