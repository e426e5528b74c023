"""Where a request's server CPU goes: py-spy samples of an app under wrk load, by step.

Starts one app (as bench/http/run.py does: same seeded table, same uvicorn options, server on
CPU 0), loads one endpoint with wrk, samples the server with py-spy (`--gil`, so a process
waiting in the event loop is not counted) while measuring its CPU time from /proc, and prints
each step's share of the busy samples and its cost in µs of CPU per request.

A sample is charged to the first step, in the order of STEPS, whose pattern matches any frame
of its stack, so e.g. the asyncpg frames under the pool's pre-ping count as "pool checkout +
pre-ping", not as "SQL execute".

Needs py-spy (`pip install py-spy`; root or ptrace rights). Run:
    .venv/bin/python bench/http/profile.py --app core --backend postgres --endpoint detail
        [--seconds 15] [--raw profile.txt] [--frames 25]
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/http/run.py, a sibling script)

# (step, pattern over one frame "function (file)"); first match in this order wins.
STEPS: list[tuple[str, str]] = [
    ("pool checkout + pre-ping", r"_async_ping|do_ping|_ConnectionFairy\._checkout|Pool\.connect"),
    ("commit", r"AsyncSession\.commit|Session\.commit"),
    ("rollback / close", r"AsyncSession\.close|AsyncSession\.rollback|Session\.close"),
    ("session creation", r"SqlAlchemyDatabase\.session|async_sessionmaker\.__call__|get_session"),
    ("authenticate", r"ViewSet\.authenticate|RequestAuthenticator"),
    ("permissions", r"check_permissions|check_object_permissions|get_permissions"),
    ("pagination links", r"Pagination\.links|Pagination\.window|include_query_params"),
    (
        "serialize (pydantic, ORM attribute reads)",
        r"ViewSet\.render|ViewSet\.to_json|serialize_response|list_adapter|_prepare_response",
    ),
    (
        "SQL execute (SQLAlchemy + driver)",
        r"AsyncSession\.(execute|scalars?|get|flush)|SqlAlchemyRepository\._flush|"
        r"SqlAlchemyRepository\._execute|PostgresBackend|SqliteBackend",
    ),
    ("statement building (Repository)", r"_windowed|_filtered|compile_where|_condition"),
    ("QuerySet building", r"QuerySet\.|Q\.resolve|core/models/lookups|Manager\.__get__"),
    ("model instance (create)", r"QuerySet\._build|_declarative_constructor|Post\.__init__"),
    ("container lookups", r"dependency_injector|current_container"),
    ("view handler glue (core)", r"core/views/"),
    ("endpoint glue (core)", r"_endpoint\.<locals>\.endpoint"),
    (
        "FastAPI params / body / dependencies",
        r"fastapi/dependencies|solve_dependencies|request_params_to_args|"
        r"_extract_form_body|Request\.body|Request\.json|_get_body|get_request_handler",
    ),
    ("routing + middleware (Starlette/FastAPI)", r"starlette/|fastapi/"),
    ("uvicorn (HTTP parse, send)", r"uvicorn/"),
]

_LINE = re.compile(r":\d+\)")


def _package(frame: str) -> str:
    match = re.search(r"\(([^/)]+)", frame)
    return match[1].removesuffix(".py") if match else frame


def classify(frames: list[str]) -> str:
    for step, pattern in STEPS:
        compiled = re.compile(pattern)
        if any(compiled.search(frame) for frame in frames):
            return step
    return "other"


def summarize(raw: Path, cpu_us: float, top_frames: int) -> str:
    steps: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        if not stack.startswith("_run_module_as_main"):
            continue  # a stale frame of an idle event loop, not work
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        n = int(count)
        total += n
        steps[classify(frames)] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples"
    lines = [
        f"{total} busy samples; server CPU {cpu_us:.0f} µs/request",
        "",
        "| step | share of busy samples | µs CPU / request |",
        "|---|---:|---:|",
    ]
    for step, n in steps.most_common():
        lines.append(f"| {step} | {100 * n / total:.1f}% | {cpu_us * n / total:.0f} |")
    lines += ["", "Self time by package (the leaf frame's top-level module):"]
    for package, n in packages.most_common(12):
        lines.append(f"  {100 * n / total:5.1f}%  {cpu_us * n / total:5.0f} µs  {package}")
    lines += ["", f"Top {top_frames} frames by inclusive share:"]
    for frame, n in inclusive.most_common(top_frames + 12)[12:]:  # skip the server's outer frames
        lines.append(f"  {100 * n / total:5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--app", choices=bench.APPS, default="core")
    parser.add_argument("--backend", choices=bench.BACKENDS, default="postgres")
    parser.add_argument("--endpoint", choices=bench.ENDPOINTS, default="detail")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--setup", choices=bench.SETUPS, default="pinned")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw (collapsed) stacks here")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy).")

    with tempfile.TemporaryDirectory(prefix="bench_http_profile_") as tmp:
        database: bench.Database = (
            bench.SqliteDatabase(args.rows, Path(tmp))
            if args.backend == "sqlite"
            else bench.PostgresDatabase(args.rows, args.postgres_url)
        )
        try:
            pinned = args.setup == "pinned"
            with bench.servers(database, (args.app,), Path(tmp), pinned) as started:
                server = started[args.app]
                warm = bench.Run(args.setup, args.backend, args.endpoint, args.app, 0)
                bench.run_wrk(server, warm, 2, args.rows, False)
                raw = args.raw or Path(tmp) / "profile.txt"
                load = bench.Run(args.setup, args.backend, args.endpoint, args.app, 1)
                loader = threading.Thread(
                    target=bench.run_wrk, args=(server, load, args.seconds + 4, args.rows, False)
                )
                loader.start()
                time.sleep(2)
                cpu_before = server.cpu_seconds()
                subprocess.run(
                    [
                        *(
                            ["taskset", "-c", bench.WRK_CPU]
                            if pinned and shutil.which("taskset")
                            else []
                        ),
                        spy,
                        "record",
                        "--pid",
                        str(server.process.pid),
                        "--duration",
                        str(args.seconds),
                        "--rate",
                        str(args.rate),
                        "--gil",
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(raw),
                    ],
                    check=True,
                    capture_output=True,
                )
                cpu = server.cpu_seconds() - cpu_before
                loader.join()
                if not load.valid:
                    raise SystemExit(f"the load run had errors: {load.problem()}")
                cpu_us = cpu / (load.rps * args.seconds) * 1e6 if load.rps else 0.0
                print(
                    f"{args.app} {args.backend} {args.endpoint}: {load.rps:.0f} req/s under "
                    f"py-spy, p99 {load.p99_ms:.1f} ms"
                )
                print(summarize(raw, cpu_us, args.frames))
        finally:
            database.close()


if __name__ == "__main__":
    main()
