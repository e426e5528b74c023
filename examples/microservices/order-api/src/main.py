"""Order API (port 8002 in the spec): orders, a welcome order per new user, and a synchronous
call to the user API.

The spec's `order-api/src/main.py` and its "Comunicacao Sincrona" `with_user` action, with what
they leave out filled in: the imports, the schemas, `@idempotent` on the consumer, and a setting
for the user API's address (the spec's `http://user-api:8000`, the default, is its name on the
Docker network; a local run sets `USER_API_URL`). This service has no user table: a valid access
token from the user API (same SECRET_KEY) authenticates as a token user whose `id` is the
token's subject.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped
from starlette.requests import Request

from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
from core.messaging import Event, consumer, event, idempotent, on_event
from core.permissions import IsAuthenticated
from core.settings import Settings


class OrderSettings(Settings):
    """The framework's settings plus `USER_API_URL`, where the user API answers."""

    user_api_url: str = "http://user-api:8000"


class Order(Model):
    __tablename__ = "orders"

    id: Mapped[int] = Field.pk()
    user_id: Mapped[int] = Field.integer()
    total: Mapped[float] = Field.float_()
    status: Mapped[str] = Field.string(default="pending")


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
    """CRUD on `/orders/`, `POST /orders/create_order/` and `GET /orders/{id}/with_user/`."""

    model = Order
    input_schema = OrderInput
    output_schema = OrderOutput
    tags = ["Orders"]
    permission_classes = [IsAuthenticated]
    filterset_fields = ["user_id", "status"]

    @action(methods=["POST"], detail=False)
    @event("order.created", topic="order-events")
    async def create_order(self, request: Request, db: Any, **kwargs: Any) -> dict[str, Any]:
        """An order for the caller; published as `order.created` once it is committed."""
        body = await request.json()
        order = Order(
            user_id=request.state.user.id,
            total=body["total"],
        )
        await order.save(db)
        return OrderOutput.model_validate(order).model_dump()

    @action(methods=["GET"], detail=True)
    async def with_user(self, request: Request, db: Any, **kwargs: Any) -> dict[str, Any]:
        """The order, with its user as the user API returns it (called with the caller's token)."""
        order = await self.get_object(db, **kwargs)

        # Busca usuario na User API (with the caller's token: IsAuthenticated means it has one)
        user_api = cast(OrderSettings, self.container.settings()).user_api_url
        async with httpx.AsyncClient() as client:
            resp = await client.get(
                f"{user_api}/api/v1/users/{order.user_id}/",
                headers={"Authorization": request.headers["Authorization"]},
            )
            user_data = resp.json()

        return {
            **OrderOutput.model_validate(order).model_dump(),
            "user": user_data,
        }


# Consumer para eventos de User
@consumer("order-service", topics=["user-events"])
class UserEventsConsumer:
    @on_event("user.created")
    @idempotent
    async def on_user_created(self, event: Event, db: Any) -> None:
        """Cria pedido de boas-vindas."""
        order = Order(
            user_id=event.data["id"],
            total=0,
            status="welcome",
        )
        await order.save(db)


# App
router = AutoRouter(prefix="/api/v1")
router.register("/orders", OrderViewSet)
app = CoreApp(title="Order API", settings=OrderSettings(), routers=[router])
