"""The Event envelope: JSON on the wire, correlation and causation ids."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from pydantic import BaseModel, ValidationError

from core.messaging import Event, use_correlation_id
from core.messaging.events import handling
from tests.unit.messaging.shop import MsgUser


def test_an_event_travels_as_a_json_object_and_back() -> None:
    event = Event.new("user.created", {"id": 1, "email": "a@x.io"}, source="users")
    message = event.to_message()

    assert message == {
        "id": str(event.id),
        "name": "user.created",
        "data": {"id": 1, "email": "a@x.io"},
        "occurred_at": event.occurred_at.isoformat(),
        "source": "users",
        "headers": {"correlation_id": str(event.id)},
    }
    assert Event.from_message(message) == event
    assert event.occurred_at.tzinfo is not None


def test_data_may_hold_what_pydantic_serializes_and_model_instances() -> None:
    class Payload(BaseModel):
        amount: decimal.Decimal
        at: datetime.datetime

    moment = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    event = Event.new("paid", {"payload": Payload(amount=decimal.Decimal("1.50"), at=moment)})
    assert event.to_message()["data"] == {
        "payload": {"amount": "1.50", "at": "2024-05-01T12:00:00Z"}
    }

    user = MsgUser(id=3, email="u@x.io", order_count=2)
    assert Event.new("user.created", user).to_message()["data"] == {
        "id": 3,
        "email": "u@x.io",
        "order_count": 2,
    }


def test_data_json_cannot_carry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'bad'"):
        Event.new("bad", {"x": object()}).to_message()


def test_a_message_that_is_not_an_envelope_is_refused() -> None:
    with pytest.raises(ValidationError):
        Event.from_message({"hello": "world"})


def test_correlation_and_causation_follow_the_handled_event() -> None:
    cause = Event.new("order.created", {}, headers={"correlation_id": "req-1"})
    with handling(cause):
        effect = Event.new("invoice.created", {})
    assert effect.correlation_id == "req-1"
    assert effect.causation_id == str(cause.id)

    with use_correlation_id("abc"):
        assert Event.new("x", None).correlation_id == "abc"
    with use_correlation_id(None):
        lone = Event.new("x", None)
    assert lone.correlation_id == str(lone.id) and lone.causation_id is None


def test_unknown_envelope_fields_are_ignored_for_forward_compatibility() -> None:
    event = Event.from_message(
        {
            "id": str(uuid.uuid4()),
            "name": "x",
            "occurred_at": "2024-01-01T00:00:00Z",
            "schema_version": 2,
        }
    )
    assert (event.data, event.headers, event.source) == (None, {}, "")


def test_the_fast_ids_and_timestamps_are_what_the_stdlib_gives() -> None:
    from core.messaging import events

    for _ in range(200):
        value, text = events._new_id()
        assert isinstance(value, uuid.UUID) and value.version == 4
        assert str(value) == text and uuid.UUID(text) == value
        now, now_text = events._now_and_text()
        assert now.tzinfo is not None and now_text == now.isoformat()


def test_the_encoded_wire_message_is_the_events_own_message() -> None:
    import json

    from core.messaging import events

    data = {"total": decimal.Decimal("9.90"), "when": datetime.date(2026, 1, 2), "n": [1, 2.5]}
    with use_correlation_id("corr-1"):
        body, plain, number, occurred_at, headers = Event._encode(
            "order.created", data, "shop", {"tenant": "t1"}
        )
    event = Event._assemble("order.created", plain, number, occurred_at, "shop", headers)
    assert json.loads(body) == json.loads(json.dumps(event.to_message()))
    assert event.headers == {"tenant": "t1", "correlation_id": "corr-1"}
    with pytest.raises(TypeError, match="not JSON serializable"):
        Event._encode("x", {"f": object()}, "shop", None)
    assert events._uuid_of(number) == event.id
