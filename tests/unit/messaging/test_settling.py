"""How the FastStream adapters settle one received body, whatever it holds (no server needed:
`deliver` is the part every adapter shares)."""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.faststream._base import FastStreamEventBroker
from core.errors import BrokerUnavailableError


class Bare(FastStreamEventBroker[Any]):
    technology = "Test"
    driver_errors = (OSError,)

    def _create_broker(self) -> Any:
        raise AssertionError("no connection in these tests")

    def _publish(self, broker: Any, body: bytes, **options: Any) -> Any:
        raise AssertionError("no connection in these tests")

    def _subscribe(self, broker: Any, subscription: Any) -> list[Any]:
        raise AssertionError("no connection in these tests")


class Settled:
    """The three ways a message can end, as the adapter reports them."""

    def __init__(self) -> None:
        self.outcome: list[str] = []
        self.failures = 0

    async def ack(self) -> None:
        self.outcome.append("ack")

    async def retry(self) -> None:
        self.outcome.append("retry")

    async def give_up(self) -> None:
        self.outcome.append("give_up")

    async def failed_attempts(self) -> int:
        self.failures += 1
        return self.failures


class Dispatcher:
    """A handler that, like the messaging layer's, takes the bodies it cannot decode."""

    def __init__(self, dead_letter_topic_up: bool = True) -> None:
        self.messages: list[Any] = []
        self.rejected: list[tuple[bytes, str]] = []
        self.up = dead_letter_topic_up

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)

    async def dead_letter_body(self, body: bytes, error: BaseException) -> None:
        if not self.up:
            raise BrokerUnavailableError("the dead-letter topic is unreachable (test)")
        self.rejected.append((body, type(error).__name__))


async def deliver(handler: Any, body: bytes, *, redeliveries: int = 3) -> Settled:
    settled = Settled()
    await Bare(max_redeliveries=redeliveries).deliver(
        handler,
        body,
        where="t/g",
        ack=settled.ack,
        retry=settled.retry,
        give_up=settled.give_up,
        failed_attempts=settled.failed_attempts,
    )
    return settled


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "JSONDecodeError"),
        (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
        (b"[1, 2]", "ValueError"),
        (b'{"a": "\xc3\x28"}', "UnicodeDecodeError"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_dead_lettered_and_acknowledged(
    body: bytes, error: str
) -> None:
    handler = Dispatcher()
    settled = await deliver(handler, body)
    assert settled.outcome == ["ack"]
    assert handler.rejected == [(body, error)]
    assert handler.messages == []


async def test_without_a_dead_letter_hook_it_is_given_up() -> None:
    seen: list[Any] = []

    async def plain(message: Any) -> None:
        seen.append(message)

    assert (await deliver(plain, b"{not json")).outcome == ["give_up"]
    assert seen == []


async def test_an_unreachable_dead_letter_topic_leaves_it_to_redelivery_then_gives_up() -> None:
    handler = Dispatcher(dead_letter_topic_up=False)
    assert (await deliver(handler, b"{not json")).outcome == ["retry"]
    assert (await deliver(handler, b"{not json", redeliveries=0)).outcome == ["give_up"]


async def test_a_json_object_goes_to_the_handler_and_is_acknowledged() -> None:
    handler = Dispatcher()
    assert (await deliver(handler, b'{"id": 1}')).outcome == ["ack"]
    assert handler.messages == [{"id": 1}]
