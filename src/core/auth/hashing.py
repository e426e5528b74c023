"""Run password hashing off the event loop.

Hashing is deliberately slow (argon2 here takes ~0.1 s and 64 MiB). Run on the event loop it
would stall every other request; run on the loop's shared default executor, a burst of logins
could take all its threads and, with argon2 or scrypt, a lot of memory. So hashing gets its own
small pool, one thread per CPU: the hash libraries (hashlib, argon2-cffi, bcrypt) release the
GIL, and more threads than cores would only queue the work inside the OS instead of here.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_executor_lock = threading.Lock()


def _hashing_executor() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    # A forked worker (gunicorn --preload) inherits the pool object but not its threads, and
    # would wait forever on them: each process builds its own pool, lazily, on first use.
    pid = os.getpid()
    with _executor_lock:
        if _executor is None or _executor_pid != pid:
            _executor = ThreadPoolExecutor(
                max_workers=_usable_cpus(), thread_name_prefix="core-hasher"
            )
            _executor_pid = pid
        return _executor


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, cgroup cpusets), not the machine's: more hash
    # threads than usable cores only slow every request down (bench/auth/README.md).
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def run_hasher(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Call a CPU-bound hasher method in the hashing thread pool and await its result.

    The pool is shared by every event loop and app in the process (it holds no app state),
    and bounded to one thread per CPU so a burst of logins queues instead of exhausting memory.

    Args:
        fn: usually `hasher.hash`, `hasher.verify` or `hasher.needs_rehash`.
        *args: positional arguments for `fn`.
        **kwargs: keyword arguments for `fn`.

    Returns:
        What `fn` returns; what it raises propagates.

    Example:
        >>> hasher = app.container.auth.password_hasher()
        >>> ok = await run_hasher(hasher.verify, password, user.password_hash)
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_hashing_executor(), functools.partial(fn, *args, **kwargs))
