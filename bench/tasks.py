"""Task throughput: `@task` + `.delay()` + `core worker` vs raw Taskiq `.kiq()` + `taskiq worker`.

Both sides run a no-op task (`async def noop(n: int) -> int: return n`) through the same Redis,
with results stored in Redis as JSON, one worker process each with the same concurrency:

* ``core``  ``await noop.delay(n)`` from a CoreApp (TASK_BROKER=redis) in this process; the
  task runs in a ``core worker`` subprocess started in a temporary project. Every run goes
  through the framework's layer: argument checks, retry/timeout wrapper, a unit of work
  (a session of DATABASE_URL), results keyed by task id.
* ``raw``   ``await noop.kiq(n)`` on a taskiq-redis ``RedisStreamBroker`` with a
  ``RedisAsyncResultBackend`` (JSON serializer); the task runs in a ``taskiq worker``
  subprocess (``--ack-type when_saved``, as the framework acknowledges).

Per round and side: send N tasks one after another (``enqueue/s`` = N / sending time) while
the worker consumes them, then wait until N results are stored (``completed/s`` = N / time
from the first send to the last result). It also records the CPU time per task of the sender
(this thread) and of the worker process (/proc/<pid>/stat), which other load on the machine
barely moves: raw CPU / core CPU is the throughput ratio at equal CPU. The sides alternate
over the rounds (core, raw, raw, core, ...) so drift on a noisy machine hits both alike;
medians are reported with the ratios, and so are the ratios within each round (both sides
back to back, under the same load): their median and spread. Each side uses its own key
prefix, deleted at the end.

Run (about a minute with the defaults):
    .venv/bin/python bench/tasks.py [--tasks 3000] [--rounds 4] [--concurrency 4]
        [--redis-url redis://127.0.0.1:6379/0]
        [--database-url sqlite+aiosqlite:///... | --postgres postgresql+asyncpg://.../postgres]

With `--postgres ADMIN_URL` the core side's DATABASE_URL is a `bench_tasks_<random>` database
created through ADMIN_URL for the run and dropped at its end. The bench prints the versions
it ran with (Python, Redis server, taskiq, taskiq-redis, redis-py, SQLAlchemy, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CORE_PROJECT = """
    from core import CoreApp
    from core.tasks import task


    @task(name="bench.noop")
    async def noop(n: int) -> int:
        return n


    app = CoreApp()
"""

RAW_MODULE = """
    import os

    from taskiq.serializers import JSONSerializer
    from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

    URL = os.environ["BENCH_REDIS_URL"]
    PREFIX = os.environ["BENCH_RAW_PREFIX"]

    broker = RedisStreamBroker(
        URL, queue_name=f"{PREFIX}:stream", consumer_group_name="bench"
    ).with_result_backend(
        RedisAsyncResultBackend(URL, prefix_str=f"{PREFIX}:result", serializer=JSONSerializer())
    )


    @broker.task(task_name="bench.noop")
    async def noop(n: int) -> int:
        return n
"""


SIDES = ("core", "raw")

# What the results depend on, printed with them.
PACKAGES = (
    "taskiq",
    "taskiq-redis",
    "taskiq-dependencies",
    "redis",
    "hiredis",
    "faststream",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "pydantic",
    "pydantic-core",
    "anyio",
    "dependency-injector",
)


async def versions(redis: Redis) -> str:
    """Python, the Redis server, the packages in PACKAGES and the commit of this tree."""
    info = await redis.info("server")
    return ", ".join(
        [
            f"Python {platform.python_version()}",
            f"Redis server {info.get('redis_version')}",
            *package_versions(),
        ]
    )


def package_versions() -> list[str]:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        found.append(f"core at {commit}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return found


@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A `bench_tasks_<random>` PostgreSQL database made through `admin_url` (used for
    nothing else) and dropped at the end; yields its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bench_tasks_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@dataclass
class Run:
    side: str
    enqueue_rate: float
    completion_rate: float
    send_cpu_us: float
    worker_cpu_us: float


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) the process and its children used so far.

    Children count because `taskiq worker` runs its worker in a child process.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for thread in Path(f"/proc/{pid}/task").iterdir():
        for child in (thread / "children").read_text().split():
            total += process_cpu(int(child))
    return total


async def stored(redis: Redis, keys: list[str]) -> int:
    """How many of `keys` exist: one EXISTS per 1000 keys, never a scan of the keyspace (which
    grows with every round and would load Redis more and more as the run goes on)."""
    count = 0
    for start in range(0, len(keys), 1000):
        count += await redis.exists(*keys[start : start + 1000])
    return count


async def measure(
    side: str,
    send: Callable[[int], Awaitable[Any]],
    redis: Redis,
    prefix: str,
    tasks: int,
    offset: int,
    worker_pid: int,
) -> Run:
    """Send `tasks` runs with `send`, then wait for their results under `prefix`."""
    worker_cpu = process_cpu(worker_pid)
    ids: list[Any] = []
    start, start_cpu = time.perf_counter(), time.thread_time()
    for n in range(offset, offset + tasks):
        ids.append(await send(n))
    sent, send_cpu = time.perf_counter(), time.thread_time() - start_cpu
    # `.delay()` returns the task id, `.kiq()` a handle holding it.
    keys = [f"{prefix}:result:{getattr(task_id, 'task_id', task_id)}" for task_id in ids]
    while await stored(redis, keys) < tasks:  # noqa: ASYNC110 (polls Redis)
        await asyncio.sleep(0.01)
    done = time.perf_counter()
    return Run(
        side,
        tasks / (sent - start),
        tasks / (done - start),
        send_cpu / tasks * 1e6,
        (process_cpu(worker_pid) - worker_cpu) / tasks * 1e6,
    )


def start_process(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    database = parser.add_mutually_exclusive_group()
    database.add_argument(
        "--database-url",
        default=None,
        help="DATABASE_URL of the core side (a SQLite file in the temporary project by default)",
    )
    database.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        default=None,
        help="run the core side on a scratch PostgreSQL database made through ADMIN_URL "
        "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres), dropped at the end",
    )
    parser.add_argument(
        "--worker-src",
        type=Path,
        default=ROOT / "src",
        help="the `src` folder the core worker imports Core from: another checkout's, to "
        "compare code versions (e.g. a `git worktree` of an older commit); this tree's by default",
    )
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="core-bench-tasks-"))
    if options.postgres is None:
        await run(options, work, options.database_url or f"sqlite+aiosqlite:///{work}/app.db")
        return
    async with scratch_database(options.postgres) as database_url:
        await run(options, work, database_url)


async def run(options: argparse.Namespace, work: Path, database_url: str) -> None:
    run_id = uuid.uuid4().hex[:8]
    core_prefix, raw_prefix = f"bench-core-{run_id}", f"bench-raw-{run_id}"
    (work / "src").mkdir()
    (work / "src" / "__init__.py").write_text("")
    (work / "src" / "main.py").write_text(textwrap.dedent(CORE_PROJECT))
    (work / "bench_raw.py").write_text(textwrap.dedent(RAW_MODULE))
    settings = {
        "TASK_BROKER": "redis",
        "REDIS_URL": options.redis_url,
        "TASK_KEY_PREFIX": core_prefix,
        "DATABASE_URL": database_url,
        # The app refuses to start without a signing key; the bench signs nothing with it.
        "SECRET_KEY": secrets.token_urlsafe(48),
    }
    env = {
        **os.environ,
        **settings,
        "BENCH_REDIS_URL": options.redis_url,
        "BENCH_RAW_PREFIX": raw_prefix,
        "PYTHONPATH": f"{work}{os.pathsep}{options.worker_src.resolve()}",
    }
    os.environ.update(env)
    sys.path.insert(0, str(work))

    import bench_raw  # type: ignore[import-not-found]

    from core import CoreApp
    from core.settings import Settings
    from core.tasks import task

    @task(name="bench.noop")
    async def core_noop(n: int) -> int:
        raise AssertionError("runs in the worker")

    concurrency = str(options.concurrency)
    # Built before the workers start: a settings error must not leave them running.
    app = CoreApp(settings=Settings(_env_file=None, **{k.lower(): v for k, v in settings.items()}))
    workers = [
        start_process(
            [str(BIN / "core"), "worker", "--queue", "default", "--concurrency", concurrency],
            work,
            env,
        ),
        start_process(
            [
                str(BIN / "taskiq"),
                "worker",
                "bench_raw:broker",
                "--workers",
                "1",
                "--max-async-tasks",
                concurrency,
                "--ack-type",
                "when_saved",
                "--no-configure-logging",
            ],
            work,
            env,
        ),
    ]
    runs: list[Run] = []
    ran_with = ""
    try:
        async with Redis.from_url(options.redis_url) as redis, app.lifespan():
            ran_with = await versions(redis)
            print(ran_with, flush=True)
            await bench_raw.broker.startup()
            sides: dict[str, tuple[Callable[[int], Awaitable[Any]], str, int]] = {
                "core": (core_noop.delay, core_prefix, workers[0].pid),
                "raw": (bench_raw.noop.kiq, raw_prefix, workers[1].pid),
            }
            # Warm-up: both workers up and connected, code paths loaded.
            for name, (send, prefix, pid) in sides.items():
                await measure(name, send, redis, prefix, 200, 0, pid)
            offset = 1000
            for round_number in range(options.rounds):
                order = ("core", "raw") if round_number % 2 == 0 else ("raw", "core")
                for name in order:
                    send, prefix, pid = sides[name]
                    run = await measure(name, send, redis, prefix, options.tasks, offset, pid)
                    runs.append(run)
                    offset += options.tasks
                    print(
                        f"round {round_number + 1:2} {name:4}  enqueued {run.enqueue_rate:6.0f}/s"
                        f"  completed {run.completion_rate:6.0f}/s  send CPU "
                        f"{run.send_cpu_us:5.0f} us  worker CPU {run.worker_cpu_us:5.0f} us/task",
                        flush=True,
                    )
            await bench_raw.broker.shutdown()
            for prefix in (core_prefix, raw_prefix):
                keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=5000)]
                for start in range(0, len(keys), 1000):
                    await redis.delete(*keys[start : start + 1000])
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def median(side: str, metric: str) -> float:
        return statistics.median(getattr(run, metric) for run in runs if run.side == side)

    # Each round ran both sides back to back: the ratio within a round compares them under the
    # same load, which drifts a lot on a shared machine from one round to the next.
    def round_ratios(metric: str) -> list[float]:
        by_side = {side: [getattr(r, metric) for r in runs if r.side == side] for side in SIDES}
        return [core / raw for core, raw in zip(by_side["core"], by_side["raw"], strict=True)]

    print()
    print(
        f"{options.tasks} no-op tasks x {options.rounds} rounds per side, worker concurrency "
        f"{options.concurrency}, core DATABASE_URL {database_url.split(':')[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(ran_with)
    if options.worker_src.resolve() != (ROOT / "src").resolve():
        print(f"core worker imported from {options.worker_src}")
    print(
        "| metric (median) | core `.delay()` | raw Taskiq `.kiq()` | core vs raw "
        "| per-round ratio: median (min–max) |"
    )
    print("|---|---:|---:|---:|---|")
    for metric, label in (("enqueue_rate", "enqueued/s"), ("completion_rate", "completed/s")):
        core_value, raw_value = median("core", metric), median("raw", metric)
        ratios = round_ratios(metric)
        print(
            f"| {label} | {core_value:.0f} | {raw_value:.0f} | {core_value / raw_value:.2f} "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |"
        )
    # CPU per task barely moves with other load on the machine; its inverse is the rate one
    # core could sustain, so raw/core is the throughput ratio at equal CPU.
    for metric, label in (
        ("send_cpu_us", "sender CPU per task (us)"),
        ("worker_cpu_us", "worker CPU per task (us)"),
    ):
        core_value, raw_value = median("core", metric), median("raw", metric)
        ratios = [1 / ratio for ratio in round_ratios(metric)]
        print(
            f"| {label} | {core_value:.0f} | {raw_value:.0f} | {raw_value / core_value:.2f} "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |"
        )


if __name__ == "__main__":
    asyncio.run(main())
