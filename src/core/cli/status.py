"""`core status`: the readiness checks of GET /health/ready, from a shell, with the adapter the
container selected for each port.

Registered on `app` by `core.cli` (importing this module adds the command).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Annotated, Any

from cyclopts import Parameter

from core.cli.app import app
from core.cli.container import _load_container
from core.health import PORTS, CheckResult, readiness

__all__ = ("status",)


@app.command
def status(*, app_module: Annotated[str | None, Parameter(name="--app")] = None) -> None:
    """Run the readiness checks of the adapters the container selected and print, per port, the
    adapter class, the outcome and the latency; exit code 1 when a check fails.

    The same checks as GET /health/ready (each adapter's `check()`, at once, each within
    HEALTH_CHECK_TIMEOUT seconds); an adapter without `check()` is "unchecked" and does not fail.
    The container is the app's (APP_MODULE, or --app) when it exists, else `build_container()`
    from the settings. Failures are explained in the log lines above the table (stderr).

    Args:
        app_module: `module:attr` of the CoreApp to check instead of APP_MODULE.
    """
    from core.containers.graph import build_graph

    _application, container, source = _load_container(app_module)
    print(f"container: {source}", file=sys.stderr)
    selected = {use.provider: use.adapter for use in build_graph(container).ports}
    results = asyncio.run(_run(container))
    table = [("CHECK", "ADAPTER", "STATUS", "LATENCY")]
    for name, result in results.items():
        adapter = result.adapter if result.adapter != "?" else selected.get(PORTS[name]) or "?"
        table.append((name, adapter, result.status, f"{result.latency_ms:.1f} ms"))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    failed = [name for name, result in results.items() if result.failed]
    if failed:
        print(f"not ready: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


async def _run(container: Any) -> dict[str, CheckResult]:
    try:
        return await readiness(container)
    finally:
        # Close what the checks opened (pools, broker connections) before the loop ends.
        for provider in PORTS.values():
            await _close(container, provider)


async def _close(container: Any, provider: str) -> None:
    target = container
    for part in provider.split("."):
        target = getattr(target, part)
    try:
        adapter = target()
    except Exception:
        return
    for method in ("stop", "dispose", "close"):
        close = getattr(adapter, method, None)
        if close is None:
            continue
        try:
            outcome = close()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # noqa: S112 (closing after a failed check may fail too)
            continue
        return
