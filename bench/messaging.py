"""publish_event vs raw FastStream publish on the same broker, and the outbox's end-to-end rate.

Part 1, **publish**: events/s through the framework's `publish_event` (outside a unit of work, so
straight to the broker: envelope, JSON, adapter) against a hand-written FastStream producer
(`await broker.publish(data, stream=...)` / `topic`) on the same server, in one run; and against
the same producer sending a hand-made envelope (id, name, time), the least a service needs to make
its events identifiable. The sides take turns publish by publish after a warm-up, one awaited
publish at a time, then in batches of `--concurrency` concurrent publishes. Rates are 1 / the
median latency; the headline is framework / raw (1.0 = as fast; the target is >= 0.9). The
median CPU time of this thread per publish is the steadier cross-check on a busy machine.

Part 2, **outbox**: `--events` events written by `publish_event` inside units of work
(`--per-transaction` per commit) on the database (a SQLite file by default; with
`--database-url`, a scratch PostgreSQL database made from it and dropped at the end), relayed by
the app's background relay and consumed by an in-process `@consumer` on the same broker: events/s
from the first write to the last event handled. Then `--events` rows written first and relayed
by one `relay.flush()`: the relay's own rate.

Run:
    .venv/bin/python bench/messaging.py                                  # Redis on localhost
    .venv/bin/python bench/messaging.py --broker kafka --url 127.0.0.1:9092
    .venv/bin/python bench/messaging.py --database-url postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import CoreApp  # noqa: E402
from core.context import use_container  # noqa: E402
from core.messaging import (  # noqa: E402
    ConsumerSelection,
    Event,
    consumer,
    on_event,
    publish_event,
)
from core.testing import test_settings  # noqa: E402

DEFAULT_URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "kafka": "127.0.0.1:9092",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
}
DATA = {"id": 12345, "email": "new@example.com", "name": "Ann Example", "active": True}


# -- part 1: publish_event vs raw FastStream ---------------------------------------------------
def raw_broker(kind: str, url: str) -> Any:
    """A hand-written FastStream producer, as an app without the framework would have."""
    import logging

    if kind == "redis":
        from faststream.redis import RedisBroker

        return RedisBroker(url, log_level=logging.DEBUG)
    if kind == "kafka":
        from faststream.kafka import KafkaBroker

        return KafkaBroker(url, log_level=logging.DEBUG)
    from faststream.rabbit import RabbitBroker

    return RabbitBroker(url, log_level=logging.DEBUG)


def raw_publisher(kind: str, broker: Any, topic: str) -> Callable[[Any], Awaitable[Any]]:
    if kind == "redis":
        return lambda body: broker.publish(body, stream=topic, headers={"event": "user.updated"})
    if kind == "kafka":
        return lambda body: broker.publish(body, topic, headers={"event": "user.updated"})
    from faststream.rabbit import ExchangeType, RabbitExchange

    exchange = RabbitExchange(topic, type=ExchangeType.TOPIC, durable=True)
    return lambda body: broker.publish(body, exchange=exchange, headers={"event": "user.updated"})


def envelope() -> dict[str, Any]:
    """What a hand-written service sends to make an event identifiable: id, name, time."""
    return {
        "id": str(uuid.uuid4()),
        "name": "user.updated",
        "data": DATA,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def app_for(kind: str, url: str, **settings: Any) -> CoreApp:
    key = {"kafka": "kafka_bootstrap_servers", "redis": "redis_url"}.get(kind, "rabbitmq_url")
    return CoreApp(settings=test_settings(message_broker=kind, **{key: url}, **settings))


async def interleaved(
    sides: dict[str, Callable[[], Awaitable[Any]]], calls: int, concurrency: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-operation wall and CPU times in µs, the sides taking turns op by op (order
    rotating), so drift on a busy machine hits them alike. With concurrency > 1 an operation
    is a batch of that many concurrent publishes, and its times are divided by the batch size.
    CPU time is this thread's (the client's work, the event loop's included): other processes
    barely move it, so it is the steadier cross-check on a busy machine."""
    timings: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides.items())
    for step in range(calls // concurrency):
        rotated = order[step % len(order) :] + order[: step % len(order)]
        for name, publish in rotated if step % 2 else reversed(rotated):
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            if concurrency == 1:
                await publish()
            else:
                await asyncio.gather(*(publish() for _ in range(concurrency)))
            cpu[name].append((time.thread_time_ns() - start_cpu) / 1_000 / concurrency)
            timings[name].append((time.perf_counter_ns() - start) / 1_000 / concurrency)
    return timings, cpu


async def bench_publish(args: argparse.Namespace) -> list[str]:
    kind, url = args.broker, args.url
    topic = f"bench-msg-{uuid.uuid4().hex[:8]}"
    app = app_for(kind, url)
    raw = raw_broker(kind, url)
    await raw.connect()
    framework_broker: Any = app.container.messaging.broker()
    if kind in ("kafka", "rabbitmq"):
        await framework_broker.create_topic(topic)
    raw_publish = raw_publisher(kind, raw, topic)
    sides: dict[str, Callable[[], Awaitable[Any]]] = {
        "publish_event": lambda: publish_event("user.updated", data=DATA, topic=topic),
        "raw": lambda: raw_publish(DATA),
        "raw+envelope": lambda: raw_publish(envelope()),
    }

    lines: list[str] = []
    with use_container(app.container):
        for concurrency in (1, args.concurrency):
            label = "one at a time" if concurrency == 1 else f"{concurrency} concurrent"
            await interleaved(sides, args.warmup, concurrency)
            gc.collect()
            timings, cpu = await interleaved(sides, args.calls, concurrency)
            rate = {name: 1e6 / statistics.median(values) for name, values in timings.items()}
            cpu_us = {name: statistics.median(values) for name, values in cpu.items()}
            lines.append(
                f"| {kind} | {label} | {rate['publish_event']:,.0f} | {rate['raw']:,.0f} "
                f"| **{rate['publish_event'] / rate['raw']:.2f}** | {rate['raw+envelope']:,.0f} "
                f"| {rate['publish_event'] / rate['raw+envelope']:.2f} "
                f"| {cpu_us['publish_event']:.0f} / {cpu_us['raw']:.0f} "
                f"| {cpu_us['raw'] / cpu_us['publish_event']:.2f} |"
            )
    await framework_broker.stop()
    await raw.stop()
    await drop_stream(kind, url, topic)
    return lines


async def drop_stream(kind: str, url: str, topic: str) -> None:
    """Redis keeps streams after use: leave the server as it was."""
    if kind == "redis":
        from redis.asyncio import Redis

        client: Any = Redis.from_url(url)
        await client.delete(topic)
        await client.aclose()


# -- part 2: the outbox end to end -------------------------------------------------------------
async def bench_outbox(args: argparse.Namespace, database_url: str) -> list[str]:
    kind, url = args.broker, args.url
    topic, group = f"bench-outbox-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:6]}"
    handled = 0
    done = asyncio.Event()

    @consumer(group, topics=[topic])
    class Counter:
        @on_event("order.created")
        async def count(self, event: Event, db: Any) -> None:
            nonlocal handled
            handled += 1
            if handled >= args.events:
                done.set()

    app = app_for(
        kind,
        url,
        database_url=database_url,
        consumers_in_process=True,
        outbox_batch_size=args.batch_size,
    )
    app.container.messaging.runtime().consumers = ConsumerSelection(groups=frozenset({group}))
    if kind == "kafka":
        await app.container.messaging.broker().create_topic(topic)
    lines: list[str] = []
    await app.create_all()
    async with app.lifespan():
        await asyncio.sleep(1.0 if kind != "kafka" else 3.0)  # consumer group joins settle
        start = time.perf_counter()
        with use_container(app.container):
            for first in range(0, args.events, args.per_transaction):
                async with app.session():
                    for n in range(first, min(first + args.per_transaction, args.events)):
                        await publish_event("order.created", data={"n": n}, topic=topic)
        written = time.perf_counter() - start
        await asyncio.wait_for(done.wait(), timeout=300)
        total = time.perf_counter() - start
        lines.append(
            f"| write {args.events} events ({args.per_transaction} per commit), relay, consume "
            f"| {args.events / total:,.0f} events/s | writes alone: "
            f"{args.events / written:,.0f} events/s |"
        )

        # The relay's own rate: rows already committed, one flush.
        relay = app.container.messaging.runtime().relay
        await relay.stop()
        with use_container(app.container):
            for first in range(0, args.events, args.per_transaction):
                async with app.session():
                    for n in range(first, min(first + args.per_transaction, args.events)):
                        await publish_event("order.relayed", data={"n": n}, topic=topic)
        start = time.perf_counter()
        sent = await relay.flush()
        elapsed = time.perf_counter() - start
        lines.append(
            f"| relay {sent} committed rows (batches of {args.batch_size}) "
            f"| {sent / elapsed:,.0f} events/s | |"
        )
    await drop_stream(kind, url, topic)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=sorted(DEFAULT_URLS), default="redis")
    parser.add_argument("--url", help="the broker's address (defaults per broker)")
    parser.add_argument("--calls", type=int, default=5_000, help="timed publishes per side")
    parser.add_argument("--warmup", type=int, default=500, help="untimed publishes per side")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--per-transaction", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database to create the scratch one from (default: a SQLite file)",
    )
    parser.add_argument("--skip-outbox", action="store_true")
    args = parser.parse_args()
    args.url = args.url or DEFAULT_URLS[args.broker]

    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, broker {args.broker} at "
        f"{args.url}; {args.calls} timed publishes per side, interleaved"
    )
    print()
    print(
        "| broker | mode | publish_event ev/s | raw FastStream ev/s | ratio "
        "| raw + hand-made envelope ev/s | ratio | CPU µs/event, publish_event / raw "
        "| CPU ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for line in await bench_publish(args):
        print(line, flush=True)
    if args.skip_outbox:
        return
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_database(args.database_url, folder) as database_url:
            scheme = database_url.split(":", 1)[0]
            print()
            print(f"Outbox end to end on {scheme}, broker {args.broker}:")
            print()
            print("| what | rate | |")
            print("|---|---:|---|")
            for line in await bench_outbox(args, database_url):
                print(line, flush=True)


@asynccontextmanager
async def scratch_database(admin_url: str | None, folder: str) -> AsyncIterator[str]:
    """A SQLite file in `folder`, or a `bench_msg_<random>` PostgreSQL database made (and
    dropped at the end) through `admin_url`, which is used for nothing else."""
    if admin_url is None:
        yield f"sqlite+aiosqlite:///{folder}/bench.db"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bench_msg_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
