"""Drive an ASGI app's lifespan in a task of its own, as a server (uvicorn) does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[None]:
    """Run `app`'s ASGI lifespan (startup, then shutdown on exit) in a separate task.

    The code in the block runs outside that task, as a server's other tasks do: it sees no
    context the lifespan sets.
    """
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    server = asyncio.create_task(app(scope, to_app.get, from_app.put), name="lifespan")
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        await server
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await server
        if stopped["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"the app did not stop cleanly: {stopped}")
