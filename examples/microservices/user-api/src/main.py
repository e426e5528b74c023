"""User API (port 8001 in the spec): users register here and count the orders the order API emits.

The spec's `user-api/src/main.py`, with what it leaves out filled in: the imports, the schemas,
`AbstractUser` (which gives `User.create_user` and the password hash), the auth endpoints
clients log in with, and `@idempotent` on the consumer (delivery is at-least-once).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped
from starlette.requests import Request

from core import AutoRouter, CoreApp, Field, ModelViewSet, action
from core.auth import AbstractUser, AuthViewSet, configure_auth
from core.messaging import Event, consumer, event, idempotent, on_event
from core.permissions import AllowAny, IsAuthenticated


class User(AbstractUser):
    """A user: `id`, `email`, `password` (the hash) and the flags come from AbstractUser."""

    __tablename__ = "users"

    order_count: Mapped[int] = Field.integer(default=0)


class UserInput(BaseModel):
    """What an authenticated client may write through `/users/`: passwords only via register."""

    email: str


class UserOutput(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    order_count: int


class UserViewSet(ModelViewSet):
    """CRUD on `/users/` for authenticated clients, and `POST /users/register/` for anyone."""

    model = User
    input_schema = UserInput
    output_schema = UserOutput
    tags = ["Users"]
    permission_classes = [IsAuthenticated]
    unique_fields = ["email"]

    @action(methods=["POST"], detail=False, permission_classes=[AllowAny])
    @event("user.created", topic="user-events")
    async def register(self, request: Request, db: Any, **kwargs: Any) -> dict[str, Any]:
        """Create a user; the answer is published as `user.created` once the user is committed."""
        body = await request.json()
        user = await User.create_user(email=body["email"], password=body["password"], db=db)
        return UserOutput.model_validate(user).model_dump()


# Consumer para eventos de Order
@consumer("user-service", topics=["order-events"])
class OrderEventsConsumer:
    @on_event("order.created")
    @idempotent
    async def on_order_created(self, event: Event, db: Any) -> None:
        """Incrementa contador de pedidos do usuario."""
        user_id = event.data["user_id"]
        user = await User.objects.using(db).get(id=user_id)
        user.order_count += 1
        await user.save(db)


# App. The spec writes configure_auth(secret_key="secret", ...); the key is left to SECRET_KEY
# here so it stays out of the code: both services read the same one and trust each other's tokens.
configure_auth(user_model=User)
router = AutoRouter(prefix="/api/v1")
router.register("/users", UserViewSet)
router.register("/auth", AuthViewSet)  # login/, refresh/, me/, logout/ (see docs/auth.md)
app = CoreApp(title="User API", routers=[router])
