"""The AsyncAPI document served next to OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from pydantic import BaseModel

from core import CoreApp
from core.messaging import Event, consumer, event, on_event
from core.messaging.asyncapi import asyncapi_document
from tests.unit.messaging.shop import GROUP, ORDER_TOPIC, OrderOutput, build_app


async def test_asyncapi_json_lists_the_apps_events_and_consumers(
    shop: CoreApp, client: httpx.AsyncClient
) -> None:
    response = await client.get("/asyncapi.json")

    assert response.status_code == 200
    document = response.json()
    ApplicationSchema.model_validate(document)  # a well-formed AsyncAPI 3.0 document
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == shop.fastapi.title
    channel = document["channels"][ORDER_TOPIC]
    assert channel["address"] == ORDER_TOPIC
    assert {"order.created", "order.cancelled"} <= set(channel["messages"])
    send = document["operations"][f"send.{ORDER_TOPIC}.order.created"]
    assert send["action"] == "send" and send["x-message-key"] == "user_id"
    assert send["summary"].endswith("OrderViewSet.create_order")
    receive = document["operations"][f"receive.{GROUP}.{ORDER_TOPIC}.order.created"]
    assert (receive["action"], receive["x-consumer-group"]) == ("receive", GROUP)
    payload = document["components"]["messages"]["order.created"]["payload"]
    assert payload["properties"]["name"] == {"type": "string", "const": "order.created"}
    assert "/asyncapi.json" not in (await client.get("/openapi.json")).json()["paths"]


class Shipment(BaseModel):
    id: int
    carrier: str


def test_data_is_typed_from_the_schema_or_the_return_annotation() -> None:
    @event("shipment.sent", topic="unit-asyncapi-shipments")
    async def ship() -> Shipment:
        return Shipment(id=1, carrier="x")

    @event("invoice.sent", topic="unit-asyncapi-invoices", schema=OrderOutput)
    async def invoice() -> dict[str, Any]:
        return {}

    @consumer("unit-asyncapi-group", topics=["unit-asyncapi-shipments"])
    class Tracker:
        @on_event("shipment.sent")
        async def track(self, event: Event, db: Any) -> None: ...

    document = asyncapi_document(build_app(message_broker="kafka"))

    messages = document["components"]["messages"]
    data = messages["shipment.sent"]["payload"]["properties"]["data"]
    assert data["properties"]["carrier"] == {"title": "Carrier", "type": "string"}
    invoice_data = messages["invoice.sent"]["payload"]["properties"]["data"]
    assert invoice_data["properties"]["status"]["type"] == "string"
    assert document.pop("servers") == {"kafka": {"host": "localhost:9092", "protocol": "kafka"}}
    # FastStream's model wants a `pathname` on every server, which AsyncAPI 3.0 leaves optional:
    # the rest of the document is checked against it.
    ApplicationSchema.model_validate(document)


def test_servers_never_show_credentials() -> None:
    document = asyncapi_document(
        build_app(message_broker="rabbitmq", rabbitmq_url="amqp://user:secret@mq:5672/vhost")
    )
    assert document["servers"] == {
        "rabbitmq": {"host": "mq:5672", "protocol": "amqp", "pathname": "/vhost"}
    }
    assert "servers" not in asyncapi_document(build_app())
