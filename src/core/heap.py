"""Keep full garbage collections off the request path: freeze what a started app holds.

CPython's cyclic collector walks every object of the oldest generation on a full collection.
A started app holds hundreds of thousands of long-lived objects (modules, classes, compiled
schemas and statements, the container's singletons) that never become garbage, and a server
under load runs a full collection every few hundred to thousand requests (objects of requests in
flight survive the young collections and count towards the next full one). Each then stopped the
event loop for 100-250 ms in bench/http: the p99 of every request in flight. `gc.freeze()` moves
the objects alive at startup to a permanent generation that collections skip, so a full
collection walks only what was created since; the objects still die by reference counting.

Only cycles that were already garbage when the app started, or that form among objects frozen
then, wait until the app stops (`gc.unfreeze()` gives them back to the collector).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_holders = 0  # started apps that froze the heap; the last one to stop unfreezes it


@contextmanager
def frozen_heap(enabled: bool = True) -> Iterator[None]:
    """Freeze the objects alive now for the duration of the block (a started app's serving)."""
    global _holders
    if not enabled:
        yield
        return
    gc.freeze()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()
