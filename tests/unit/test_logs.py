"""Structured logs: the ids on every line of a request, the JSON and console formats, and a
setup that leaves a host application's logging alone."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from core.app import CoreApp
from core.logs import configure_logging, valid_request_id
from core.testing.plugin import test_settings

_GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Core's handler as a `core worker` installs it, in JSON, its output kept in memory."""
    root = logging.getLogger()
    level = root.level
    handler: Any = configure_logging(test_settings(log_format="json"), process=True)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/work")
    async def work() -> dict[str, str]:
        # A library's logger, not Core's: the ids reach it all the same.
        logging.getLogger("some.library").info("working on %s", "it")
        return {"ok": "yes"}

    return router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = CoreApp(settings=test_settings(), routers=[_router()])
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_request_line_carries_the_request_and_correlation_ids_as_json(
    client: httpx.AsyncClient, json_lines: io.StringIO
) -> None:
    response = await client.get(
        "/work", headers={"X-Request-ID": "req-7f3a", "X-Correlation-ID": "order-flow-1"}
    )

    assert response.headers["x-request-id"] == "req-7f3a"
    [line] = [line for line in parsed(json_lines) if line["logger"] == "some.library"]
    assert line["message"] == "working on it"
    assert line["level"] == "INFO"
    assert (line["request_id"], line["correlation_id"]) == ("req-7f3a", "order-flow-1")
    # OpenTelemetry is not installed here: no trace id, rather than an empty one.
    assert "trace_id" not in line
    assert line["timestamp"].endswith("+00:00")


async def test_without_ids_the_request_gets_a_new_one_which_is_its_correlation_id(
    client: httpx.AsyncClient, json_lines: io.StringIO
) -> None:
    response = await client.get("/work")

    request_id = response.headers["x-request-id"]
    assert _GENERATED.fullmatch(request_id)
    [line] = [line for line in parsed(json_lines) if line["logger"] == "some.library"]
    assert line["request_id"] == line["correlation_id"] == request_id


@pytest.mark.parametrize(
    "sent", ["two words", "x" * 129, "<script>", "id\u00e9", "-starts-with-a-dash"]
)
async def test_a_malformed_request_id_is_replaced_never_echoed(
    client: httpx.AsyncClient, json_lines: io.StringIO, sent: str
) -> None:
    response = await client.get("/work", headers=[(b"x-request-id", sent.encode("utf-8"))])

    assert response.status_code == 200
    assert _GENERATED.fullmatch(response.headers["x-request-id"])
    [line] = [line for line in parsed(json_lines) if line["logger"] == "some.library"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert sent not in json_lines.getvalue()


async def test_error_answers_carry_the_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers={"X-Request-ID": "abc-123"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "abc-123"


def test_valid_request_ids_are_short_and_safe() -> None:
    assert valid_request_id("3f1c0a8e-9b2d-4c7f-a1e5-b6d7c8f90a1b")
    assert valid_request_id("svc:orders/42+retry=1")
    assert valid_request_id("x" * 128)
    for bad in (None, "", "x" * 129, "a b", "a\nb", 'a"b', "é"):
        assert valid_request_id(bad) is None


def test_console_lines_are_readable_with_the_ids_after_the_message(
    json_lines: io.StringIO,
) -> None:
    handler: Any = configure_logging(test_settings(log_format="console"), process=True)
    stream = io.StringIO()
    handler.setStream(stream)

    logging.getLogger("core.demo").warning("disk %s", "full", extra={"free_mb": 12})

    text = stream.getvalue()
    assert "WARNING  core.demo: disk full [free_mb=12]" in text
    assert json_lines.getvalue() == "", "a second setup replaces Core's handler, never doubles it"
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"environment": "production", "secret_key": "s" * 32}, "JsonFormatter"),
        ({"environment": "development"}, "ConsoleFormatter"),
        ({"environment": "development", "log_format": "json"}, "JsonFormatter"),
        (
            {"environment": "production", "secret_key": "s" * 32, "log_format": "console"},
            "ConsoleFormatter",
        ),
    ],
)
def test_json_in_production_readable_text_elsewhere_unless_log_format_says(
    settings: dict[str, Any], expected: str
) -> None:
    handler = configure_logging(
        test_settings(auth_token_store="database", **settings), process=True
    )
    assert handler is not None
    logging.getLogger().removeHandler(handler)
    assert type(handler.formatter).__name__ == expected


def test_an_app_leaves_a_host_logging_configuration_alone() -> None:
    # Under pytest the root logger has handlers (the log capture), as a host's would have.
    assert logging.getLogger().handlers
    core = logging.getLogger("core")
    before = (list(logging.getLogger().handlers), list(core.handlers), core.level)

    assert configure_logging(test_settings()) is None

    assert (list(logging.getLogger().handlers), list(core.handlers), core.level) == before


def test_extra_fields_are_written_but_not_uvicorn_colour_codes(json_lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "\x1b[36m%d\x1b[0m"}
    )
    logging.getLogger("core.demo").info("paid", extra={"order": 7})

    started, paid = parsed(json_lines)
    assert started["message"] == "Started server process [7]" and "color_message" not in started
    assert paid["order"] == 7
