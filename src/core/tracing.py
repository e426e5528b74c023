"""Traces: OpenTelemetry spans for Core's work, and the trace context events and tasks carry.

OpenTelemetry is optional (the `tracing` extra). With TRACING_ENABLED off, nothing here imports
it and Core's code paths test one `None`. On, `build_tracing` makes sure a tracer provider is in
place (the application's own when it installed one, else one built from settings and the
standard `OTEL_*` variables) and returns the `Tracing` the containers hand to the HTTP app, the
database engine, the outbox, the relay, the consumers and the tasks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, SpanKind, TracerProvider

    from core.settings import Settings

M = TypeVar("M", bound=MutableMapping[str, Any])

__all__ = ("TRACEPARENT", "TRACE_HEADERS", "Tracing", "build_tracing")

logger = logging.getLogger("core.tracing")

#: The W3C Trace Context header: what events (their headers) and tasks (their message) carry.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: The headers of the W3C Trace Context (and baggage) that one hop replaces with its own.
TRACE_HEADERS = frozenset({TRACEPARENT, TRACESTATE, "baggage"})
_INSTRUMENTATION = "core"


class Tracing:
    """Core's tracer: the spans Core opens itself, and the context it passes on.

    Built by the container (`container.tracing()`, None when TRACING_ENABLED is off) around
    the global tracer provider, or the one given.

    Args:
        tracer_provider: the provider to use; the process's global one when None.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        from opentelemetry import propagate, trace

        self.tracer_provider = tracer_provider
        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer(_INSTRUMENTATION, tracer_provider=tracer_provider)

    def span(
        self,
        name: str,
        *,
        kind: str = "internal",
        attributes: Mapping[str, Any] | None = None,
        parent: Mapping[str, Any] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span around the block, made current; an exception ends it with an error status.

        Args:
            kind: `internal`, `producer`, `consumer`, `client` or `server`.
            parent: headers carrying a `traceparent`: the span continues that trace. Without
                one (or None) the span is a child of the current span, if any.
        """
        context = None
        if parent is not None and isinstance(parent.get(TRACEPARENT), str):
            context = self._propagate.extract(parent)
        return self.tracer.start_as_current_span(
            name,
            context=context,
            kind=self._kind(kind),
            attributes=dict(attributes) if attributes else None,
        )

    def _kind(self, kind: str) -> SpanKind:
        return getattr(self._trace.SpanKind, kind.upper())  # type: ignore[no-any-return]

    def inject(self, carrier: M) -> M:
        """Write the current trace context into `carrier` (`traceparent`, `tracestate` and
        whatever OTEL_PROPAGATORS adds); return it."""
        self._propagate.inject(carrier)
        return carrier

    def quiet(self) -> AbstractContextManager[None]:
        """Suppress the instrumentations (database statements, HTTP clients) in the block: for
        background loops whose idle polls would each make a trace of their own."""
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        return suppress_instrumentation()

    def instrumenting(self) -> bool:
        """False inside `quiet()`: instrumentations make no span there."""
        from opentelemetry.instrumentation.utils import is_instrumentation_enabled

        return bool(is_instrumentation_enabled())

    def has_current_span(self) -> bool:
        """Whether a span (a recording one, or one received from another process) is current."""
        return bool(self._trace.get_current_span().get_span_context().is_valid)

    def instrument_app(self, app: Any) -> None:
        """Trace every request `app` (a FastAPI app) serves, one server span per request named
        after its route template (opentelemetry-instrumentation-fastapi)."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.tracer_provider)

    def instrument_engine(self, engine: Any) -> Any:
        """Trace every statement `engine` (a SQLAlchemy engine, sync or async) runs, one
        client span each (opentelemetry-instrumentation-sqlalchemy)."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.sqlalchemy.version import __version__
        from opentelemetry.metrics import get_meter

        # The instrumentor's `instrument(engine=...)` is once per process and also patches
        # `create_engine` everywhere; an EngineTracer instruments this engine only.
        tracer = self._trace.get_tracer(
            "opentelemetry.instrumentation.sqlalchemy",
            __version__,
            tracer_provider=self.tracer_provider,
        )
        usage = get_meter("opentelemetry.instrumentation.sqlalchemy", __version__)
        connections = usage.create_up_down_counter(
            name="db.client.connections.usage",
            unit="connections",
            description="The number of connections that are currently in state described by "
            "the state attribute.",
        )
        sync_engine = getattr(engine, "sync_engine", engine)
        return EngineTracer(tracer, sync_engine, connections)  # type: ignore[no-untyped-call]

    def broker_middleware(self, technology: str) -> Any:
        """FastStream's own OpenTelemetry middleware for a `kafka`, `redis` or `rabbitmq`
        broker: a span per message published and processed, the context in its headers."""
        if technology == "kafka":
            from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

            return KafkaTelemetryMiddleware(tracer_provider=self.tracer_provider)
        if technology == "redis":
            from faststream.redis.opentelemetry import RedisTelemetryMiddleware

            return RedisTelemetryMiddleware(tracer_provider=self.tracer_provider)
        if technology == "rabbitmq":
            from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

            return RabbitTelemetryMiddleware(tracer_provider=self.tracer_provider)
        raise ConfigurationError(f"No FastStream telemetry middleware for {technology!r}")


def build_tracing(settings: Settings) -> Tracing | None:
    """Core's `Tracing` when TRACING_ENABLED, else None.

    The first call in a process that finds no tracer provider installed installs one: its
    resource's `service.name` is TRACING_SERVICE_NAME, else `OTEL_SERVICE_NAME`, else APP_NAME;
    its exporter is TRACING_EXPORTER (`otlp`: OTLP over HTTP, configured by the standard
    `OTEL_EXPORTER_OTLP_*` variables; `console`; `none`). A provider the application
    installed first (`trace.set_tracer_provider(...)`) is used as it is.

    Raises:
        MissingDependencyError: the `tracing` extra is not installed.
    """
    if not settings.tracing_enabled:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-sdk", "tracing") from exc
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        provider = TracerProvider(resource=_resource(settings))
        for processor in _processors(settings.tracing_exporter):
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        logger.debug("Tracer provider installed (exporter: %s)", settings.tracing_exporter)
    return Tracing()


def _resource(settings: Settings) -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; what it is given
    # wins over them, so APP_NAME is given only when neither names the service.
    attributes: dict[str, str] = {}
    if settings.tracing_service_name:
        attributes[SERVICE_NAME] = settings.tracing_service_name
    elif not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes[SERVICE_NAME] = settings.app_name
    return Resource.create(attributes)


def _processors(exporter: str) -> Iterator[Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingDependencyError(
                "opentelemetry-exporter-otlp-proto-http", "tracing"
            ) from exc
        # Endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_(TRACES_)*, read by it.
        yield BatchSpanProcessor(OTLPSpanExporter())
    elif exporter == "console":
        yield BatchSpanProcessor(ConsoleSpanExporter())
