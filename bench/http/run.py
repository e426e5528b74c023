"""HTTP benchmark: Core Framework vs a hand-written FastAPI app vs a bare Starlette floor.

Serves the same `posts` table three ways, each under uvicorn (1 worker, no access log, uvloop and
httptools when installed — the same for all three), and loads them with wrk on loopback:

* ``core``     bench/http/app_core.py     Model + ModelViewSet + AutoRouter
* ``fastapi``  bench/http/app_fastapi.py  FastAPI + SQLAlchemy ORM the way FastAPI's docs teach
* ``floor``    bench/http/app_floor.py    Starlette + asyncpg/aiosqlite + orjson, no framework

Endpoints: ``GET /posts/?page_size=100`` (COUNT + page query, DRF envelope), ``GET /posts/{id}/``
(random id among the seeded rows) and ``POST /posts/`` (bench/http/post.lua).

For each backend (a SQLite file in a temporary directory; a scratch PostgreSQL database it creates
and drops) and each endpoint, the apps run interleaved — round 1: core, fastapi, floor; round 2:
fastapi, floor, core; ... — so drift on a noisy machine hits every app alike. Per run it records
wrk's req/s and p99, the status of every response (a run with any non-2xx response or socket
error is INVALID), and the server process's CPU time per request (utime + stime from
/proc/<pid>/stat, all threads); on PostgreSQL also the database server's CPU per request.
Medians over the rounds are reported with the ratios core/fastapi, floor/fastapi and core/floor.
The table is reset to the seeded rows before each endpoint and after every POST run.

Pinning (2 cores): the servers run on CPU 0 (`taskset -c 0`), wrk on CPU 1 with one thread and
16 connections; PostgreSQL is not pinned.

Run (about 5 minutes with the defaults):
    .venv/bin/python bench/http/run.py [--duration 5] [--rounds 3] [--backends sqlite,postgres]
        [--endpoints list,detail,create] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
APPS = ("core", "fastapi", "floor")
ENDPOINTS = ("list", "detail", "create")
BACKENDS = ("sqlite", "postgres")
BASE_PORT = 8761
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
WRK_CPU = "1"
# Targets from the issue: core / fastapi req/s on every endpoint.
TARGETS = {"postgres": 1.5, "sqlite": 1.3}

SCHEMA = {
    "sqlite": (
        "CREATE TABLE bench_posts (id INTEGER NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL, "
        "content TEXT NOT NULL, is_published BOOLEAN NOT NULL, views INTEGER NOT NULL)"
    ),
    "postgres": (
        "CREATE TABLE bench_posts (id SERIAL PRIMARY KEY, title VARCHAR(200) NOT NULL, "
        "content TEXT NOT NULL, is_published BOOLEAN NOT NULL, views INTEGER NOT NULL)"
    ),
}
PARAGRAPH = (
    "Core Framework turns a model, a viewset and a router into a typed, documented, "
    "permission-checked async CRUD API. This row exists to be listed, fetched and counted. "
)


def seed_rows(rows: int) -> list[tuple[int, str, str, bool, int]]:
    return [
        (i, f"Post number {i}", PARAGRAPH * (1 + i % 3), i % 2 == 0, i * 7 % 1000)
        for i in range(1, rows + 1)
    ]


# -- databases ----------------------------------------------------------------------------------
class Database:
    """A seeded `bench_posts` table on one backend, and the URLs each app reads it through."""

    backend: str
    sqlalchemy_url: str
    floor_url: str

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def url_for(self, app: str) -> str:
        return self.floor_url if app == "floor" else self.sqlalchemy_url

    def reset(self) -> None:
        """Back to the seeded rows (drops what POST runs created)."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    backend = "sqlite"

    def __init__(self, rows: int, directory: Path) -> None:
        super().__init__(rows)
        self.path = directory / "bench.db"
        self.sqlalchemy_url = f"sqlite+aiosqlite:///{self.path}"
        self.floor_url = f"sqlite:///{self.path}"
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            db.execute(SCHEMA["sqlite"])
            db.executemany("INSERT INTO bench_posts VALUES (?, ?, ?, ?, ?)", seed_rows(rows))
            db.commit()

    def _run(self, sql: str, *args: Any) -> Any:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
            value = db.execute(sql, args).fetchone()
            db.commit()
            return value

    def reset(self) -> None:
        self._run("DELETE FROM bench_posts WHERE id > ?", self.rows)

    def count(self) -> int:
        return int(self._run("SELECT count(*) FROM bench_posts")[0])

    def close(self) -> None:
        pass


class PostgresDatabase(Database):
    backend = "postgres"

    def __init__(self, rows: int, admin_url: str) -> None:
        super().__init__(rows)
        self.admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
        self.name = f"bench_http_{uuid.uuid4().hex[:8]}"
        base = self.admin_url.rsplit("/", 1)[0]
        self.floor_url = f"{base}/{self.name}"
        self.sqlalchemy_url = self.floor_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        asyncio.run(self._create())

    async def _create(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        db = await asyncpg.connect(self.floor_url)
        try:
            await db.execute(SCHEMA["postgres"])
            await db.copy_records_to_table("bench_posts", records=seed_rows(self.rows))
            await db.execute("SELECT setval('bench_posts_id_seq', $1)", self.rows)
            await db.execute("VACUUM ANALYZE bench_posts")
        finally:
            await db.close()

    async def _fetchval(self, sql: str, *args: Any, dsn: str | None = None) -> Any:
        import asyncpg

        db = await asyncpg.connect(dsn or self.floor_url)
        try:
            return await db.fetchval(sql, *args)
        finally:
            await db.close()

    def reset(self) -> None:
        asyncio.run(self._fetchval("DELETE FROM bench_posts WHERE id > $1", self.rows))

    def count(self) -> int:
        return int(asyncio.run(self._fetchval("SELECT count(*) FROM bench_posts")))

    def close(self) -> None:
        drop = f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
        asyncio.run(self._fetchval(drop, dsn=self.admin_url))


# -- servers ------------------------------------------------------------------------------------
def server_options() -> list[str]:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return ["--loop", loop, "--http", http, "--no-access-log", "--workers", "1"]


@dataclass
class Server:
    app: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return process_cpu(self.process.pid)


def start_server(app: str, port: int, url: str, logs: Path) -> Server:
    log = logs / f"{app}.log"
    command = [
        *(["taskset", "-c", SERVER_CPU] if shutil.which("taskset") else []),
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        f"app_{app}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *server_options(),
    ]
    env = {**os.environ, "DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(app, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited at start:\n{log.read_text()[-3000:]}")
        try:
            status, _ = http("GET", f"{server.base}/posts/1/")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{app} did not answer within 30 s:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.contextmanager
def servers(database: Database, apps: tuple[str, ...], logs: Path) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for index, app in enumerate(apps):
            started[app] = start_server(app, BASE_PORT + index, database.url_for(app), logs)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# -- CPU accounting -----------------------------------------------------------------------------
def process_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu() -> float:
    """utime + stime of every `postgres` process on the machine, in seconds."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


# -- correctness --------------------------------------------------------------------------------
def _without_host(page: Any) -> Any:
    if isinstance(page, dict):
        return {
            k: re.sub(r"^http://[^/]+", "", v) if k in ("next", "previous") and v else v
            for k, v in page.items()
        }
    return page


def check_same_answers(started: dict[str, Server], database: Database) -> None:
    """Every app answers the three requests with the same status and the same JSON."""
    answers: dict[str, list[Any]] = {app: [] for app in started}
    body = {"title": "Check", "content": "Same answer everywhere?", "is_published": True}
    # All reads first, then the writes, so every app reads the same rows.
    for app, server in started.items():
        answers[app] += http("GET", f"{server.base}/posts/?page_size=3&page=2")
        answers[app][-1] = _without_host(answers[app][-1])
    for app, server in started.items():
        answers[app] += http("GET", f"{server.base}/posts/7/")
    for app, server in started.items():
        status, created = http("POST", f"{server.base}/posts/", body)
        if isinstance(created, dict):
            created.pop("id", None)
        answers[app] += [status, created]
    database.reset()
    first_app, first = next(iter(answers.items()))
    for app, answer in answers.items():
        if answer != first:
            raise SystemExit(
                f"{app} and {first_app} answer differently:\n{app}: {answer}\n{first_app}: {first}"
            )
    if first[0] != 200 or first[2] != 200 or first[4] != 201:
        raise SystemExit(f"unexpected statuses (list, detail, create): {first[0::2]}")


# -- wrk ----------------------------------------------------------------------------------------
@dataclass
class Run:
    backend: str
    endpoint: str
    app: str
    round: int
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_us: float = 0.0
    db_cpu_us: float | None = None
    bad: int = 0
    first_bad: int = 0
    socket_errors: int = 0

    @property
    def valid(self) -> bool:
        return self.bad == 0 and self.socket_errors == 0 and self.requests > 0

    def problem(self) -> str:
        return (
            f"{self.requests} requests, {self.bad} non-2xx (first {self.first_bad}),"
            f" {self.socket_errors} socket errors"
        )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match[1]) * _UNITS[match[2]] if match else float("nan")


def wrk_command(server: Server, endpoint: str, seconds: int, connections: int) -> list[str]:
    script = HERE / ("post.lua" if endpoint == "create" else "get.lua")
    url = f"{server.base}/posts/" + ("?page_size=100" if endpoint == "list" else "")
    return [
        *(["taskset", "-c", WRK_CPU] if shutil.which("taskset") else []),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def run_wrk(
    server: Server, run: Run, seconds: int, connections: int, rows: int, measure_db: bool
) -> str:
    env = {**os.environ}
    if run.endpoint == "detail":
        env["BENCH_DETAIL_IDS"] = str(rows)
    cpu_before = server.cpu_seconds()
    db_before = postgres_cpu() if measure_db else 0.0
    done = subprocess.run(
        wrk_command(server, run.endpoint, seconds, connections),
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    output = done.stdout
    cpu = server.cpu_seconds() - cpu_before
    db_cpu = postgres_cpu() - db_before if measure_db else None
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.app} died:\n{server.log.read_text()[-3000:]}")
    requests = re.search(r"(\d+) requests in", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    status = re.search(r"STATUS ok=(\d+) bad=(\d+) first=(\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    run.requests = int(requests[1]) if requests else 0
    run.rps = float(rps[1]) if rps else 0.0
    run.p50_ms = _latency_ms(output, "50%")
    run.p99_ms = _latency_ms(output, "99%")
    run.bad = max(int(status[2]) if status else 0, int(non2xx[1]) if non2xx else 0)
    run.first_bad = int(status[3]) if status else 0
    run.socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    if run.requests:
        run.cpu_us = cpu / run.requests * 1e6
        if db_cpu is not None:
            run.db_cpu_us = db_cpu / run.requests * 1e6
    return output


# -- the run ------------------------------------------------------------------------------------
@dataclass
class Summary:
    backend: str
    endpoint: str
    app: str
    rps: float
    p99_ms: float
    cpu_us: float
    db_cpu_us: float | None
    invalid_runs: int
    rounds: list[float] = field(default_factory=list)


def summarize(runs: list[Run]) -> Summary:
    first = runs[0]
    db = [r.db_cpu_us for r in runs if r.db_cpu_us is not None]
    return Summary(
        backend=first.backend,
        endpoint=first.endpoint,
        app=first.app,
        rps=statistics.median(r.rps for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs),
        db_cpu_us=statistics.median(db) if db else None,
        invalid_runs=sum(not r.valid for r in runs),
        rounds=[round(r.rps, 1) for r in runs],
    )


def bench_backend(
    database: Database, args: argparse.Namespace, logs: Path
) -> tuple[list[Run], list[Summary]]:
    apps = tuple(args.apps)
    runs: list[Run] = []
    summaries: list[Summary] = []
    measure_db = database.backend == "postgres"
    with servers(database, apps, logs) as started:
        check_same_answers(started, database)
        for endpoint in args.endpoints:
            database.reset()
            for app in apps:  # warm-up: JIT-free Python still fills pools and caches
                warm = Run(database.backend, endpoint, app, 0)
                run_wrk(started[app], warm, args.warmup, args.connections, args.rows, False)
                if endpoint == "create":
                    database.reset()
            by_app: dict[str, list[Run]] = {app: [] for app in apps}
            for index in range(args.rounds):
                shift = index % len(apps)
                for app in apps[shift:] + apps[:shift]:
                    run = Run(database.backend, endpoint, app, index + 1)
                    run_wrk(
                        started[app], run, args.duration, args.connections, args.rows, measure_db
                    )
                    if endpoint == "create":
                        database.reset()
                    by_app[app].append(run)
                    runs.append(run)
                    flag = "" if run.valid else f"  INVALID: {run.problem()}"
                    print(
                        f"  {database.backend:8} {endpoint:6} round {index + 1} {app:8}"
                        f" {run.rps:9.1f} req/s  p99 {run.p99_ms:7.2f} ms"
                        f"  cpu {run.cpu_us:7.0f} us/req{flag}",
                        flush=True,
                    )
            summaries.extend(summarize(by_app[app]) for app in apps)
    return runs, summaries


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(summaries: list[Summary], args: argparse.Namespace) -> str:
    lines = [
        "| backend | endpoint | app | req/s (median) | p99 ms | server CPU µs/req"
        " | PostgreSQL CPU µs/req | invalid runs | req/s per round |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        db = f"{s.db_cpu_us:.0f}" if s.db_cpu_us is not None else "–"
        lines.append(
            f"| {s.backend} | {s.endpoint} | {s.app} | {s.rps:.0f} | {s.p99_ms:.1f}"
            f" | {s.cpu_us:.0f} | {db} | {s.invalid_runs} | {', '.join(map(str, s.rounds))} |"
        )
    lines += [
        "",
        "| backend | endpoint | core/fastapi req/s | target | floor/fastapi | core/floor"
        " | fastapi/core CPU per req | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    index = {(s.backend, s.endpoint, s.app): s for s in summaries}
    for backend in args.backends:
        for endpoint in args.endpoints:
            core = index.get((backend, endpoint, "core"))
            fastapi = index.get((backend, endpoint, "fastapi"))
            floor = index.get((backend, endpoint, "floor"))
            if core is None or fastapi is None:
                continue
            target = TARGETS[backend]
            invalid = any(s and s.invalid_runs for s in (core, fastapi, floor))
            verdict = (
                "INVALID (errors)"
                if invalid
                else ("meets target" if core.rps / fastapi.rps >= target else "below target")
            )
            lines.append(
                f"| {backend} | {endpoint} | {_ratio(core.rps, fastapi.rps)} | {target}x"
                f" | {_ratio(floor.rps, fastapi.rps) if floor else 'n/a'}"
                f" | {_ratio(core.rps, floor.rps) if floor else 'n/a'}"
                f" | {_ratio(fastapi.cpu_us, core.cpu_us)} | {verdict} |"
            )
    return "\n".join(lines)


def environment() -> str:
    versions = []
    for name in (
        "fastapi",
        "starlette",
        "pydantic",
        "pydantic-core",
        "sqlalchemy",
        "uvicorn",
        "uvloop",
        "httptools",
        "asyncpg",
        "aiosqlite",
        "orjson",
    ):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"{(wrk.stdout or wrk.stderr).splitlines()[0].split(' [')[0]}\n"
        f"{', '.join(versions)}\nuvicorn {' '.join(server_options())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per app")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--backends", type=lambda s: s.split(","), default=list(BACKENDS))
    parser.add_argument("--endpoints", type=lambda s: s.split(","), default=list(ENDPOINTS))
    parser.add_argument("--apps", type=lambda s: s.split(","), default=list(APPS))
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database to connect to while creating and dropping the scratch database",
    )
    parser.add_argument("--json", type=Path, help="also write every run and summary here")
    args = parser.parse_args()
    for name, allowed in (("backends", BACKENDS), ("endpoints", ENDPOINTS), ("apps", APPS)):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error(f"unknown {name}: {', '.join(sorted(unknown))}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk).")

    print(environment())
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s (CPU {WRK_CPU}); servers on CPU "
        f"{SERVER_CPU}; {args.rounds} interleaved rounds; {args.rows} seeded rows\n",
        flush=True,
    )
    started = time.monotonic()
    runs: list[Run] = []
    summaries: list[Summary] = []
    with tempfile.TemporaryDirectory(prefix="bench_http_") as tmp:
        for backend in args.backends:
            database: Database = (
                SqliteDatabase(args.rows, Path(tmp))
                if backend == "sqlite"
                else PostgresDatabase(args.rows, args.postgres_url)
            )
            try:
                backend_runs, backend_summaries = bench_backend(database, args, Path(tmp))
                runs += backend_runs
                summaries += backend_summaries
                database.reset()
                if database.count() != args.rows:
                    raise SystemExit(f"{backend}: the table did not reset to {args.rows} rows")
            finally:
                database.close()
    print()
    print(report(summaries, args))
    invalid = sum(not r.valid for r in runs)
    print(f"\n{len(runs)} runs, {invalid} invalid, {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": [asdict(r) for r in runs], "summaries": [asdict(s) for s in summaries]},
                indent=2,
            )
        )
    if invalid:
        sys.exit(1)


if __name__ == "__main__":
    main()
