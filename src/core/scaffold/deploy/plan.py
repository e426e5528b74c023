"""What a project's deployment runs, decided from its settings and its app's declarations.

`core deploy docker|pm2|k8s` all start here: which processes (api, worker, scheduler,
consumer) the project can run, which backing services (PostgreSQL, Redis, RabbitMQ, Kafka) its
settings name, and which extras of the framework those need.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.discovery import import_app_module, read_settings
from core.scaffold.environment import FrameworkSource, installed_framework, parse_python_version
from core.scaffold.errors import ScaffoldError
from core.settings import Settings

Service = Literal["postgres", "redis", "rabbitmq", "kafka"]
HTTP_PORT = 8000
HEALTH_PATH = "/health"
LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"


@dataclass(frozen=True, slots=True)
class Process:
    """One long-running process of the deployment.

    Attributes:
        name: `api`, `worker`, `scheduler` or `consumer`.
        args: Its `core` command line, without `core`.
        serves_http: Whether it listens on HTTP_PORT (and has the health endpoint).
        stop_seconds: How long it may take to stop gracefully (finish tasks, events in flight).
    """

    name: str
    args: tuple[str, ...]
    serves_http: bool = False
    stop_seconds: int = 30


API = Process("api", ("run", "--host", "0.0.0.0", "--port", str(HTTP_PORT)), serves_http=True)
WORKER = Process("worker", ("worker",), stop_seconds=60)
SCHEDULER = Process("scheduler", ("scheduler",))
CONSUMER = Process("consumer", ("consumer",), stop_seconds=45)
MIGRATE_ARGS = ("migrate",)


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """Everything the deployment writers need to know about the project.

    Attributes:
        root: The project root (the working directory).
        name: The project's name as a DNS label: image, Kubernetes and PM2 names.
        settings: The project's settings (environment, then `.env`).
        processes: The processes to run, `api` first.
        left_out: `(process, reason)` for each one the project cannot run as configured.
        services: The backing services the settings name.
        extras: The core-framework extras those services need.
        framework: Where the running framework was installed from.
        has_migrations: Whether the project has a migrations folder to apply on deploy.
        promoted: `(setting, from, to)` for each embedded default replaced for production
            (`settings` already holds the replacements).
    """

    root: Path
    name: str
    settings: Settings
    processes: tuple[Process, ...]
    left_out: tuple[tuple[str, str], ...]
    services: tuple[Service, ...]
    extras: tuple[str, ...]
    framework: FrameworkSource
    has_migrations: bool
    promoted: tuple[tuple[str, str, str], ...] = ()

    @property
    def database_dialect(self) -> str:
        """`postgresql`, `sqlite`, `memory`, ... from DATABASE_URL."""
        return _dialect(self.settings.database_url)

    def summary(self) -> list[str]:
        """Lines telling what the deployment runs and what it leaves out."""
        lines = []
        if self.promoted:
            changes = ", ".join(f"{name} {old} -> {new}" for name, old, new in self.promoted)
            lines.append(f"promoted for production: {changes}")
        lines.append(f"processes: {', '.join(p.name for p in self.processes)}")
        lines += [f"left out: {name} ({reason})" for name, reason in self.left_out]
        if self.services:
            lines.append(f"services the settings name: {', '.join(self.services)}")
        return lines


def plan_deployment(root: Path | None = None, *, app_module: str | None = None) -> DeployPlan:
    """Read the project in `root` (the working directory by default) and decide its deployment.

    Imports the app module (APP_MODULE or `app_module`), as `core worker` and `core consumer`
    do, to learn whether it declares periodic tasks and consumers.

    Raises:
        ConfigurationError: the settings are invalid, or the app module is missing or broken.
    """
    root = root or Path.cwd()
    settings = read_settings()
    import_app_module(app_module or settings.app_module, root=root)
    name = project_name(root)
    settings, promoted = promote(settings, name)
    processes, left_out = _processes(settings)
    services = _services(settings)
    return DeployPlan(
        root=root,
        name=name,
        settings=settings,
        promoted=promoted,
        processes=processes,
        left_out=left_out,
        services=services,
        extras=tuple(dict.fromkeys(_EXTRA[service] for service in services)),
        framework=_framework(),
        has_migrations=(root / settings.migrations_dir / "env.py").is_file(),
    )


def promote(settings: Settings, name: str) -> tuple[Settings, tuple[tuple[str, str, str], ...]]:
    """The settings with the embedded defaults replaced by what runs behind several replicas.

    SQLite (or `memory://`) becomes PostgreSQL, and the in-memory task queue, event broker and
    token store become Redis: a file or a process's memory is not shared between replicas.
    Returns the new settings and `(setting, from, to)` per change.
    """
    update: dict[str, str] = {}
    promoted: list[tuple[str, str, str]] = []
    dialect = _dialect(settings.database_url)
    if dialect in ("sqlite", "memory"):
        # The host and password are the deploy target's to fill in: compose's `db`, a
        # cluster's service; the role and database are named after the project.
        role = re.sub(r"[^a-z0-9_]", "_", name)
        update["database_url"] = f"postgresql+asyncpg://{role}@localhost:5432/{role}"
        before = "SQLite" if dialect == "sqlite" else "memory"
        promoted.append(("DATABASE_URL", before, "PostgreSQL"))
    for setting, label in (
        ("task_broker", "TASK_BROKER"),
        ("message_broker", "MESSAGE_BROKER"),
        ("auth_token_store", "AUTH_TOKEN_STORE"),
    ):
        if getattr(settings, setting) == "memory":
            update[setting] = "redis"
            promoted.append((label, "memory", "Redis"))
    if not update:
        return settings, ()
    return settings.model_copy(update=update), tuple(promoted)


def project_name(root: Path) -> str:
    """The project's name as a DNS-1123 label of at most 40 characters (room for suffixes)."""
    name = _pyproject_name(root) or root.name
    label = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return label or "app"


def python_version(root: Path, requested: str | None) -> str:
    """`X.Y` for the image: `requested`, else the project's `.venv`, else the running Python.

    Raises:
        ConfigurationError: `requested` is malformed or older than the framework supports.
    """
    if requested:
        version = parse_python_version(requested)
        return f"{version[0]}.{version[1]}"
    config = root / ".venv" / "pyvenv.cfg"
    if config.is_file():
        match = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", config.read_text(), re.M)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _processes(settings: Settings) -> tuple[tuple[Process, ...], tuple[tuple[str, str], ...]]:
    # Always a worker: `.delay()` from the API needs one to run the task.
    processes = [API, WORKER]
    left_out: list[tuple[str, str]] = []
    if _declares_periodic_tasks():
        processes.append(SCHEDULER)
    else:
        left_out.append(("scheduler", "the app declares no @periodic_task"))
    if settings.message_broker == "memory":
        left_out.append(("consumer", "MESSAGE_BROKER=memory runs the consumers inside the API"))
    elif not _declares_consumers():
        left_out.append(("consumer", "the app declares no @consumer"))
    else:
        processes.append(CONSUMER)
    return tuple(processes), tuple(left_out)


def _declares_periodic_tasks() -> bool:
    from core.declarations import declarations

    return bool(declarations().periodic_tasks())


def _declares_consumers() -> bool:
    from core.declarations import declarations

    return bool(declarations().consumers)


_EXTRA: dict[Service, str] = {
    "postgres": "postgres",
    "redis": "redis",
    "rabbitmq": "rabbitmq",
    "kafka": "kafka",
}


def _services(settings: Settings) -> tuple[Service, ...]:
    services: list[Service] = []
    if _dialect(settings.database_url).startswith("postgres"):
        services.append("postgres")
    if "redis" in (
        settings.message_broker,
        settings.task_broker,
        settings.auth_token_store,
        settings.throttle_store,
    ):
        services.append("redis")
    if settings.message_broker == "rabbitmq":
        services.append("rabbitmq")
    if settings.message_broker == "kafka":
        services.append("kafka")
    return tuple(services)


def _dialect(url: str) -> str:
    if url.startswith("memory:"):
        return "memory"
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        raise ScaffoldError(f"DATABASE_URL is not a database URL: {url!r}.") from None


def _framework() -> FrameworkSource:
    try:
        return installed_framework()
    except ScaffoldError:
        # Running from a source tree, not an installed distribution: no version to pin.
        return FrameworkSource(version="")


def _pyproject_name(root: Path) -> str | None:
    import tomllib

    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (tomllib.TOMLDecodeError, OSError, AttributeError):
        return None
    return name if isinstance(name, str) else None
