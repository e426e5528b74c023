"""QuerySet vs hand-written SQLAlchemy on PostgreSQL: the framework's cost per read, as a ratio.

Times four reads of the same rows through the same engine, pool and session type:

* ``orm/hand``    ``await session.scalars(select(Post).where(...).order_by(...).limit(n))``
* ``orm/qs``      ``await Post.objects.using(session).filter(...).order_by("id").limit(n).all()``
* ``values/hand`` ``select(<columns>)`` + ``.mappings()`` -> list of dicts
* ``values/qs``   ``await Post.objects.using(session).filter(...)...values()``

The calls are interleaved one by one (the order rotates every round) after a warm-up, so drift
on a noisy machine hits every operation alike. Each call is timed as wall time
(``perf_counter_ns``) and as this thread's CPU time (``thread_time_ns``: the client-side work,
which other processes' load barely moves). ``--session fresh`` opens and closes a session per
call, as a request does; ``--session reuse`` runs every call in one session; the default runs
both. The script creates its own scratch database (``bench_qs_<random>``) and drops it at the end.

Run:
    .venv/bin/python bench/queryset.py [--database-url URL] [--rows 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Mapped

from core import Field, Model
from core.containers import build_container
from core.context import use_container
from core.settings import Settings

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class BenchPost(Model):
    __tablename__ = "bench_qs_posts"

    id: Mapped[int] = Field.pk()
    title: Mapped[str] = Field.string(max_length=200)
    body: Mapped[str] = Field.text()
    is_published: Mapped[bool] = Field.boolean(default=False)
    views: Mapped[int] = Field.integer(default=0)


Post = BenchPost
COLUMNS = (Post.id, Post.title, Post.body, Post.is_published, Post.views)
Op = Callable[[AsyncSession, int], Awaitable[list[Any]]]


# -- the four operations -----------------------------------------------------------------------
async def orm_hand(session: AsyncSession, rows: int) -> list[Any]:
    statement = select(Post).where(Post.is_published.is_(True)).order_by(Post.id).limit(rows)
    return list(await session.scalars(statement))


async def orm_qs(session: AsyncSession, rows: int) -> list[Any]:
    qs = Post.objects.using(session).filter(is_published=True).order_by("id").limit(rows)
    return await qs.all()


async def values_hand(session: AsyncSession, rows: int) -> list[Any]:
    statement = select(*COLUMNS).where(Post.is_published.is_(True)).order_by(Post.id).limit(rows)
    return [dict(row) for row in (await session.execute(statement)).mappings()]


async def values_qs(session: AsyncSession, rows: int) -> list[Any]:
    qs = Post.objects.using(session).filter(is_published=True).order_by("id").limit(rows)
    return await qs.values()


# (label, hand-written, framework)
PAIRS: tuple[tuple[str, Op, Op], ...] = (
    ("orm: .all() vs scalars(select(Post))", orm_hand, orm_qs),
    ("values: .values() vs select(cols).mappings()", values_hand, values_qs),
)


# -- measurement -------------------------------------------------------------------------------
@dataclass
class Samples:
    """Per-call wall times in ns, kept per round so the spread between rounds can be reported,
    and per-call CPU times of this thread (the client-side work, which other processes'
    load barely moves)."""

    rounds: list[list[int]] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)

    def all(self) -> list[int]:
        return [ns for round_ in self.rounds for ns in round_]


def median(values: list[int] | list[float]) -> float:
    return float(statistics.median(values))


def p90(values: list[int]) -> float:
    return float(statistics.quantiles(values, n=10, method="inclusive")[-1])


@asynccontextmanager
async def _session_for(database: Any, shared: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    if shared is not None:
        yield shared
        return
    async with database.session() as session:
        yield session


async def run(
    database: Any, *, rows: int, rounds: int, calls: int, warmup: int, reuse: bool
) -> dict[str, Samples]:
    """Time every operation `rounds * calls` times, interleaved call by call."""
    ops: list[tuple[str, Op]] = []
    for _, hand, qs in PAIRS:
        ops += [(hand.__name__, hand), (qs.__name__, qs)]
    samples = {name: Samples() for name, _ in ops}
    shared: AsyncSession | None = database.session() if reuse else None
    try:
        for _ in range(warmup):
            for _, op in ops:
                async with _session_for(database, shared) as session:
                    await op(session, rows)
        for round_no in range(rounds):
            order = ops[round_no % len(ops) :] + ops[: round_no % len(ops)]
            if round_no % 2:
                order.reverse()
            per_round: dict[str, list[int]] = {name: [] for name, _ in ops}
            gc.collect()
            for _ in range(calls):
                for name, op in order:
                    cpu_start = time.thread_time_ns()
                    start = time.perf_counter_ns()
                    async with _session_for(database, shared) as session:
                        await op(session, rows)
                    per_round[name].append(time.perf_counter_ns() - start)
                    samples[name].cpu.append(time.thread_time_ns() - cpu_start)
            for name, times in per_round.items():
                samples[name].rounds.append(times)
    finally:
        if shared is not None:
            await shared.close()
    return samples


PHASES = (
    "hand: build select()",
    "hand: execute + rows",
    "qs: Post.objects",
    "qs: .using()",
    "qs: .filter()",
    "qs: .order_by()",
    "qs: .limit()",
    "qs: repository lookup (container)",
    "qs: adapter builds select()",
    "qs: execute + rows",
)


async def breakdown(database: Any, *, rows: int, calls: int, warmup: int) -> str:
    """Where the framework's time goes: each step of one call, timed inside real calls.

    Reaches into the adapter's private helpers, so it is a diagnostic, not part of the ratio.
    Steps are timed in place (cache-cold, as in a request), which costs several times what a
    tight micro-benchmark of the same step reports.
    """
    from core.adapters.sqlalchemy import repository as adapter

    ns = time.perf_counter_ns
    times: dict[str, list[int]] = {phase: [] for phase in PHASES}
    async with database.session() as session:
        for i in range(warmup + calls):
            if i % 50 == 0:
                gc.collect()
            t0 = ns()
            statement = select(Post).where(Post.is_published.is_(True)).order_by(Post.id)
            statement = statement.limit(rows)
            t1 = ns()
            list(await session.scalars(statement))
            t2 = ns()
            qs = Post.objects
            t3 = ns()
            qs = qs.using(session)
            t4 = ns()
            qs = qs.filter(is_published=True)
            t5 = ns()
            qs = qs.order_by("id")
            t6 = ns()
            qs = qs.limit(rows)
            t7 = ns()
            qs._repository()
            t8 = ns()
            query = qs.query
            statement = adapter._windowed(adapter._filtered(select(Post), query), query)
            t9 = ns()
            list(await session.scalars(statement))
            t10 = ns()
            if i >= warmup:
                marks = (t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10)
                for phase, start, end in zip(PHASES, marks, marks[1:], strict=False):
                    times[phase].append(end - start)
    medians = {phase: median(values) / 1e3 for phase, values in times.items()}
    own = sum(v for k, v in medians.items() if k.startswith("qs:") and "execute" not in k)
    lines = [
        f"### Where the time goes ({calls} calls, medians, one session)",
        "",
        "| step | µs |",
        "|---|---:|",
        *(f"| {phase} | {value:.1f} |" for phase, value in medians.items()),
        f"| qs: everything before execute (sum) | {own:.1f} |",
        f"| qs overhead vs hand-built select (sum − hand build) | {own - medians[PHASES[0]]:.1f} |",
    ]
    return "\n".join(lines)


async def check_same_rows(database: Any, rows: int) -> None:
    """Both sides of each pair must return the same rows, or the comparison means nothing."""
    async with database.session() as session:
        hand = [p.id for p in await orm_hand(session, rows)]
        qs = [p.id for p in await orm_qs(session, rows)]
        hand_values = await values_hand(session, rows)
        qs_values = await values_qs(session, rows)
    if hand != qs or hand_values != qs_values or len(hand) != rows:
        raise SystemExit(f"Mismatch: hand-written and QuerySet read different rows ({len(hand)}).")


def report(samples: dict[str, Samples], *, title: str) -> str:
    """A Markdown table: wall median and p90 µs per call, framework / hand-written ratios, the
    spread of the ratio between rounds, and the client CPU time per call with its ratio."""
    lines = [
        f"### {title}",
        "",
        "| operation | hand median µs | qs median µs | **ratio** | hand p90 µs | qs p90 µs "
        "| ratio p90 | round ratios min–max | CPU µs hand / qs | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for label, hand, qs in PAIRS:
        h, q = samples[hand.__name__], samples[qs.__name__]
        h_all, q_all = h.all(), q.all()
        per_round = [median(qr) / median(hr) for hr, qr in zip(h.rounds, q.rounds, strict=True)]
        h_cpu, q_cpu = median(h.cpu), median(q.cpu)
        lines.append(
            f"| {label} | {median(h_all) / 1e3:.0f} | {median(q_all) / 1e3:.0f} "
            f"| **{median(q_all) / median(h_all):.3f}** "
            f"| {p90(h_all) / 1e3:.0f} | {p90(q_all) / 1e3:.0f} | {p90(q_all) / p90(h_all):.3f} "
            f"| {min(per_round):.3f}–{max(per_round):.3f} "
            f"| {h_cpu / 1e3:.0f} / {q_cpu / 1e3:.0f} | {q_cpu / h_cpu:.3f} |"
        )
    return "\n".join(lines)


# -- scratch database ----------------------------------------------------------------------------
@contextmanager
def _timer(label: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - start:.1f}s")


async def _populate(engine: Any, table_rows: int) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: Post.__table__.create(sync))  # type: ignore[attr-defined]
        await connection.execute(
            insert(Post),
            [
                {
                    "title": f"Post number {i}",
                    "body": f"Body of post {i}. " + "lorem ipsum dolor sit amet " * 8,
                    "is_published": i % 2 == 0,
                    "views": i * 7 % 1000,
                }
                for i in range(table_rows)
            ],
        )
        await connection.execute(text(f"ANALYZE {Post.__tablename__}"))


def environment() -> str:
    """What the numbers were measured on; ratios only compare within one run."""
    return (
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"asyncpg {asyncpg.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )


async def main(args: argparse.Namespace) -> None:
    print(environment())
    name = f"bench_qs_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(args.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        container = build_container(Settings(database_url=url))
        database = container.database.database()
        try:
            await _populate(database.engine, max(args.table_rows, 2 * args.rows + 2))
            with use_container(container):
                await check_same_rows(database, args.rows)
                if args.breakdown:
                    print(await breakdown(database, rows=args.rows, calls=3000, warmup=300))
                    return
                modes = ("fresh", "reuse") if args.session == "both" else (args.session,)
                for mode in modes:
                    with _timer(f"{mode} session run"):
                        samples = await run(
                            database,
                            rows=args.rows,
                            rounds=args.repeat,
                            calls=args.calls,
                            warmup=args.warmup,
                            reuse=mode == "reuse",
                        )
                    what = "a fresh session per call" if mode == "fresh" else "one session reused"
                    title = (
                        f"{args.rows} rows, {what} ({args.repeat} rounds × {args.calls} "
                        f"calls per operation, interleaved)"
                    )
                    print()
                    print(report(samples, title=title))
                    print()
        finally:
            await database.dispose()
            print(f"done; load average {os.getloadavg()[0]:.2f}")
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help="an existing PostgreSQL database to connect to (asyncpg URL)",
    )
    parser.add_argument("--rows", type=int, default=100, help="rows each call reads")
    parser.add_argument("--repeat", type=int, default=15, help="rounds")
    parser.add_argument("--calls", type=int, default=200, help="calls per operation per round")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls per operation")
    parser.add_argument("--table-rows", type=int, default=1000, help="rows in the scratch table")
    parser.add_argument(
        "--session",
        choices=("fresh", "reuse", "both"),
        default="both",
        help="a fresh session per call (request-like), one reused, or both runs",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="instead of the ratios, time each step of a QuerySet call (a diagnostic)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
