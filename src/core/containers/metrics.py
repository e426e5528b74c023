"""MetricsContainer: the recorder requests, events and tasks report to (METRICS_ENABLED)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from core.auth.hashing import observe_pool, pool_load
from core.errors import MissingDependencyError
from core.ports.metrics import NO_METRICS, Metrics


def _prometheus() -> Metrics:
    # Imported here so `import core` works without the metrics extra, and so prometheus-client
    # is first imported after `core run` has set PROMETHEUS_MULTIPROC_DIR.
    try:
        from core.adapters.prometheus.metrics import PrometheusMetrics
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "prometheus_client":
            raise MissingDependencyError(
                "prometheus-client (needed by METRICS_ENABLED=true)", "metrics"
            ) from exc
        raise
    return PrometheusMetrics()


async def _recorder_lifecycle(recorder: Metrics) -> AsyncIterator[Metrics]:
    if not recorder.enabled:
        yield recorder
        return
    # The hashing pool is the process's: its gauges follow it as hashes start and finish, so
    # under several workers each one's live values are summed.
    recorder.hashing_load(*pool_load())
    stop = observe_pool(recorder.hashing_load)
    try:
        yield recorder
    finally:
        stop()
        recorder.close()


class MetricsContainer(containers.DeclarativeContainer):
    """Metrics of one app.

    - `recorder`: the `Metrics` the HTTP middleware, the consumers and the task runner report
      to, a Selector on METRICS_ENABLED: Prometheus' (prometheus-client) when true, the no-op
      `NullMetrics` when false.
    - `lifecycle`: builds the recorder when the app starts (so a missing extra fails start-up,
      not the first request), has it follow the process's password-hashing pool, and closes
      it when the app stops.

    What `/metrics` reads at scrape time (outbox rows, the task queue's streams) comes from
    the adapters the root selected; see `core.metrics`.
    """

    config = providers.Configuration(strict=True)

    recorder = providers.Selector(
        config.metrics_backend,
        prometheus=providers.Singleton(_prometheus),
        off=providers.Object(NO_METRICS),
    )

    lifecycle = providers.Resource(_recorder_lifecycle, recorder)
