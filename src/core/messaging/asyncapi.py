"""The AsyncAPI 3.0 document of an app's events: what it publishes (`@event`) and consumes.

CoreApp serves it at `/asyncapi.json`, next to `/openapi.json`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from core.messaging.consumers import declared_consumers
from core.messaging.producer import declared_events

__all__ = ("asyncapi_document",)

ASYNCAPI_VERSION = "3.0.0"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _id(text: str) -> str:
    # AsyncAPI component and channel keys allow only these characters.
    return _UNSAFE.sub("_", text)


def asyncapi_document(app: Any) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document of the events declared in this process.

    Channels are topics; every `@event` is a `send` operation on its topic, and every
    `@on_event` handler of a `@consumer` a `receive` operation (with its group as
    `x-consumer-group`). Each message's payload is the event envelope, with `data` typed from
    `@event(schema=...)` or the emitter's return annotation when there is one.

    Args:
        app: the CoreApp (its title, version and broker settings fill `info` and `servers`).

    Example:
        >>> document = asyncapi_document(app)  # doctest: +SKIP
        >>> sorted(document["channels"])  # doctest: +SKIP
        ['order-events', 'user-events']
    """
    schemas: dict[str, Any] = {}
    messages: dict[str, dict[str, Any]] = {}
    channels: dict[str, dict[str, Any]] = {}
    operations: dict[str, dict[str, Any]] = {}
    declared_here = app.container.declarations()

    def channel(topic: str, name: str, data: Any) -> tuple[str, str]:
        channel_id, message_id = _id(topic), _id(name)
        if message_id not in messages or data is not None:
            messages[message_id] = _message(name, _data_schema(data, schemas))
        entry = channels.setdefault(channel_id, {"address": topic, "messages": {}})
        entry["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        return channel_id, message_id

    for declared in declared_events(declared_here):
        channel_id, message_id = channel(declared.topic, declared.name, declared.data_schema())
        operation: dict[str, Any] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_id}"}],
            "summary": f"{declared.name} is published by {declared.emitter}",
        }
        if declared.key:
            operation["x-message-key"] = declared.key
        operations[_id(f"send.{declared.topic}.{declared.name}")] = operation

    for consumer in declared_consumers(declared_here):
        for topic in consumer.topics:
            for name, method in consumer.handlers.items():
                channel_id, message_id = channel(topic, name, None)
                operations[_id(f"receive.{consumer.group}.{topic}.{name}")] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_id}"}],
                    "summary": f"{consumer.group} handles {name} in {consumer.name}.{method}",
                    "x-consumer-group": consumer.group,
                }

    fastapi = getattr(app, "fastapi", None)
    settings = app.container.settings()
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": getattr(fastapi, "title", settings.app_name),
            "version": getattr(fastapi, "version", "0.1.0"),
            "description": f"Events of {settings.app_name}, published and consumed.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
    if servers := _servers(settings):
        document["servers"] = servers
    return document


def _message(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["id", "name", "occurred_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "const": name},
                "data": data,
                "occurred_at": {"type": "string", "format": "date-time"},
                "source": {"type": "string", "description": "APP_NAME of the publisher"},
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "correlation_id, causation_id and custom metadata",
                },
            },
        },
    }


def _data_schema(data: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        schema = TypeAdapter(data).json_schema(ref_template="#/components/schemas/{model}")
    except Exception:
        # Documentation only: a type pydantic cannot describe leaves `data` untyped.
        return {}
    schemas.update(schema.pop("$defs", {}))
    return schema


def _servers(settings: Any) -> dict[str, dict[str, Any]]:
    broker = settings.message_broker
    if broker == "kafka":
        hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
        return {
            f"kafka-{i}" if len(hosts) > 1 else "kafka": {"host": host, "protocol": "kafka"}
            for i, host in enumerate(hosts)
        }
    if broker in ("redis", "rabbitmq"):
        url = urlsplit(settings.redis_url if broker == "redis" else settings.rabbitmq_url)
        # Never the credentials: the document is public.
        host = url.hostname or "localhost"
        server: dict[str, Any] = {
            "host": f"{host}:{url.port}" if url.port else host,
            "protocol": url.scheme or broker,
        }
        if url.path and url.path != "/":
            server["pathname"] = url.path
        return {broker: server}
    return {}
