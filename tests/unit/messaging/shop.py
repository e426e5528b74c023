"""A small app the messaging tests drive: orders emit events, a consumer counts them per user."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.errors import ValidationFailedError
from core.messaging import consumer, event, idempotent, on_event, publish_event
from core.testing import test_settings

ORDER_TOPIC = "unit-msg-orders"
USER_TOPIC = "unit-msg-users"
GROUP = "unit-msg-user-service"


class MsgUser(Model):
    __tablename__ = "msg_users"

    id: Mapped[int] = Field.pk()
    email: Mapped[str] = Field.string(max_length=120, unique=True)
    order_count: Mapped[int] = Field.integer(default=0)


class MsgOrder(Model):
    __tablename__ = "msg_orders"

    id: Mapped[int] = Field.pk()
    user_id: Mapped[int] = Field.integer()
    total: Mapped[float] = Field.float_()
    status: Mapped[str] = Field.string(max_length=20, default="pending")


class OrderInput(BaseModel):
    user_id: int
    total: float


class OrderOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    total: float
    status: str


class OrderViewSet(ModelViewSet):
    model = MsgOrder
    input_schema = OrderInput
    output_schema = OrderOutput

    @action(methods=["POST"], detail=False)
    @event("order.created", topic=ORDER_TOPIC, key="user_id")
    async def create_order(self, request: Any, db: Any, **kwargs: Any) -> Any:
        body = await request.json()
        order = await MsgOrder.objects.create(**body, db=db)
        return OrderOutput.model_validate(order).model_dump()

    # The other order: @event above @action.
    @event("order.cancelled", topic=ORDER_TOPIC)
    @action(methods=["POST"], detail=True)
    async def cancel(self, request: Any, db: Any, **kwargs: Any) -> Any:
        order = await self.get_object(db, **kwargs)
        order.status = "cancelled"
        await order.save(db)
        return {"id": order.id, "status": order.status}

    @action(methods=["POST"], detail=False)
    async def risky(self, request: Any, db: Any, **kwargs: Any) -> Any:
        """Writes an order and an event, then fails: both must be rolled back."""
        body = await request.json()
        order = await MsgOrder.objects.create(**body, db=db)
        await publish_event("order.created", data={"id": order.id}, topic=ORDER_TOPIC)
        raise ValidationFailedError("refused after the event was written")


@consumer(GROUP, topics=[ORDER_TOPIC])
class OrderEventsConsumer:
    """The spec's user-service consumer: one more order for the user, once per event."""

    handled: list[str] = []

    @on_event("order.created")
    @idempotent
    async def on_order_created(self, event: Any, db: Any) -> None:
        user = await MsgUser.objects.using(db).get(id=event.data["user_id"])
        user.order_count += 1
        await user.save(db)
        type(self).handled.append(str(event.id))


def build_app(**settings: Any) -> CoreApp:
    """The shop on in-memory backends; the relay is driven by the test unless asked."""
    values: dict[str, Any] = {
        "consumer_retry_backoff": 0.0,
        "outbox_relay_in_process": False,
        "app_name": "shop",
    }
    values.update(settings)
    router = AutoRouter(prefix="/api/v1")
    router.register("/orders", OrderViewSet)
    return CoreApp(settings=test_settings(**values), routers=[router])
