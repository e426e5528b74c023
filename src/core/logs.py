"""Structured logging: the ids every line carries, JSON and console formats, and one setup.

A request, consumer message or task runs with its ids in ContextVars; `ContextFilter` copies
them onto each record that passes Core's handler, whichever logger wrote it. `configure_logging`
is called by the entry points (CoreApp's lifespan, `core run`, `core worker`, `core consumer`),
never at import, and adds Core's handler without touching a host application's own handlers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.ports.tasks import running_task_id

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = (
    "ConsoleFormatter",
    "ContextFilter",
    "JsonFormatter",
    "RequestIdMiddleware",
    "configure_logging",
    "core_handler",
    "current_correlation_id",
    "current_request_id",
    "use_log_ids",
    "valid_request_id",
)

REQUEST_ID_HEADER = b"x-request-id"
CORRELATION_HEADER = b"x-correlation-id"
# What a client may send as an id: short, and only characters that are safe in a log line, a
# header and a URL (a UUID, a ULID, a hex or base64url token, `svc:1234`...).
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_request_id: ContextVar[str | None] = ContextVar("core_request_id", default=None)
# A request's correlation id, for its lines when the messaging layer is not loaded (when it
# is, its own correlation ContextVar, which consumers set per event, has the say).
_request_correlation: ContextVar[str | None] = ContextVar("core_request_correlation", default=None)

# The fields Core puts on records, and the attributes every LogRecord has: the rest of a
# record's attributes came from `extra=` and are written as fields too.
_ID_FIELDS = ("request_id", "correlation_id", "trace_id", "span_id", "task_id")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    # uvicorn's copy of the message with terminal colour codes: never for a log file.
    "color_message",
    *_ID_FIELDS,
}


def current_request_id() -> str | None:
    """The id of the HTTP request being served, or None outside one.

    Example:
        >>> current_request_id()  # inside a view  # doctest: +SKIP
        '3f1c0a8e9b2d4c7fa1e5b6d7c8f90a1b'
    """
    return _request_id.get()


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is fit to be an id (1 to 128 safe characters), else None.

    Example:
        >>> valid_request_id("req-42"), valid_request_id("bad id\\n")
        ('req-42', None)
    """
    if value and _SAFE_ID.fullmatch(value):
        return value
    return None


@contextmanager
def use_request_id(request_id: str) -> Iterator[None]:
    """Tag the log lines written in the block with `request_id`."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_correlation_id() -> str | None:
    """The correlation id of the request, event or task being handled, or None."""
    events = sys.modules.get("core.messaging.events")
    ambient = events.current_correlation_id() if events is not None else None
    return ambient or _request_correlation.get()


@contextmanager
def use_log_ids(request_id: str | None, correlation_id: str | None) -> Iterator[None]:
    """Run the block with these ids (None: leave as is), e.g. a task run with its sender's."""
    with contextlib.ExitStack() as stack:
        if request_id:
            stack.enter_context(use_request_id(request_id))
        if correlation_id:
            stack.enter_context(_use_correlation_id(correlation_id))
        yield


@contextmanager
def _use_correlation_id(correlation_id: str) -> Iterator[None]:
    # Imported only when loaded: serving a request need not load the messaging layer.
    events = sys.modules.get("core.messaging.events")
    token = _request_correlation.set(correlation_id)
    try:
        if events is None:
            yield
        else:
            with events.use_correlation_id(correlation_id):
                yield
    finally:
        _request_correlation.reset(token)


_NO_SPAN = (None, None)


def _trace_ids() -> tuple[str | None, str | None]:
    # OpenTelemetry is optional: without it, or with no span current, lines have no trace id.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return _NO_SPAN
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return _NO_SPAN
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class ContextFilter(logging.Filter):
    """Put the current request id, correlation id, trace and span ids and task id on every
    record.

    Core's handler carries one; add it to your own handlers to get the ids in your format
    (`handler.addFilter(ContextFilter())`). Ids set by the caller (`extra=`) are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id, span_id = _trace_ids()
        values = (
            _request_id.get(),
            current_correlation_id(),
            trace_id,
            span_id,
            running_task_id.get(),
        )
        for name, value in zip(_ID_FIELDS, values, strict=True):
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {name: getattr(record, name, None) for name in _ID_FIELDS}
    fields.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
    return {k: v for k, v in fields.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `timestamp`, `level`, `logger`, `message`, the ids, the
    record's `extra=` fields, and `exception` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """A readable line: time, level, logger and message, then the ids and fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        head, newline, rest = text.partition("\n")
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{head} [{pairs}]{newline}{rest}"


class _CoreHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Core's handler: marked by its class, so a second setup finds and replaces it."""


def core_handler(log_format: str = "console") -> logging.Handler:
    """Core's handler: to stderr, in `log_format` (`json` or `console`), with `ContextFilter`.

    `logging.config.dictConfig` can build it (`{"()": "core.logs.core_handler"}`): `core run`
    gives uvicorn such a configuration, so every worker process logs the same way.
    """
    handler = _CoreHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    handler.addFilter(ContextFilter())
    return handler


def log_format(settings: Settings) -> str:
    """`json` or `console`, from LOG_FORMAT (`auto`: JSON when ENVIRONMENT=production)."""
    if settings.log_format == "auto":
        return "json" if settings.environment == "production" else "console"
    return settings.log_format


def process_log_config(settings: Settings) -> dict[str, Any]:
    """A `dictConfig` configuration sending every logger through Core's handler (for a
    process that is Core's own, such as uvicorn's workers under `core run`)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"core": {"()": "core.logs.core_handler", "log_format": log_format(settings)}},
        "root": {"handlers": ["core"], "level": settings.log_level},
        "loggers": {"core": {"level": settings.log_level}},
    }


def configure_logging(settings: Settings, *, process: bool = False) -> logging.Handler | None:
    """Add Core's log handler (format from LOG_FORMAT, level from LOG_LEVEL); idempotent.

    Args:
        settings: gives `log_format` (`auto`: JSON in production), `log_level`, `environment`.
        process: the process is Core's own (`core worker`, `core consumer`): the handler
            goes on the root logger, so third-party libraries' lines get the same format
            and ids. Otherwise (an app served by a host or a plain `uvicorn`) it goes on the
            `core` logger only, and only when no handler is on the root logger: a host that
            configured logging keeps its configuration (add `ContextFilter` to its handlers).

    Returns:
        The handler in place, or None when the host's logging configuration was left alone.
    """
    root = logging.getLogger()
    core = logging.getLogger("core")
    if process:
        # Added beside any handler already there (a test runner's capture, say).
        for old in [h for h in (*root.handlers, *core.handlers) if isinstance(h, _CoreHandler)]:
            root.removeHandler(old)
            core.removeHandler(old)
        handler = core_handler(log_format(settings))
        root.addHandler(handler)
        root.setLevel(settings.log_level)
        core.setLevel(settings.log_level)
        return handler
    for handler in root.handlers:
        if isinstance(handler, _CoreHandler):  # the process's entry point set it up already
            return handler
    for old in [h for h in core.handlers if isinstance(h, _CoreHandler)]:
        core.removeHandler(old)
    if root.handlers:
        return None
    handler = core_handler(log_format(settings))
    core.addHandler(handler)
    core.setLevel(settings.log_level)
    return handler


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return str(value.decode("ascii"))
            except UnicodeDecodeError:
                return None
    return None


class RequestIdMiddleware:
    """Give each HTTP request an id and a correlation id, for its log lines and its events.

    The request id is the client's `X-Request-ID` when it is a safe, short id
    (`valid_request_id`), else a new one; the response carries it back. The correlation id is
    the client's `X-Correlation-ID` when it is one, else the request id: the events the request
    publishes carry it, and so do the lines of the consumers and tasks they lead to.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = valid_request_id(_header(scope, REQUEST_ID_HEADER)) or uuid.uuid4().hex
        correlation = valid_request_id(_header(scope, CORRELATION_HEADER)) or request_id
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER
                ]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, encoded)]}
            await send(message)

        with use_request_id(request_id), _use_correlation_id(correlation):
            await self.app(scope, receive, send_with_id)
