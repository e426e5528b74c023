"""The login-vs-reads bench app: a Post ModelViewSet and the ready-made AuthViewSet on SQLite.

* ``GET /posts/{id}/``     a ModelViewSet over ``bench_posts`` (the table of bench/http)
* ``POST /auth/login/``    ``core.auth.AuthViewSet`` with ``User(AbstractUser)`` and the default
                           hasher (pbkdf2_sha256, 600 000 rounds)
* ``GET /bench/hashing/``  this bench's own probe: how many hasher calls ran, on which threads,
                           and their CPU time (``time.thread_time``), since the start

Hashing goes through ``core.auth.hashing.run_hasher`` (the bounded thread pool) unless
``CORE_BENCH_HASH_ON_LOOP=1``: then it runs on the event loop, the way a naive implementation
would. Both are done here, in the bench app, by swapping the ``run_hasher`` name that
``core.auth.models`` imported for a recording wrapper; nothing in src/ changes. In the default
mode the wrapper still hands the call to the real ``run_hasher`` (its pool, its sizing).
``CORE_BENCH_HASH_THREADS=N`` (an investigation knob) gives that pool N threads instead of its
default ``os.cpu_count()``, by pre-setting the module's lazily made pool.
The bench measures logins against reads, not refusals: it turns the login throttles off and
lets the hashing queue grow (AUTH_HASHING_QUEUE_SIZE) past anything its drivers send.
``CORE_BENCH_GC_FREEZE=1`` (another one) calls ``gc.freeze()`` once the app is built, so full
collections stop re-scanning the objects of the imports (see the README: they set GET's p99).

Run (bench/auth/run.py does this, and seeds the database first):
    DATABASE_URL=sqlite+aiosqlite:////tmp/x/bench.db \
        .venv/bin/python -m uvicorn --app-dir bench/auth app:app
"""

from __future__ import annotations

import collections
import functools
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import core.auth.hashing as auth_hashing
import core.auth.models as auth_models
from core import AutoRouter, CoreApp
from core.auth import AbstractUser, AuthViewSet, configure_auth
from core.settings import Settings

# The posts resource is bench/http's (same table, model and ViewSet).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))
from posts import PostViewSet  # noqa: E402

_R = TypeVar("_R")

HASH_ON_LOOP = os.environ.get("CORE_BENCH_HASH_ON_LOOP", "") == "1"
HASH_THREADS = int(os.environ.get("CORE_BENCH_HASH_THREADS") or 0)
SECRET_KEY = "bench-auth-secret-key-not-for-production-0123456789"


class User(AbstractUser):
    __tablename__ = "bench_users"


# -- where hashing runs -------------------------------------------------------------------------
_calls: collections.Counter[str] = collections.Counter()
_cpu_seconds: dict[str, float] = collections.defaultdict(float)
_stats_lock = threading.Lock()
_real_run_hasher = auth_hashing.run_hasher


def _recorded(fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    started = time.thread_time()
    try:
        return fn(*args, **kwargs)
    finally:
        cpu = time.thread_time() - started
        name = threading.current_thread().name
        with _stats_lock:
            _calls[name] += 1
            _cpu_seconds[name] += cpu


async def bench_run_hasher(fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    """`run_hasher` for this bench: on the event loop when HASH_ON_LOOP, else the real one."""
    if HASH_ON_LOOP:
        return _recorded(fn, *args, **kwargs)
    return await _real_run_hasher(functools.partial(_recorded, fn, *args, **kwargs))


# `core.auth.models` did `from core.auth.hashing import run_hasher`: its own name is the one used.
auth_models.run_hasher = bench_run_hasher  # type: ignore[attr-defined]

if HASH_THREADS:
    # uvicorn --workers 1 serves from this process, so the pid check of the pool will match.
    auth_hashing._pool = auth_hashing.HashingPool(workers=HASH_THREADS)
    auth_hashing._pool_pid = os.getpid()


async def hashing_stats() -> dict[str, Any]:
    with _stats_lock:
        return {
            "on_loop": HASH_ON_LOOP,
            "pool_threads": auth_hashing.hashing_pool().workers,
            "calls": dict(_calls),
            "cpu_seconds": {name: round(cpu, 4) for name, cpu in _cpu_seconds.items()},
        }


# -- the app ------------------------------------------------------------------------------------
configure_auth(secret_key=SECRET_KEY, user_model=User, password_hasher="pbkdf2_sha256")

posts = AutoRouter(prefix="/posts")
posts.register("", PostViewSet, basename="post")
auth = AutoRouter()
auth.register("/auth", AuthViewSet)

app = CoreApp(
    settings=Settings(
        database_url=os.environ["DATABASE_URL"],
        throttle_rates={"auth": None, "auth_account": None},
        auth_hashing_queue_size=100_000,
    ),
    routers=[posts, auth],
)
app.fastapi.add_api_route("/bench/hashing/", hashing_stats, methods=["GET"])

if os.environ.get("CORE_BENCH_GC_FREEZE", "") == "1":
    gc.freeze()
