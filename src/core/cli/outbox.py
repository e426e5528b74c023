"""`core outbox failed|show|requeue`: the outbox rows the relay gave up on, and sending them again.

A row is parked as `failed` after OUTBOX_MAX_ATTEMPTS failed publishes (the broker refused that
one message); the relay goes on with the others. These commands run on the project's database
alone: no broker is needed to look at or requeue rows, and a running relay sends what is
requeued on its next pass.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from cyclopts import Parameter

from core.cli.messaging import AppOption, _core_app, outbox_app
from core.errors import ConfigurationError, NotFoundError

__all__ = ("failed", "requeue", "show")

_ERROR_WIDTH = 80


@outbox_app.command
def failed(*, limit: int = 50, app_module: AppOption = None) -> None:
    """List the outbox rows parked as failed, oldest first, with their last error.

    Args:
        limit: Show at most this many.
    """
    application = _core_app(app_module)
    rows, total = asyncio.run(_failed(application, limit))
    if not rows:
        print("No failed outbox rows.")
        return
    table = [("ID", "EVENT", "TOPIC", "KEY", "ATTEMPTS", "LAST ERROR")]
    for row in rows:
        error = (row.last_error or "").splitlines()[0] if row.last_error else "-"
        if len(error) > _ERROR_WIDTH:
            error = error[: _ERROR_WIDTH - 3] + "..."
        table.append((str(row.id), row.name, row.topic, row.key or "-", str(row.attempts), error))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if total > len(rows):
        print(f"... and {total - len(rows)} more (--limit)")


async def _failed(application: Any, limit: int) -> tuple[list[Any], int]:
    from core.messaging import OutboxMessage

    async with application.session() as db:
        rows = OutboxMessage.objects.using(db).filter(status="failed")
        return await rows.order_by("id")[:limit].all(), await rows.count()


@outbox_app.command
def show(row_id: int, /, *, app_module: AppOption = None) -> None:
    """Show one outbox row: its state, attempts, last error, headers and event.

    Args:
        row_id: The row's id, as `core outbox failed` lists it.
    """
    application = _core_app(app_module)
    row = asyncio.run(_get(application, row_id))
    fields = [
        ("id", str(row.id)),
        ("status", row.status),
        ("event", f"{row.name} ({row.event_id})"),
        ("topic", row.topic),
        ("key", row.key if row.key is not None else "-"),
        ("attempts", str(row.attempts)),
        ("created at", row.created_at.isoformat() if row.created_at else "-"),
        ("next attempt at", row.next_attempt_at.isoformat() if row.next_attempt_at else "-"),
        ("sent at", row.sent_at.isoformat() if row.sent_at else "-"),
        ("last error", row.last_error or "-"),
        ("headers", json.dumps(row.headers, sort_keys=True)),
    ]
    for label, value in fields:
        print(f"{label + ':':17}{value}")
    print("payload:")
    print(json.dumps(row.payload, indent=2, sort_keys=True, default=str))


async def _get(application: Any, row_id: int) -> Any:
    from core.messaging import OutboxMessage

    async with application.session() as db:
        row = await OutboxMessage.objects.using(db).filter(id=row_id).first()
    if row is None:
        raise NotFoundError(f"No outbox row has id {row_id}.")
    return row


@outbox_app.command
def requeue(
    row_ids: Annotated[list[int] | None, Parameter(negative_iterable=())] = None,
    /,
    *,
    all_failed: Annotated[bool, Parameter(name="--all", negative="")] = False,
    app_module: AppOption = None,
) -> None:
    """Send failed outbox rows again: back to pending, due now, with a fresh attempt count.

    Args:
        row_ids: The ids of the failed rows to requeue.
        all_failed: Requeue every failed row.
    """
    if bool(row_ids) == all_failed:
        raise ConfigurationError("Name the failed rows to requeue, or pass --all.")
    application = _core_app(app_module)
    count = asyncio.run(_requeue(application, None if all_failed else list(row_ids or [])))
    print(f"Requeued {count} row{'s' if count != 1 else ''}.")
    if row_ids and count < len(set(row_ids)):
        raise ConfigurationError(
            f"{len(set(row_ids)) - count} of the ids given are not failed outbox rows."
        )


async def _requeue(application: Any, ids: list[int] | None) -> int:
    from core.messaging.outbox import requeue_failed

    async with application.session() as db:
        return await requeue_failed(db, ids)
