"""Run password hashing off the event loop, in a bounded pool.

Hashing is deliberately slow (argon2 here takes ~0.1 s and 64 MiB). Run on the event loop it
would stall every other request; run on the loop's shared default executor, a burst of logins
could take all its threads and, with argon2 or scrypt, a lot of memory. So hashing gets its own
small pool, one thread per CPU: the hash libraries (hashlib, argon2-cffi, bcrypt) release the
GIL, and more threads than cores would only queue the work inside the OS instead of here.

The pool's queue is bounded too (AUTH_HASHING_QUEUE_SIZE): past it, a call fails at once with
`ServiceBusyError` (503 with `Retry-After`) instead of making every caller wait behind a flood
of logins.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from core.errors import ServiceBusyError

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Calls that may wait for a hashing thread before new ones are refused (AUTH_HASHING_QUEUE_SIZE).
DEFAULT_QUEUE_SIZE = 64


class HashingPool:
    """A thread pool for password hashing whose queue is bounded.

    At most `workers` calls run and `queue_size` wait; one more raises `ServiceBusyError`
    without waiting, its `Retry-After` estimated from the recent call times.

    Args:
        workers: hashing threads; one per usable CPU by default.
        queue_size: calls that may wait for a thread.
    """

    def __init__(self, workers: int | None = None, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.workers = workers if workers is not None else _usable_cpus()
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="core-hasher"
        )
        self._lock = threading.Lock()  # event loops of several threads may share the pool
        self._pending = 0
        self._seconds_per_call = 0.1  # a moving average, seeded with a slow hash

    @property
    def pending(self) -> int:
        """Calls running or waiting."""
        return self._pending

    @property
    def capacity(self) -> int:
        """Calls that may be running or waiting at once: `workers + queue_size`."""
        return self.workers + self.queue_size

    async def run(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Call `fn` in a hashing thread and await its result.

        Raises:
            ServiceBusyError: every thread is busy and the queue is full.
        """
        with self._lock:
            if self._pending >= self.capacity:
                waves = self._pending / self.workers
                raise ServiceBusyError(retry_after=waves * self._seconds_per_call)
            self._pending += 1
        if _observers:
            self._notify()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, functools.partial(self._timed, fn, *args, **kwargs)
            )
        finally:
            with self._lock:
                self._pending -= 1
            if _observers:
                self._notify()

    def load(self) -> tuple[int, int, int]:
        """`(running, waiting, queue_size)`: calls hashing now, calls waiting for a thread,
        and how many may wait."""
        pending = self._pending
        return min(pending, self.workers), max(pending - self.workers, 0), self.queue_size

    def _notify(self) -> None:
        load = self.load()
        for observer in list(_observers):
            observer(*load)

    def _timed(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.monotonic() - started
            self._seconds_per_call = 0.8 * self._seconds_per_call + 0.2 * elapsed


_pool: HashingPool | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()
_queue_size = DEFAULT_QUEUE_SIZE
_observers: list[Callable[[int, int, int], None]] = []


def hashing_pool() -> HashingPool:
    """This process's hashing pool, shared by every event loop and app in it."""
    global _pool, _pool_pid
    # A forked worker (gunicorn --preload) inherits the pool object but not its threads, and
    # would wait forever on them: each process builds its own pool, lazily, on first use.
    pid = os.getpid()
    with _pool_lock:
        if _pool is None or _pool_pid != pid:
            _pool = HashingPool(queue_size=_queue_size)
            _pool_pid = pid
        return _pool


def pool_load() -> tuple[int, int, int]:
    """`(running, waiting, queue_size)` of this process's hashing pool (`HashingPool.load`);
    builds no pool."""
    with _pool_lock:
        pool = _pool if _pool_pid == os.getpid() else None
        return pool.load() if pool is not None else (0, 0, _queue_size)


def observe_pool(observer: Callable[[int, int, int], None]) -> Callable[[], None]:
    """Call `observer(running, waiting, queue_size)` whenever this process's pool starts or
    finishes a hash (the metrics recorder's gauges); returns what stops it."""
    _observers.append(observer)

    def stop() -> None:
        with contextlib.suppress(ValueError):
            _observers.remove(observer)

    return stop


def set_queue_size(size: int) -> int:
    """Bound this process's hashing queue to `size` waiting calls; returns the previous bound.

    The composition root calls it when an app starts (from AUTH_HASHING_QUEUE_SIZE). The pool
    is process-wide, so the app started last sets it.
    """
    global _queue_size
    if size < 0:
        raise ValueError("The hashing queue size cannot be negative.")
    with _pool_lock:
        previous, _queue_size = _queue_size, size
        if _pool is not None:
            _pool.queue_size = size
    if _observers:
        load = pool_load()
        for observer in list(_observers):
            observer(*load)
    return previous


async def bounded_queue(size: int) -> AsyncIterator[int]:
    """A container resource: the hashing queue bound while an app runs, restored after it."""
    previous = set_queue_size(size)
    try:
        yield size
    finally:
        set_queue_size(previous)


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
    and bounded to one thread per CPU so a burst of logins queues instead of exhausting memory;
    its queue is bounded too.

    Args:
        fn: usually `hasher.hash`, `hasher.verify` or `hasher.needs_rehash`.
        *args: positional arguments for `fn`.
        **kwargs: keyword arguments for `fn`.

    Returns:
        What `fn` returns; what it raises propagates.

    Raises:
        ServiceBusyError: the hashing queue is full (AUTH_HASHING_QUEUE_SIZE): 503 with
            `Retry-After` for an HTTP caller.

    Example:
        >>> hasher = app.container.auth.password_hasher()
        >>> ok = await run_hasher(hasher.verify, password, user.password_hash)
    """
    return await hashing_pool().run(fn, *args, **kwargs)
