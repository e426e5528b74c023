"""HTTP benchmark: Core Framework vs the FastAPI app a FastAPI user writes vs a bare floor.

Serves the same `posts` table several ways, each under uvicorn (1 worker, no access log, uvloop
and httptools when installed — the same for all), and loads them with wrk on loopback:

* ``core``           bench/http/app_core.py           Model + ModelViewSet + AutoRouter, defaults
* ``fastapi``        bench/http/app_fastapi_plain.py  FastAPI + SQLAlchemy ORM as FastAPI's docs
                                                      teach: `response_model=list[PostOut]`, a
                                                      plain list (no count): the headline baseline
* ``fastapi_count``  bench/http/app_fastapi.py        the same with COUNT + page and DRF's
                                                      envelope (optional: ``--apps``)
* ``floor``          bench/http/app_floor.py          Starlette + asyncpg/aiosqlite + orjson

Endpoints: ``list20`` ``GET /posts/`` (the default page: 20 rows), ``list100``
``GET /posts/?page_size=100``, ``detail`` ``GET /posts/{id}/`` (random id among the seeded rows)
and ``create`` ``POST /posts/`` (bench/http/post.lua). Core's lists use its default pagination
(PageNumberPagination, exact count in one statement); so does the floor.

For each backend (a SQLite file in a temporary directory; a scratch PostgreSQL database it creates
and drops) and each endpoint, the apps run interleaved — round 1: core, fastapi, floor; round 2:
fastapi, floor, core; ... — so drift on a noisy machine hits every app alike. Per run it records
wrk's req/s and p99, the status of every response (a run with any non-2xx response or socket
error is INVALID), and the server process's CPU time per request (utime + stime from
/proc/<pid>/stat, all threads); on PostgreSQL also the database server's CPU per request.
Medians over the rounds are reported with the ratios core/fastapi, floor/fastapi and core/floor.
The table is reset to the seeded rows before each endpoint and after every POST run (on
PostgreSQL the reset also VACUUMs it, so no count scans the rows the POST runs deleted).

Two set-ups (2 cores), each with its own servers: ``pinned`` — the servers on CPU 0
(`taskset -c 0`), wrk on CPU 1 with one thread and 16 connections; ``unpinned`` — nothing
pinned, ``wrk -t2 -c50``. PostgreSQL is never pinned.

It ends with the results as markdown, ready for bench/http/README.md.

Run (about 25 minutes with the defaults):
    .venv/bin/python bench/http/run.py [--duration 5] [--rounds 3] [--backends sqlite,postgres]
        [--endpoints list20,list100,detail,create] [--setups pinned,unpinned]
        [--apps core,fastapi,floor] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
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
APPS = ("core", "fastapi", "fastapi_count", "floor")
DEFAULT_APPS = ("core", "fastapi", "floor")
MODULES = {
    "core": "app_core",
    "fastapi": "app_fastapi_plain",
    "fastapi_count": "app_fastapi",
    "floor": "app_floor",
}
ENDPOINTS = ("list20", "list100", "detail", "create")
BACKENDS = ("sqlite", "postgres")
SETUPS = ("pinned", "unpinned")
BASE_PORT = 8761
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
WRK_CPU = "1"
# wrk's threads and connections per set-up.
WRK = {"pinned": (1, 16), "unpinned": (2, 50)}
PATHS = {"list20": "/posts/", "list100": "/posts/?page_size=100"}
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
        asyncio.run(self._reset())

    async def _reset(self) -> None:
        import asyncpg

        db = await asyncpg.connect(self.floor_url)
        try:
            await db.execute("DELETE FROM bench_posts WHERE id > $1", self.rows)
            # The deleted rows stay in the table as dead tuples until a vacuum: tens of
            # thousands after a POST run, which every count(*) of the next endpoint would scan
            # until autovacuum came by (the pinned set-up's POST runs made the unpinned lists
            # after them pay ~1 ms of PostgreSQL CPU per request).
            await db.execute("VACUUM ANALYZE bench_posts")
        finally:
            await db.close()

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
    pinned: bool = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return process_cpu(self.process.pid)


def start_server(app: str, port: int, url: str, logs: Path, pinned: bool) -> Server:
    log = logs / f"{app}.log"
    command = [
        *(["taskset", "-c", SERVER_CPU] if pinned and shutil.which("taskset") else []),
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        f"{MODULES[app]}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *server_options(),
    ]
    env = {**os.environ, "DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(app, port, process, log, pinned)
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
def servers(
    database: Database, apps: tuple[str, ...], logs: Path, pinned: bool
) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for index, app in enumerate(apps):
            url = database.url_for(app)
            started[app] = start_server(app, BASE_PORT + index, url, logs, pinned)
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


def _rows_of(page: Any) -> Any:
    """The rows of a list answer: the plain FastAPI app's list, or an envelope's `results`."""
    return page["results"] if isinstance(page, dict) and "results" in page else page


def check_same_answers(started: dict[str, Server], database: Database) -> None:
    """Every app answers the same requests with the same status and the same rows (the
    envelopes of the apps that have one are compared too)."""
    answers: dict[str, list[Any]] = {app: [] for app in started}
    envelopes: dict[str, list[Any]] = {app: [] for app in started}
    body = {"title": "Check", "content": "Same answer everywhere?", "is_published": True}
    # All reads first, then the writes, so every app reads the same rows.
    for app, server in started.items():
        for path in ("/posts/?page_size=3&page=2", "/posts/", "/posts/?page_size=100"):
            status, page = http("GET", f"{server.base}{path}")
            answers[app] += [status, _rows_of(page)]
            if app != "fastapi":
                envelopes[app].append(_without_host(page))
    for app, server in started.items():
        answers[app] += http("GET", f"{server.base}/posts/7/")
    for app, server in started.items():
        status, created = http("POST", f"{server.base}/posts/", body)
        if isinstance(created, dict):
            created.pop("id", None)
        answers[app] += [status, created]
    database.reset()
    for table in (answers, {app: e for app, e in envelopes.items() if app != "fastapi"}):
        if not table:
            continue
        first_app, first = next(iter(table.items()))
        for app, answer in table.items():
            if answer != first:
                raise SystemExit(
                    f"{app} and {first_app} answer differently:\n"
                    f"{app}: {answer}\n{first_app}: {first}"
                )
    first = next(iter(answers.values()))
    if first[0::2] != [200, 200, 200, 200, 201]:
        raise SystemExit(f"unexpected statuses (3 lists, detail, create): {first[0::2]}")
    if [len(first[i]) for i in (1, 3, 5)] != [3, 20, 100]:
        raise SystemExit("the lists do not hold 3, 20 and 100 rows")


# -- wrk ----------------------------------------------------------------------------------------
@dataclass
class Run:
    setup: str
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


def wrk_command(server: Server, endpoint: str, seconds: int, setup: str) -> list[str]:
    script = HERE / ("post.lua" if endpoint == "create" else "get.lua")
    url = server.base + PATHS.get(endpoint, "/posts/")
    threads, connections = WRK[setup]
    return [
        *(["taskset", "-c", WRK_CPU] if server.pinned and shutil.which("taskset") else []),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def run_wrk(server: Server, run: Run, seconds: int, rows: int, measure_db: bool) -> str:
    env = {**os.environ}
    if run.endpoint == "detail":
        env["BENCH_DETAIL_IDS"] = str(rows)
    cpu_before = server.cpu_seconds()
    db_before = postgres_cpu() if measure_db else 0.0
    done = subprocess.run(
        wrk_command(server, run.endpoint, seconds, run.setup),
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
    setup: str
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
        setup=first.setup,
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
    database: Database, setup: str, args: argparse.Namespace, logs: Path
) -> tuple[list[Run], list[Summary]]:
    apps = tuple(args.apps)
    runs: list[Run] = []
    summaries: list[Summary] = []
    measure_db = database.backend == "postgres"
    with servers(database, apps, logs, pinned=setup == "pinned") as started:
        check_same_answers(started, database)
        for endpoint in args.endpoints:
            database.reset()
            for app in apps:  # warm-up: JIT-free Python still fills pools and caches
                warm = Run(setup, database.backend, endpoint, app, 0)
                run_wrk(started[app], warm, args.warmup, args.rows, False)
                if endpoint == "create":
                    database.reset()
            by_app: dict[str, list[Run]] = {app: [] for app in apps}
            for index in range(args.rounds):
                shift = index % len(apps)
                for app in apps[shift:] + apps[:shift]:
                    run = Run(setup, database.backend, endpoint, app, index + 1)
                    run_wrk(started[app], run, args.duration, args.rows, measure_db)
                    if endpoint == "create":
                        database.reset()
                    by_app[app].append(run)
                    runs.append(run)
                    flag = "" if run.valid else f"  INVALID: {run.problem()}"
                    print(
                        f"  {setup:8} {database.backend:8} {endpoint:7} round {index + 1}"
                        f" {app:13} {run.rps:9.1f} req/s  p99 {run.p99_ms:7.2f} ms"
                        f"  cpu {run.cpu_us:7.0f} us/req{flag}",
                        flush=True,
                    )
            summaries.extend(summarize(by_app[app]) for app in apps)
    return runs, summaries


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def setup_title(setup: str) -> str:
    threads, connections = WRK[setup]
    where = (
        f"servers on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}"
        if setup == "pinned"
        else "nothing pinned"
    )
    return f"{setup}: `wrk -t{threads} -c{connections}`, {where}"


def report(summaries: list[Summary], args: argparse.Namespace) -> str:
    """The results as markdown: per set-up, the ratios table, then every app's numbers."""
    index = {(s.setup, s.backend, s.endpoint, s.app): s for s in summaries}
    counting = "fastapi_count" in args.apps
    lines: list[str] = []
    for setup in args.setups:
        if not any(s.setup == setup for s in summaries):
            continue
        lines += [
            f"#### {setup_title(setup)}",
            "",
            "| backend | endpoint | core/fastapi req/s | target | core/floor"
            + (" | core/fastapi_count" if counting else "")
            + " | req/s core · fastapi · floor | p99 ms core · fastapi"
            " | server CPU µs/req core · fastapi · floor | verdict |",
            "|---|---|---:|---:|---:" + ("|---:" if counting else "") + "|---|---|---|---|",
        ]
        for backend in args.backends:
            for endpoint in args.endpoints:
                row = {a: index.get((setup, backend, endpoint, a)) for a in APPS}
                core, fastapi, floor = row["core"], row["fastapi"], row["floor"]
                if core is None or fastapi is None:
                    continue
                target = TARGETS[backend]
                ratio = core.rps / fastapi.rps if fastapi.rps else 0.0
                if any(s is not None and s.invalid_runs for s in row.values()):
                    verdict = "INVALID (errors)"
                elif ratio < target:
                    verdict = "below target"
                elif core.p99_ms > fastapi.p99_ms:
                    verdict = "p99 worse"
                else:
                    verdict = "meets target"

                def value(s: Summary | None, attr: str, digits: int = 0) -> str:
                    return "–" if s is None else f"{getattr(s, attr):.{digits}f}"

                count_col = ""
                if counting:
                    counted = row["fastapi_count"]
                    count_col = f" | {_ratio(core.rps, counted.rps) if counted else 'n/a'}"
                lines.append(
                    f"| {backend} | {endpoint} | **{_ratio(core.rps, fastapi.rps)}**"
                    f" | {target}x | {_ratio(core.rps, floor.rps) if floor else 'n/a'}"
                    f"{count_col}"
                    f" | {value(core, 'rps')} · {value(fastapi, 'rps')} · {value(floor, 'rps')}"
                    f" | {value(core, 'p99_ms', 1)} · {value(fastapi, 'p99_ms', 1)}"
                    f" | {value(core, 'cpu_us')} · {value(fastapi, 'cpu_us')}"
                    f" · {value(floor, 'cpu_us')} | {verdict} |"
                )
        lines.append("")
    lines += [
        "<details><summary>Every app, medians over the rounds</summary>",
        "",
        "| set-up | backend | endpoint | app | req/s | p99 ms | server CPU µs/req"
        " | PostgreSQL CPU µs/req | invalid runs | req/s per round |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        db = f"{s.db_cpu_us:.0f}" if s.db_cpu_us is not None else "–"
        lines.append(
            f"| {s.setup} | {s.backend} | {s.endpoint} | {s.app} | {s.rps:.0f} | {s.p99_ms:.1f}"
            f" | {s.cpu_us:.0f} | {db} | {s.invalid_runs} | {', '.join(map(str, s.rounds))} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines)


def _command_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "-"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "-"


def environment(args: argparse.Namespace) -> str:
    versions = []
    for name in (
        "core-framework",
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
    commit = _command_version(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    wrk = _command_version(["wrk", "--version"]).split(" [")[0]
    postgres = "-"
    if "postgres" in args.backends:
        with contextlib.suppress(Exception):
            admin = args.postgres_url.replace("postgresql+asyncpg://", "postgresql://")
            postgres = asyncio.run(_postgres_version(admin))
    cpu = "-"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found[1] if found else "-"
    return (
        f"{time.strftime('%Y-%m-%d')}, commit `{commit}`; Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs ({cpu}); {wrk}; PostgreSQL {postgres};"
        f" SQLite {sqlite3.sqlite_version}\n"
        f"{', '.join(versions)}\nuvicorn {' '.join(server_options())}"
    )


async def _postgres_version(dsn: str) -> str:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        return str(await db.fetchval("SHOW server_version")).split()[0]
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per app")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--backends", type=lambda s: s.split(","), default=list(BACKENDS))
    parser.add_argument("--endpoints", type=lambda s: s.split(","), default=list(ENDPOINTS))
    parser.add_argument("--setups", type=lambda s: s.split(","), default=list(SETUPS))
    parser.add_argument("--apps", type=lambda s: s.split(","), default=list(DEFAULT_APPS))
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database to connect to while creating and dropping the scratch database",
    )
    parser.add_argument("--json", type=Path, help="also write every run and summary here")
    args = parser.parse_args()
    for name, allowed in (
        ("backends", BACKENDS),
        ("endpoints", ENDPOINTS),
        ("apps", APPS),
        ("setups", SETUPS),
    ):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error(f"unknown {name}: {', '.join(sorted(unknown))}")
    if not {"core", "fastapi"} <= set(args.apps):
        parser.error("--apps must include core and fastapi (the ratios are core/fastapi)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk).")

    env = environment(args)
    print(env)
    print(
        f"{', '.join(setup_title(s) for s in args.setups)}; {args.duration} s per run;"
        f" {args.rounds} interleaved rounds; {args.rows} seeded rows\n",
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
                for setup in args.setups:
                    backend_runs, backend_summaries = bench_backend(
                        database, setup, args, Path(tmp)
                    )
                    runs += backend_runs
                    summaries += backend_summaries
                database.reset()
                if database.count() != args.rows:
                    raise SystemExit(f"{backend}: the table did not reset to {args.rows} rows")
            finally:
                database.close()
    invalid = sum(not r.valid for r in runs)
    print("\n" + "-" * 40 + " markdown for bench/http/README.md " + "-" * 40 + "\n")
    print("```text\n" + env + "\n```\n")
    print(
        f"{len(runs)} runs ({args.duration} s each, {args.rounds} interleaved rounds,"
        f" {args.rows} seeded rows), **{invalid} invalid**"
        f" (non-2xx or socket errors); {time.monotonic() - started:.0f} s in all.\n"
    )
    print(report(summaries, args))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "runs": [asdict(r) for r in runs],
                    "summaries": [asdict(s) for s in summaries],
                },
                indent=2,
            )
        )
    if invalid:
        sys.exit(1)


if __name__ == "__main__":
    main()
