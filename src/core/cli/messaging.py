"""`core consumer`, `core topics list|create` and `core outbox relay|status`.

`consumer` and `outbox` load the project's app (APP_MODULE) so the consumers, events and
container are the app's; `topics` needs only the settings (the broker and its address).
`core.messaging` is imported inside the commands: importing the CLI must not declare the outbox
tables for a project that does not use events (`core makemigrations` would add them).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from cyclopts import App, Parameter

from core.cli.app import app
from core.discovery import load_app, read_settings
from core.errors import ConfigurationError
from core.logs import configure_logging
from core.settings import Settings

__all__ = ("consumer", "outbox_app", "topics_app")

AppOption = Annotated[
    str | None, Parameter(name="--app", help="module:attr of the CoreApp (APP_MODULE).")
]

topics_app = App(
    name="topics",
    help="List and create the broker's topics, from the settings alone (no app module needed).",
)
outbox_app = App(name="outbox", help="The transactional outbox: relay it, or see its state.")


def _core_app(app_module: str | None) -> Any:
    settings = read_settings()
    application = load_app(app_module or settings.app_module)
    if not hasattr(application, "container") or not hasattr(application, "lifespan"):
        raise ConfigurationError(
            f"{app_module or settings.app_module} is not a CoreApp "
            f"(got {type(application).__name__})."
        )
    return application


@asynccontextmanager
async def _until_signalled() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT, so the caller can shut down cleanly."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stopped.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not on this platform or thread
            pass
    try:
        yield stopped
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


@app.command
def consumer(
    *,
    group: str | None = None,
    topic: Annotated[list[str] | None, Parameter(name="--topic", negative_iterable=())] = None,
    app_module: AppOption = None,
) -> None:
    """Run the project's event consumers until SIGTERM or SIGINT.

    Every `@consumer` of the app by default; `--group` and `--topic` (repeatable) narrow it.
    Run several processes with the same group to share its events. On SIGTERM or SIGINT the
    consumers stop taking events, finish the ones in flight, and the process exits.

    Args:
        group: Only the consumers of this group.
        topic: Only these topics (repeat `--topic` for several).
    """
    application = _core_app(app_module)
    configure_logging(application.settings, process=True)
    asyncio.run(_consume(application, group, topic or []))


async def _consume(application: Any, group: str | None, topics: list[str]) -> None:
    from core.messaging import ConsumerSelection, declared_consumers

    selection = ConsumerSelection(
        groups=frozenset([group]) if group else None,
        topics=frozenset(topics) if topics else None,
    )
    chosen = selection.apply(declared_consumers(application.container.declarations()))
    if not chosen:
        raise ConfigurationError(
            "No consumers to run: the app declares no @consumer class (import the modules "
            "that declare them from the app module)."
        )
    runtime = application.container.messaging.runtime()
    runtime.consumers = selection
    from core.metrics import metrics_server

    async with (
        _until_signalled() as stopped,
        application.lifespan(),
        metrics_server(application.container),
    ):
        for declaration, read in chosen:
            print(f"Consuming {', '.join(read)} as {declaration.group} ({declaration.name})")
        print("Waiting for events (Ctrl+C or SIGTERM to stop).", flush=True)
        await stopped.wait()
        print("Stopping: finishing the events in flight...", flush=True)
    print("Stopped.", flush=True)


def _run_admin(coroutine: Any) -> Any:
    # The driver logs each failed connection attempt; the error raised (and printed as one
    # line) already says what went wrong.
    driver = logging.getLogger("aiokafka")
    level = driver.level
    driver.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coroutine)
    finally:
        driver.setLevel(level)


def _broker_admin(app_module: str | None, operation: str) -> tuple[Any, Settings]:
    """The broker's `operation` and the settings, from the settings alone (MESSAGE_BROKER and
    its address need no app module), or from the app `--app` names."""
    if app_module is None:
        from core.containers.core import build_container

        settings = read_settings()
        broker = build_container(settings).messaging.broker()
    else:
        application = _core_app(app_module)
        settings = application.settings
        broker = application.container.messaging.broker()
    method = getattr(broker, operation, None)
    if method is None:
        raise ConfigurationError(
            f"`core topics` is not applicable to MESSAGE_BROKER={settings.message_broker}: its "
            "topics exist only inside a running process and need no creating."
        )
    return method, settings


@topics_app.command(name="list")
def list_topics(*, app_module: AppOption = None) -> None:
    """List the broker's event topics (Kafka topics, Redis streams).

    On Redis, the task queue's streams (TASK_KEY_PREFIX) live beside the event topics: they
    are listed apart, under their own heading.
    """
    list_names, settings = _broker_admin(app_module, "list_topics")
    names: list[str] = _run_admin(list_names())
    task_prefix = f"{settings.task_key_prefix}:"
    streams = [name for name in names if name.startswith(task_prefix)]
    topics = [name for name in names if not name.startswith(task_prefix)]
    if not topics:
        print("No topics.")
    for name in topics:
        print(name)
    if streams:
        print(f"\nTask queue streams ({task_prefix}*, read by `core worker`; not event topics):")
        for name in streams:
            print(f"  {name}")


@topics_app.command
def create(
    name: str, *, partitions: int = 1, replication_factor: int = 1, app_module: AppOption = None
) -> None:
    """Create a topic (Kafka; on RabbitMQ, declare its exchange).

    Args:
        name: The topic.
        partitions: Kafka partitions: at most this many consumers of one group share the topic.
        replication_factor: Kafka replicas of each partition.
    """
    if partitions < 1 or replication_factor < 1:
        raise ConfigurationError("--partitions and --replication-factor must be at least 1.")
    create_topic, settings = _broker_admin(app_module, "create_topic")
    options: dict[str, Any] = {}
    if "replication_factor" in inspect.signature(create_topic).parameters:
        options["replication_factor"] = replication_factor
    elif replication_factor != 1:
        raise ConfigurationError(
            f"--replication-factor is not applicable to MESSAGE_BROKER={settings.message_broker}."
        )
    created = _run_admin(create_topic(name, partitions, **options))
    if created:
        print(f"Created topic {name} ({partitions} partition{'s' if partitions != 1 else ''}).")
    else:
        print(f"Topic {name} already exists; left unchanged.")


@outbox_app.command
def relay(*, once: bool = False, app_module: AppOption = None) -> None:
    """Relay committed outbox events to the broker until SIGTERM or SIGINT.

    Apps relay their own outbox by default; run this where OUTBOX_RELAY_IN_PROCESS=false (e.g.
    several SQLite app processes, which must share one relay). On PostgreSQL any number of
    relays can run side by side.

    Args:
        once: Relay what is pending now, then exit.
    """
    application = _core_app(app_module)
    asyncio.run(_relay(application, once))


async def _relay(application: Any, once: bool) -> None:
    import core.messaging  # noqa: F401  (declares the outbox tables, starts the runtime)

    runtime = application.container.messaging.runtime()
    runtime.consumers = None
    runtime.run_relay = not once
    from core.metrics import metrics_server

    async with (
        _until_signalled() as stopped,
        application.lifespan(),
        metrics_server(application.container),
    ):
        if once:
            sent = await runtime.relay.flush()
            print(f"Relayed {sent} event{'s' if sent != 1 else ''}.")
            return
        print("Relaying the outbox (Ctrl+C or SIGTERM to stop).", flush=True)
        await stopped.wait()
    print("Stopped.", flush=True)


@outbox_app.command
def status(*, app_module: AppOption = None) -> None:
    """Count pending and sent outbox rows, and show the oldest pending one."""
    application = _core_app(app_module)
    print(asyncio.run(_status(application)))


async def _status(application: Any) -> str:
    from core.messaging import OutboxMessage

    async with application.session() as db:
        rows = OutboxMessage.objects.using(db)
        pending = await rows.filter(status="pending").count()
        sent = await rows.filter(status="sent").count()
        failed = await rows.filter(status="failed").count()
        oldest = await rows.filter(status="pending").order_by("id").first()
    lines = [f"pending: {pending}", f"sent (kept for OUTBOX_RETENTION): {sent}"]
    if failed:
        lines.append(f"failed: {failed} (`core outbox failed` lists them)")
    if oldest is not None:
        created = oldest.created_at.strftime("%Y-%m-%d %H:%M:%S")
        line = (
            f"oldest pending: {oldest.name} to {oldest.topic}, created {created}, "
            f"{oldest.attempts} failed attempt(s)"
        )
        if oldest.last_error:
            line += f", last error: {oldest.last_error}"
        lines.append(line)
    return "\n".join(lines)
