"""Prometheus metrics from real processes: `core run --workers 2` summing its workers' counts
through prometheus-client's multi-process mode, the metrics ports of `core worker` and
`core consumer` on Redis, and the Redis stream gauges read from a real Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from core.adapters.taskiq.broker import GROUP
from core.containers.core import build_container
from core.metrics import scrape_gauges
from core.ports.metrics import Gauge
from core.testing.plugin import test_settings
from tests.integration.test_scripts_send import PUBLISH, SEND_TASKS, Project, _wait_for_lines
from tests.migration_roundtrip import core_command
from tests.services import free_port, redis_prefix

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: Samples, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return samples(response.text)


def wait_until_answers(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the process exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never answered: {log.read_text()}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """`core run --workers 2` with METRICS_ENABLED=true, its output in a file."""
    project = Project(
        tmp_path,
        {"METRICS_ENABLED": "true", "LOG_LEVEL": "WARNING", "SECRET_KEY": "x" * 48},
    )
    project.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*core_command(), "run", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env=project.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_core_run_with_two_workers_sums_both_workers_counts(
    served: tuple[subprocess.Popen[bytes], Path, int],
) -> None:
    process, log, port = served
    base = f"http://127.0.0.1:{port}"
    wait_until_answers(f"{base}/health/live", process, log)
    [directory] = re.findall(
        r"Metrics: multi-process files in (\S+) \(removed at exit\)", log.read_text()
    )
    files = Path(directory)

    # New connections until both workers have answered: each writes its own counter file.
    sent = 1  # the readiness probe above
    with httpx.Client(base_url=base, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        while len(list(files.glob("counter_*.db"))) < 2 and sent < 2000:
            assert http.get("/health/live").status_code == 200
            sent += 1
        for _ in range(20):
            assert http.get("/health/live").status_code == 200
            sent += 1
    assert len(list(files.glob("counter_*.db"))) == 2, "one worker answered every request"

    # Whichever worker answers a scrape, it reports the sum over both.
    for _ in range(6):
        parsed = scrape(f"{base}/metrics")
        labels = {"method": "GET", "route": "/health/live"}
        assert value(parsed, "core_http_requests_total", **labels, status="200") == sent
        assert value(parsed, "core_http_request_duration_seconds_count", **labels) == sent
        # Each worker's own hashing pool, summed over the live workers (64 may wait in each).
        assert value(parsed, "core_password_hashing_queue_size") == 2 * 64

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert not files.exists(), "core run removes the directory it made"


@pytest.fixture
def redis_project(tmp_path: Path, redis_url: str) -> Iterator[tuple[Project, int]]:
    port = free_port()
    project = Project(
        tmp_path,
        {
            "MESSAGE_BROKER": "redis",
            "TASK_BROKER": "redis",
            "REDIS_URL": redis_url,
            "TASK_KEY_PREFIX": f"core-test-metrics:{tmp_path.name}",
            "METRICS_ENABLED": "true",
            "METRICS_PORT": str(port),
            "METRICS_HOST": "127.0.0.1",
        },
    )
    project.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        yield project, port
    finally:
        project.stop_all()
        asyncio.run(_forget(redis_url, f"core-test-metrics:{tmp_path.name}"))


async def _forget(redis_url: str, prefix: str) -> None:
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)


@pytest.mark.redis
def test_core_worker_serves_its_task_counters_on_its_metrics_port(
    redis_project: tuple[Project, int],
) -> None:
    project, port = redis_project
    project.start("worker", ready="worker: consuming")

    assert project.script(SEND_TASKS) == ["success stamped now", "success stamped later"]
    parsed = scrape(f"http://127.0.0.1:{port}/metrics")

    assert value(parsed, "core_tasks_started_total", task="script.stamp") == 2
    assert value(parsed, "core_tasks_succeeded_total", task="script.stamp") == 2
    assert value(parsed, "core_task_duration_seconds_count", task="script.stamp") == 2
    # Sent by the script, not by the worker: counted where it was sent.
    assert value(parsed, "core_tasks_enqueued_total", task="script.stamp") == 0
    # The worker acknowledged and deleted both entries: the stream is empty again.
    assert value(parsed, "core_metrics_source_up", source="task_queue") == 1
    assert ("core_task_queue_depth", frozenset({("queue", "default")})) in parsed
    assert value(parsed, "core_task_queue_depth", queue="default") == 0

    # SIGTERM stops the worker and its metrics port cleanly.
    [process] = project.processes
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


@pytest.mark.redis
async def test_core_consumer_serves_its_event_counters_on_its_metrics_port(
    redis_project: tuple[Project, int],
) -> None:
    project, port = redis_project
    project.start("consumer", ready="Waiting for events")

    assert project.script(PUBLISH) == ["published note.written"]
    await _wait_for_lines(project, "notes", 1)
    parsed = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")

    labels = {"topic": project.env["SCRIPT_TOPIC"], "group": "script-readers"}
    assert value(parsed, "core_events_handled_total", **labels) == 1
    assert value(parsed, "core_events_dead_lettered_total", **labels) == 0
    assert value(parsed, "core_event_handling_duration_seconds_count", **labels) == 1
    other = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/elsewhere")
    assert other.status_code == 404


async def _noop() -> None:
    return None


@pytest.mark.redis
async def test_the_task_queue_gauges_read_the_redis_streams(redis_url: str) -> None:
    async with redis_prefix(redis_url, "core-test-metrics") as prefix:
        container = build_container(
            test_settings(task_broker="redis", redis_url=redis_url, task_key_prefix=prefix)
        )
        queue = container.tasks.queue()
        queue.register("emails.send", _noop, queue="emails")
        queue.register("reports.build", _noop, queue="default")
        await queue.start()
        try:
            for n in range(3):
                await queue.enqueue("emails.send", [n], queue="emails")
            await queue.enqueue("reports.build", queue="default")
            await queue.enqueue("reports.build", queue="default", countdown=3600)
            # A worker of the group fetched two emails and has not acknowledged them.
            async with Redis.from_url(redis_url) as redis:
                stream = f"{prefix}:stream:emails"
                await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                await redis.xreadgroup(GROUP, "worker-1", {stream: ">"}, count=2)

            gauges = await scrape_gauges(container, limit=5)
        finally:
            await queue.stop()

    by_name: dict[str, Gauge] = {gauge.name: gauge for gauge in gauges}
    assert by_name["task_queue_depth"].values == {("emails",): 3, ("default",): 1}
    assert by_name["task_queue_pending"].values == {("emails",): 2, ("default",): 0}
    assert by_name["task_queue_delayed"].values == {("emails",): 0, ("default",): 1}
    assert by_name["metrics_source_up"].values[("task_queue",)] == 1
