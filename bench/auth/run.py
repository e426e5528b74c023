"""Auth bench: does login hashing stall the other requests of the event loop?

From the issue: p99 of ``GET /posts/{id}/`` alone (phase A), then while logins run at a fixed
rate with the default hasher (phase B: pbkdf2_sha256, 600 000 rounds, run by
``core.auth.hashing.run_hasher`` on its thread pool), then the same with hashing forced onto the
event loop (phase C). Off the loop the p99 must stay within 3x of its value without logins.

Method (bench/auth/README.md has the details and the results):

* Measure one ``verify``'s CPU time here, and choose the login rate so hashing uses about half
  of one core: ``rate = --core-share / cpu_per_verify`` (``--login-rate`` overrides it).
* Check that hashlib's pbkdf2 releases the GIL: the largest stall of an asyncio ticker in this
  process while verifies run in the hashing pool, and while they run on the loop.
* Seed a SQLite file (WAL) in a temporary directory: 1000 posts, a few users made with
  ``User.create_user`` (so their hashes are the real thing).
* Start bench/auth/app.py twice under uvicorn (1 worker, options of bench/http), pinned to
  ``--server-cpus`` (default CPU 0, as bench/http does): one with the default hashing, one
  with ``CORE_BENCH_HASH_ON_LOOP=1``. Each is warmed up.
* Rounds of the three phases, order rotated each round (A B C / B C A / C A B). Each phase is
  ``wrk -t1 -c8 -d10s --latency`` on random ``/posts/<id>/`` (bench/http's ``run_wrk``: pinned
  to CPU 1, every status checked). In B and C, bench/auth/login_driver.py (its own process,
  pinned to CPU 1) sends logins open-loop at the chosen rate, starting 1 s before wrk and
  stopping 1 s after it, and checks each answers 200 with a token.
* Report medians over rounds of GET p50/p99 and req/s, login latency, the ratios B/A and C/A of
  p99, and the hashing CPU the server really spent (from the app's ``/bench/hashing/`` probe).
  PASS when B p99 <= 3 x A p99 (medians) and nothing failed.

Run (about 2 minutes with the defaults):
    .venv/bin/python bench/auth/run.py [--duration 10] [--rounds 3] [--connections 8]
        [--login-rate auto] [--core-share 0.5] [--server-cpus 0] [--hash-threads N]
        [--gc-freeze] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
PORTS = {"off_loop": 8791, "on_loop": 8792}
PASSWORD = "bench-login-password-42"
WRK_CPU = "1"
CRITERION = 3.0
PHASES = ("A", "B", "C")
PHASE_TEXT = {
    "A": "GET alone",
    "B": "GET + logins, hashing off the loop (default)",
    "C": "GET + logins, hashing on the loop",
}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# bench/http/run.py: uvicorn options, Server, stop_server, http(), process_cpu, Run, run_wrk.
bench_http: Any = _load("bench_http_run", HERE.parent / "http" / "run.py")


# -- before the servers: one verify's CPU time, and the GIL ------------------------------------
def verify_cpu_seconds(samples: int = 7) -> tuple[float, float]:
    """(median, min) CPU seconds of one pbkdf2_sha256 verify, by the app's hasher adapter."""
    from core.adapters.passlib.hashers import PasslibPasswordHasher

    hasher = PasslibPasswordHasher("pbkdf2_sha256")
    hashed = hasher.hash(PASSWORD)
    times = []
    for _ in range(samples):
        started = time.thread_time()
        if not hasher.verify(PASSWORD, hashed):
            raise SystemExit("the hasher does not verify its own hash")
        times.append(time.thread_time() - started)
    return statistics.median(times), min(times)


async def _max_stall_ms(work: Callable[[], Awaitable[None]]) -> float:
    """The largest delay of a 1 ms asyncio ticker beyond its 1 ms while `work` runs."""
    loop = asyncio.get_running_loop()
    stall = 0.0
    done = False

    async def ticker() -> None:
        nonlocal stall
        while not done:
            before = loop.time()
            await asyncio.sleep(0.001)
            stall = max(stall, (loop.time() - before - 0.001) * 1000)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await work()
    done = True
    await task
    return stall


def gil_check(verifies: int = 3) -> dict[str, float]:
    """Max loop stall (ms) while `verifies` verifies run in run_hasher's pool vs on the loop.

    In this (unpinned) process the pool thread has a core of its own, so a stall near the length
    of a verify can only come from the GIL.
    """
    from core.adapters.passlib.hashers import PasslibPasswordHasher
    from core.auth.hashing import run_hasher

    hasher = PasslibPasswordHasher("pbkdf2_sha256")
    hashed = hasher.hash(PASSWORD)

    async def off_loop() -> None:
        for _ in range(verifies):
            await run_hasher(hasher.verify, PASSWORD, hashed)
            await asyncio.sleep(0.01)

    async def on_loop() -> None:
        for _ in range(verifies):
            hasher.verify(PASSWORD, hashed)
            await asyncio.sleep(0.01)  # let the ticker run between verifies

    async def both() -> dict[str, float]:
        await off_loop()  # start the pool's thread
        return {
            "off_loop_stall_ms": await _max_stall_ms(off_loop),
            "on_loop_stall_ms": await _max_stall_ms(on_loop),
        }

    return asyncio.run(both())


# -- database -----------------------------------------------------------------------------------
def seed(directory: Path, rows: int, users: int) -> tuple[str, list[str]]:
    """Create the tables with the app's models; 1000 posts by SQL, users by `create_user`."""
    path = directory / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never wait for last_login
    os.environ["DATABASE_URL"] = url
    bench_app: Any = _load("bench_auth_app", HERE / "app.py")
    emails = [f"user{i}@bench.example.com" for i in range(users)]

    async def make() -> None:
        async with bench_app.app.lifespan():
            await bench_app.app.create_all()
            async with bench_app.app.session() as session:
                for email in emails:
                    await bench_app.User.create_user(email=email, password=PASSWORD, db=session)

    asyncio.run(make())
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executemany(
            "INSERT INTO bench_posts (id, title, content, is_published, views)"
            " VALUES (?, ?, ?, ?, ?)",
            bench_http.seed_rows(rows),
        )
        db.commit()
        count = db.execute("SELECT count(*) FROM bench_users").fetchone()[0]
    if count != users:
        raise SystemExit(f"seeded {count} users, wanted {users}")
    return url, emails


# -- servers ------------------------------------------------------------------------------------
def start_server(
    mode: str, url: str, logs: Path, cpus: str, hash_threads: int, gc_freeze: bool
) -> Any:
    """bench/auth/app.py under uvicorn with bench/http's options; `mode` off_loop or on_loop."""
    port = PORTS[mode]
    log = logs / f"{mode}.log"
    command = [
        *(["taskset", "-c", cpus] if shutil.which("taskset") else []),
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *bench_http.server_options(),
    ]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CORE_BENCH_HASH_ON_LOOP": "1" if mode == "on_loop" else "0",
        "CORE_BENCH_HASH_THREADS": str(hash_threads or ""),
        "CORE_BENCH_GC_FREEZE": "1" if gc_freeze else "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = bench_http.Server(mode, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{mode} exited at start:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, _ = bench_http.http("GET", f"{server.base}/posts/1/")
            if status == 200:
                _, stats = bench_http.http("GET", f"{server.base}/bench/hashing/")
                if stats["on_loop"] != (mode == "on_loop"):
                    raise RuntimeError(f"{mode}: the app reports on_loop={stats['on_loop']}")
                return server
        time.sleep(0.2)
    bench_http.stop_server(server)
    raise RuntimeError(f"{mode} did not answer within 30 s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def servers(
    url: str, logs: Path, cpus: str, hash_threads: int, gc_freeze: bool
) -> Iterator[dict[str, Any]]:
    started: dict[str, Any] = {}
    try:
        for mode in PORTS:
            started[mode] = start_server(mode, url, logs, cpus, hash_threads, gc_freeze)
        yield started
    finally:
        for server in started.values():
            bench_http.stop_server(server)


def hashing_stats(server: Any) -> tuple[dict[str, int], float]:
    """(calls per thread name, total hashing CPU seconds) since the server started."""
    status, stats = bench_http.http("GET", f"{server.base}/bench/hashing/")
    if status != 200:
        raise RuntimeError(f"/bench/hashing/ answered {status}")
    return stats["calls"], sum(stats["cpu_seconds"].values())


# -- one phase ----------------------------------------------------------------------------------
@dataclass
class Phase:
    phase: str
    round: int
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    get_errors: int = 0
    server_cpu_share: float = 0.0  # server CPU seconds / wall seconds during wrk
    logins_sent: int = 0
    logins_ok: int = 0
    login_rate: float = 0.0  # achieved
    login_p50_ms: float = 0.0
    login_p99_ms: float = 0.0
    login_max_ms: float = 0.0
    send_lag_max_ms: float = 0.0
    hash_calls: int = 0
    hash_cpu_share: float = 0.0  # hashing CPU seconds / the sending window (sent / rate)
    hash_threads: list[str] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_phase(
    phase: str,
    index: int,
    started: dict[str, Any],
    emails: list[str],
    args: argparse.Namespace,
) -> Phase:
    seconds = args.duration
    server = started["on_loop" if phase == "C" else "off_loop"]
    result = Phase(phase, index)
    driver: subprocess.Popen[str] | None = None
    lead = 1.0
    if phase != "A":
        start_at = time.time() + 0.5
        calls_before, cpu_before = hashing_stats(server)
        driver = subprocess.Popen(
            [
                *(["taskset", "-c", WRK_CPU] if shutil.which("taskset") else []),
                sys.executable,
                str(HERE / "login_driver.py"),
                "--base",
                server.base,
                "--rate",
                str(args.login_rate),
                "--duration",
                str(seconds + 2 * lead),
                "--start-at",
                str(start_at),
                "--users",
                ",".join(emails),
                "--password",
                PASSWORD,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(max(0.0, start_at + lead - time.time()))
    run = bench_http.Run("sqlite", "detail", phase, index)
    cpu_before_wrk, wall_before_wrk = server.cpu_seconds(), time.monotonic()
    output = bench_http.run_wrk(server, run, seconds, args.connections, args.rows, False)
    result.p90_ms = bench_http._latency_ms(output, "90%")
    result.server_cpu_share = (server.cpu_seconds() - cpu_before_wrk) / (
        time.monotonic() - wall_before_wrk
    )
    result.requests, result.rps = run.requests, run.rps
    result.p50_ms, result.p99_ms = run.p50_ms, run.p99_ms
    result.get_errors = run.bad + run.socket_errors + (0 if run.requests else 1)
    if driver is not None:
        out, err = driver.communicate(timeout=seconds + 120)
        if driver.returncode != 0:
            raise RuntimeError(f"login driver failed ({driver.returncode}):\n{err}")
        report = json.loads(out)
        logins = report["logins"]
        latencies = [login["latency_ms"] for login in logins]
        result.logins_sent = report["sent"]
        result.logins_ok = sum(login["ok"] for login in logins)
        sent_at = [login["sent_s"] for login in logins]
        result.login_rate = (len(sent_at) - 1) / (max(sent_at) - min(sent_at))
        result.login_p50_ms = _percentile(latencies, 0.5)
        result.login_p99_ms = _percentile(latencies, 0.99)
        result.login_max_ms = max(latencies)
        result.send_lag_max_ms = max(login["lag_ms"] for login in logins)
        calls_after, cpu_after = hashing_stats(server)
        result.hash_calls = sum(calls_after.values()) - sum(calls_before.values())
        # Over the sending window (n / rate): the hashing these logins caused, per second.
        result.hash_cpu_share = (cpu_after - cpu_before) / (report["sent"] / args.login_rate)
        result.hash_threads = sorted(
            name for name in calls_after if calls_after[name] != calls_before.get(name, 0)
        )
    return result


def warm_up(started: dict[str, Any], emails: list[str], args: argparse.Namespace) -> None:
    """A few logins (the first one also makes the dummy hash) and 2 s of wrk, per server."""
    for server in started.values():
        for email in emails[:3]:
            status, body = bench_http.http(
                "POST", f"{server.base}/auth/login/", {"email": email, "password": PASSWORD}
            )
            if status != 200 or "access_token" not in body:
                raise SystemExit(f"{server.app}: login answered {status}: {body}")
        status, body = bench_http.http(
            "POST", f"{server.base}/auth/login/", {"email": emails[0], "password": "wrong-pass"}
        )
        if status != 401:
            raise SystemExit(f"{server.app}: a wrong password answered {status}: {body}")
        warm = bench_http.Run("sqlite", "detail", "warm-up", 0)
        bench_http.run_wrk(server, warm, 2, args.connections, args.rows, False)


# -- report -------------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(phases: list[Phase], args: argparse.Namespace) -> tuple[str, bool, bool]:
    """The markdown tables, whether the criterion holds, and whether every request succeeded."""
    by_phase = {name: [p for p in phases if p.phase == name] for name in PHASES}
    med = {
        name: {
            key: _median([getattr(p, key) for p in runs])
            for key in (
                "p50_ms",
                "p90_ms",
                "p99_ms",
                "rps",
                "server_cpu_share",
                "login_p50_ms",
                "login_p99_ms",
                "login_max_ms",
                "login_rate",
                "hash_cpu_share",
            )
        }
        for name, runs in by_phase.items()
    }
    a99 = med["A"]["p99_ms"]
    lines = [
        "| phase | what | GET p50 ms | GET p90 ms | GET p99 ms | p99 / A | GET req/s | server CPU"
        " | logins ok/sent | login rate /s | login p50 ms | login p99 ms | login max ms"
        " | hashing CPU (cores) | hashed on |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in PHASES:
        runs, m = by_phase[name], med[name]
        ok = sum(p.logins_ok for p in runs)
        sent = sum(p.logins_sent for p in runs)
        threads = sorted({t for p in runs for t in p.hash_threads})
        logins = name != "A"
        lines.append(
            f"| {name} | {PHASE_TEXT[name]} | {m['p50_ms']:.1f} | {m['p90_ms']:.1f}"
            f" | {m['p99_ms']:.1f}"
            f" | {m['p99_ms'] / a99:.2f}x | {m['rps']:.0f} | {m['server_cpu_share']:.2f}"
            + (
                f" | {ok}/{sent} | {m['login_rate']:.2f} | {m['login_p50_ms']:.0f}"
                f" | {m['login_p99_ms']:.0f} | {m['login_max_ms']:.0f}"
                f" | {m['hash_cpu_share']:.2f} | {', '.join(threads)} |"
                if logins
                else " | – | – | – | – | – | – | – |"
            )
        )
    lines += [
        "",
        "| round | order | A p99 ms | B p99 ms | C p99 ms | B/A | C/A |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for index in range(1, args.rounds + 1):
        row = {p.phase: p for p in phases if p.round == index}
        order = " ".join(p.phase for p in phases if p.round == index)
        a, b, c = row["A"].p99_ms, row["B"].p99_ms, row["C"].p99_ms
        lines.append(
            f"| {index} | {order} | {a:.1f} | {b:.1f} | {c:.1f} | {b / a:.2f}x | {c / a:.2f}x |"
        )
    b_ratio, c_ratio = med["B"]["p99_ms"] / a99, med["C"]["p99_ms"] / a99
    clean = all(
        p.get_errors == 0 and p.logins_ok == p.logins_sent and p.requests > 0 for p in phases
    )
    passed = b_ratio <= CRITERION
    lines += [
        "",
        f"B/A p99 = {b_ratio:.2f}x (limit {CRITERION:.0f}x): {'PASS' if passed else 'FAIL'}",
        f"C/A p99 = {c_ratio:.2f}x: hashing on the loop makes GET p99 {c_ratio / b_ratio:.1f}x"
        f" worse than off the loop (C/B)",
        f"errors: {'none' if clean else 'SOME REQUESTS FAILED (see the per-phase lines)'}",
    ]
    return "\n".join(lines), passed, clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000, help="seeded posts")
    parser.add_argument("--users", type=int, default=4, help="seeded users (logins rotate)")
    parser.add_argument(
        "--login-rate", type=float, default=0.0, help="logins/s; default: --core-share / verify"
    )
    parser.add_argument(
        "--core-share", type=float, default=0.5, help="share of one core hashing should use"
    )
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list of the servers")
    parser.add_argument(
        "--hash-threads",
        type=int,
        default=0,
        help="threads of the hashing pool (investigation knob); default: the framework's",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() in both servers once the app is built (investigation knob)",
    )
    parser.add_argument("--json", type=Path, help="also write every phase here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk).")
    began = time.monotonic()
    print(bench_http.environment(), flush=True)

    cpu_median, cpu_min = verify_cpu_seconds()
    if not args.login_rate:
        args.login_rate = round(args.core_share / cpu_median, 1)
    print(
        f"\none pbkdf2_sha256 verify (600 000 rounds): {cpu_median * 1000:.0f} ms CPU (median of 7,"
        f" min {cpu_min * 1000:.0f} ms) -> login rate {args.login_rate}/s"
        f" = {args.login_rate * cpu_median:.2f} core of hashing",
        flush=True,
    )
    gil = gil_check()
    print(
        f"GIL check (this process, unpinned): max asyncio stall while 3 verifies run in"
        f" run_hasher's pool {gil['off_loop_stall_ms']:.1f} ms, on the loop"
        f" {gil['on_loop_stall_ms']:.1f} ms",
        flush=True,
    )
    print(
        f"servers on CPU {args.server_cpus}, wrk and the login driver on CPU {WRK_CPU};"
        f" wrk -t1 -c{args.connections} -d{args.duration}s; {args.rounds} rotated rounds\n",
        flush=True,
    )

    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="bench_auth_") as tmp:
        url, emails = seed(Path(tmp), args.rows, args.users)
        with servers(
            url, Path(tmp), args.server_cpus, args.hash_threads, args.gc_freeze
        ) as started:
            _, stats = bench_http.http("GET", f"{started['off_loop'].base}/bench/hashing/")
            print(
                f"hashing pool of the off-loop server: {stats['pool_threads']} threads;"
                f" gc.freeze() at start: {'yes' if args.gc_freeze else 'no'}\n"
            )
            warm_up(started, emails, args)
            for index in range(args.rounds):
                shift = index % len(PHASES)
                for name in PHASES[shift:] + PHASES[:shift]:
                    phase = run_phase(name, index + 1, started, emails, args)
                    phases.append(phase)
                    logins = (
                        f"  logins {phase.logins_ok}/{phase.logins_sent} ok"
                        f" p50 {phase.login_p50_ms:.0f} ms max {phase.login_max_ms:.0f} ms"
                        f" hashing {phase.hash_cpu_share:.2f} core"
                        f" on {','.join(phase.hash_threads)}"
                        if name != "A"
                        else ""
                    )
                    flag = "" if phase.get_errors == 0 else f"  GET ERRORS {phase.get_errors}"
                    print(
                        f"  round {index + 1} {name}: GET {phase.rps:7.1f} req/s"
                        f" p50 {phase.p50_ms:6.1f} p90 {phase.p90_ms:6.1f}"
                        f" p99 {phase.p99_ms:6.1f} ms"
                        f" server CPU {phase.server_cpu_share:.2f}{logins}{flag}",
                        flush=True,
                    )
    table, passed, clean = report(phases, args)
    print()
    print(table)
    print(f"\n{time.monotonic() - began:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "verify_cpu_ms": {"median": cpu_median * 1000, "min": cpu_min * 1000},
                    "login_rate": args.login_rate,
                    "gil_check": gil,
                    "phases": [asdict(p) for p in phases],
                },
                indent=2,
            )
        )
    if not (passed and clean):
        sys.exit(1)


if __name__ == "__main__":
    main()
