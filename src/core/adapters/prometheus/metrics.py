"""PrometheusMetrics: the Metrics port on prometheus-client (needs the `metrics` extra).

One process (`core run`, `core worker`, `core consumer`): each recorder keeps its own
`CollectorRegistry`, so two apps in one process (or one test after another) never mix counts.

Several processes (`core run --workers N`, or gunicorn with PROMETHEUS_MULTIPROC_DIR set):
prometheus-client's multi-process mode. It picks its storage when it is first imported, from
PROMETHEUS_MULTIPROC_DIR: every worker writes its values to files in that directory and the
one that answers a scrape sums them all (`MultiProcessCollector`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.ports.metrics import EventOutcome, TaskOutcome
from core.ports.metrics import Gauge as ScrapedGauge

__all__ = ("MULTIPROC_ENV", "PrometheusMetrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# HTTP requests: prometheus-client's default buckets (5 ms to 10 s).
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Event handlers and tasks run longer: up to five minutes.
_WORK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

_EVENT_COUNTERS = {
    "handled": "events_handled",
    "dead_lettered": "events_dead_lettered",
    "skipped": "events_skipped",
    "failed": "events_failed",
}
_TASK_COUNTERS = {
    "success": "tasks_succeeded",
    "failure": "tasks_failed",
    "retry": "tasks_retried",
}


class PrometheusMetrics:
    """Counters and histograms of requests, events and tasks, in Prometheus' text format.

    Args:
        multiprocess_dir: the directory of prometheus-client's multi-process mode; by default
            PROMETHEUS_MULTIPROC_DIR (unset: one process).
    """

    enabled = True

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir or os.environ.get(MULTIPROC_ENV) or None
        topic_group = ("topic", "group")
        self._http_requests = Counter(
            "core_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=None,
        )
        self._http_duration = Histogram(
            "core_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            buckets=_HTTP_BUCKETS,
            registry=None,
        )
        self._events = {
            outcome: Counter(
                f"core_{name}",
                f"Event messages consumed with the outcome {outcome!r}, by topic and group.",
                topic_group,
                registry=None,
            )
            for outcome, name in _EVENT_COUNTERS.items()
        }
        self._handler_failures = Counter(
            "core_event_handler_failures",
            "Handler attempts that raised (retried or dead-lettered next), by topic and group.",
            topic_group,
            registry=None,
        )
        self._event_duration = Histogram(
            "core_event_handling_duration_seconds",
            "Time to handle one event message, retries included, by topic and group.",
            topic_group,
            buckets=_WORK_BUCKETS,
            registry=None,
        )
        self._tasks_enqueued = Counter(
            "core_tasks_enqueued", "Task runs sent to the queue, by task.", ("task",), registry=None
        )
        self._tasks_started = Counter(
            "core_tasks_started", "Task attempts started, by task.", ("task",), registry=None
        )
        self._tasks = {
            outcome: Counter(
                f"core_{name}",
                f"Task attempts that ended with {outcome!r}, by task.",
                ("task",),
                registry=None,
            )
            for outcome, name in _TASK_COUNTERS.items()
        }
        self._task_duration = Histogram(
            "core_task_duration_seconds",
            "Time one task attempt ran, by task.",
            ("task",),
            buckets=_WORK_BUCKETS,
            registry=None,
        )
        # Each process's own pool, summed over the live processes in multi-process mode (a
        # worker that exits takes its values with it: `close()`).
        self._hashing = [
            Gauge(
                f"core_password_hashing_{name}",
                documentation,
                registry=None,
                multiprocess_mode="livesum",
            )
            for name, documentation in (
                ("running", "Password hashes running in the hashing threads."),
                ("queue_length", "Password hashes waiting for a hashing thread."),
                (
                    "queue_size",
                    "Hashes that may wait before login and register answer 503 "
                    "(AUTH_HASHING_QUEUE_SIZE).",
                ),
            )
        ]
        self._recorded: list[Any] = [
            self._http_requests,
            self._http_duration,
            *self._events.values(),
            self._handler_failures,
            self._event_duration,
            self._tasks_enqueued,
            self._tasks_started,
            *self._tasks.values(),
            self._task_duration,
            *self._hashing,
        ]
        self._registry: CollectorRegistry | None = None
        if self.multiprocess_dir is None:
            self._registry = CollectorRegistry(auto_describe=True)
            for metric in self._recorded:
                self._registry.register(metric)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._http_requests.labels(method, route, str(status)).inc()
        self._http_duration.labels(method, route).observe(seconds)

    def event_processed(
        self, topic: str, group: str, outcome: EventOutcome, seconds: float
    ) -> None:
        counter = self._events.get(outcome)
        if counter is not None:
            counter.labels(topic, group).inc()
        if outcome != "skipped":
            self._event_duration.labels(topic, group).observe(seconds)

    def event_attempt_failed(self, topic: str, group: str) -> None:
        self._handler_failures.labels(topic, group).inc()

    def task_enqueued(self, task: str) -> None:
        self._tasks_enqueued.labels(task).inc()

    def task_started(self, task: str) -> None:
        self._tasks_started.labels(task).inc()

    def task_finished(self, task: str, outcome: TaskOutcome, seconds: float) -> None:
        counter = self._tasks.get(outcome)
        if counter is not None:
            counter.labels(task).inc()
        self._task_duration.labels(task).observe(seconds)

    def hashing_load(self, running: int, waiting: int, queue_size: int) -> None:
        for gauge, value in zip(self._hashing, (running, waiting, queue_size), strict=True):
            gauge.set(value)

    def expose(self, gauges: Sequence[ScrapedGauge]) -> tuple[bytes, str]:
        registry = self._registry
        if registry is None:
            # A fresh registry per scrape, as prometheus-client's multi-process docs say: the
            # collector reads every process's files each time.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=self.multiprocess_dir
            )
        body = generate_latest(registry)
        if gauges:
            scraped = CollectorRegistry(auto_describe=False)
            scraped.register(_Gauges(gauges))
            body += generate_latest(scraped)
        return body, CONTENT_TYPE_LATEST

    def close(self) -> None:
        if self.multiprocess_dir is not None:
            # Drops this process's live gauges' files; counters and histograms are kept, so
            # a worker that exits does not take its counts with it.
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), self.multiprocess_dir
            )


class _Gauges(Collector):
    """The values read at scrape time, as gauge families."""

    def __init__(self, gauges: Sequence[ScrapedGauge]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        for gauge in self._gauges:
            family = GaugeMetricFamily(
                f"core_{gauge.name}", gauge.documentation, labels=list(gauge.labels)
            )
            for labels, value in gauge.values.items():
                family.add_metric(list(labels), value)
            yield family
