"""Metrics port: what the framework records about requests, events and tasks, and how the
values read at scrape time are exposed.

The framework calls a `Metrics` on its hot paths (every request, event and task run), so an
implementation records in memory and returns at once; it never does I/O there. Values that
live elsewhere (outbox rows, Redis streams) are read when a scraper asks and handed to
`expose` as `Gauge`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ("NO_METRICS", "EventOutcome", "Gauge", "Metrics", "NullMetrics", "TaskOutcome")

#: How one event message ended: its handler succeeded (`handled`), it went to the dead-letter
#: topic (`dead_lettered`), the group has no handler for it and skips such events (`skipped`),
#: or even the dead-letter topic could not be reached and the broker will redeliver (`failed`).
EventOutcome = str
#: How one task attempt ended: `success`, `failure` (for good), or `retry` (another attempt
#: was enqueued).
TaskOutcome = str


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value read at scrape time: `name` (without the `core_` prefix), help text, and one
    value per label set (`{(("queue", "default"),): 3.0}`; `()` for a gauge without labels)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)


@runtime_checkable
class Metrics(Protocol):
    """Records what the framework does, for a scraper to read.

    Every recording method returns at once and never raises: a metrics problem must not fail
    a request, an event or a task. Label values are bounded by construction (a route template,
    never a raw path; a declared task or topic name).
    """

    @property
    def enabled(self) -> bool:
        """False for the no-op recorder: nothing is exposed."""
        ...

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: its method, route template, status and duration."""
        ...

    def event_processed(
        self, topic: str, group: str, outcome: EventOutcome, seconds: float
    ) -> None:
        """One event message of `topic` finished in consumer `group` (retries included)."""
        ...

    def event_attempt_failed(self, topic: str, group: str) -> None:
        """A handler attempt raised (whether it is retried or dead-lettered next)."""
        ...

    def task_enqueued(self, task: str) -> None:
        """A run of `task` was sent to the queue (`delay`, `apply_async`, a periodic tick)."""
        ...

    def task_started(self, task: str) -> None:
        """An attempt of `task` started in this process."""
        ...

    def task_finished(self, task: str, outcome: TaskOutcome, seconds: float) -> None:
        """An attempt of `task` ended with `outcome` after `seconds`."""
        ...

    def hashing_load(self, running: int, waiting: int, queue_size: int) -> None:
        """This process's password-hashing pool changed: hashes running, hashes waiting for a
        thread, and how many may wait."""
        ...

    def expose(self, gauges: Sequence[Gauge]) -> tuple[bytes, str]:
        """The exposition body (every recorded value, then `gauges`) and its content type."""
        ...

    def close(self) -> None:
        """The process is done recording (multi-process mode forgets its live values)."""
        ...


class NullMetrics:
    """The recorder when METRICS_ENABLED is off: records nothing, exposes nothing."""

    enabled = False

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        return None

    def event_processed(
        self, topic: str, group: str, outcome: EventOutcome, seconds: float
    ) -> None:
        return None

    def event_attempt_failed(self, topic: str, group: str) -> None:
        return None

    def task_enqueued(self, task: str) -> None:
        return None

    def task_started(self, task: str) -> None:
        return None

    def task_finished(self, task: str, outcome: TaskOutcome, seconds: float) -> None:
        return None

    def hashing_load(self, running: int, waiting: int, queue_size: int) -> None:
        return None

    def expose(self, gauges: Sequence[Gauge]) -> tuple[bytes, str]:
        return b"", "text/plain; charset=utf-8"

    def close(self) -> None:
        return None


#: The shared no-op recorder (it holds no state).
NO_METRICS = NullMetrics()
