"""`core run`, `core routes` and `core shell`: serve, list and explore the project's app."""

from __future__ import annotations

import asyncio
import code
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from core.cli.app import app
from core.discovery import is_app_factory, load_app, put_on_sys_path, read_settings
from core.errors import ConfigurationError

# prometheus-client's multi-process directory (core.adapters.prometheus.metrics.MULTIPROC_ENV,
# named here so `core run` imports no adapter).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

AppOption = Annotated[
    str | None, Parameter(name="--app", help="module:attr of the CoreApp (APP_MODULE).")
]


@app.command
def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    app_module: AppOption = None,
) -> None:
    """Serve the project's app with uvicorn (development server with --reload).

    Args:
        host: Interface to bind.
        port: Port to bind.
        reload: Restart when a source file changes (one worker).
        workers: Worker processes (ignored with --reload).
    """
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"--port must be between 1 and 65535, got {port}.")
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}.")
    settings = read_settings()
    spec = app_module or settings.app_module
    # Before the app is imported: prometheus-client picks its storage when first imported.
    metrics_dir = _multiprocess_metrics(settings.metrics_enabled and workers > 1 and not reload)
    try:
        # Import once here so a broken app fails with one line, before uvicorn starts.
        loaded = load_app(spec)
        effective = getattr(loaded, "settings", settings)
        if (
            effective.metrics_enabled
            and workers > 1
            and not reload
            and not os.environ.get(MULTIPROC_ENV)
        ):
            print(
                "warning: the app enables metrics in code, not in the environment: with "
                f"--workers {workers} each worker counts alone; set METRICS_ENABLED=true in "
                "the environment or .env.",
                file=sys.stderr,
                flush=True,
            )
        _serve(spec, effective, host=host, port=port, reload=reload, workers=workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics(needed: bool) -> str | None:
    """With METRICS_ENABLED and several workers: a fresh directory for prometheus-client's
    multi-process files, in PROMETHEUS_MULTIPROC_DIR for the workers; returns it when this
    process made it (and removes it at exit). A directory the user set is used as it is."""
    if not needed:
        return None
    if os.environ.get(MULTIPROC_ENV):
        print(f"Metrics: multi-process files in {os.environ[MULTIPROC_ENV]}", flush=True)
        return None
    made = tempfile.mkdtemp(prefix="core-metrics-")
    os.environ[MULTIPROC_ENV] = made
    print(f"Metrics: multi-process files in {made} (removed at exit)", flush=True)
    return made


def _serve(
    spec: str,
    effective: Any,
    *,
    host: str,
    port: int,
    reload: bool,
    workers: int,
) -> None:
    import uvicorn

    from core.logs import process_log_config

    if workers > 1 and not reload and effective.auth_token_store == "memory":
        print(
            f"warning: AUTH_TOKEN_STORE=memory with --workers {workers}: each worker keeps its "
            "own logouts and spent refresh tokens; set AUTH_TOKEN_STORE=redis or database.",
            file=sys.stderr,
            flush=True,
        )
    factory = is_app_factory(spec)
    root = Path.cwd()
    put_on_sys_path(root)
    print(f"Serving {spec} on http://{host}:{port} (docs: http://{host}:{port}/docs)", flush=True)
    uvicorn.run(
        spec,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        app_dir=str(root),
        factory=factory,
        reload_dirs=[str(root)] if reload else None,
        # Applied in each worker process: uvicorn's lines and the app's in Core's format.
        log_config=process_log_config(effective),
    )


@app.command
def routes(*, app_module: AppOption = None) -> None:
    """List every route of the project's app: method, path, name, action and permissions."""
    application = _core_app(app_module)
    rows = [
        (
            ",".join(spec.methods),
            spec.path.rstrip("/") + "/",
            spec.name,
            f"{spec.view.__name__}.{spec.action}",
            ", ".join(_permission_name(p) for p in spec.permissions) or "-",
        )
        for spec in application.routes
    ]
    if not rows:
        print("No routes: the app mounts no AutoRouter.")
        return
    header = ("METHOD", "PATH", "NAME", "ACTION", "PERMISSIONS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@app.command
def shell(*, app_module: AppOption = None) -> None:
    """An interactive Python shell on the project's app, inside a unit of work.

    `app`, `container`, `db` and the models are loaded. Queries run on `db` without
    `.using(db)`: `run(Post.objects.count())`; `run(awaitable)` awaits. `commit()` keeps the
    changes made so far, `rollback()` drops them; leaving drops what was not committed.
    """
    application = _core_app(app_module)
    loop = asyncio.new_event_loop()
    namespace, banner, close = shell_namespace(application, loop)
    try:
        code.interact(banner=banner, local=namespace, exitmsg="")
    finally:
        close()
        loop.close()


def shell_namespace(
    application: Any, loop: asyncio.AbstractEventLoop
) -> tuple[dict[str, Any], str, Callable[[], None]]:
    """What `core shell` opens with: its namespace, its banner and what closes it.

    The app's container and a fresh unit of work (`db`) become ambient in the calling
    context; each `run()` copies that context into the task it runs, so QuerySets need no
    `.using(db)`. `close()` rolls back what was not committed and releases the database.
    """
    from core.context import set_container, set_session
    from core.models import Model
    from core.models.session import close as close_session
    from core.models.session import commit as commit_session
    from core.models.session import rollback as rollback_session

    container = application.container
    database = container.database.database()
    db = database.session()
    set_container(container)
    set_session(db)

    def run(awaitable: Any) -> Any:
        return loop.run_until_complete(awaitable)

    def commit() -> None:
        """Commit the shell's unit of work; later queries start a new transaction."""
        run(commit_session(db))

    def rollback() -> None:
        """Drop every change since the last `commit()`."""
        run(rollback_session(db))

    def close() -> None:
        try:
            run(rollback_session(db))
            run(close_session(db))
        finally:
            run(database.dispose())

    models = sorted(mapper.class_.__name__ for mapper in Model.registry.mappers)
    namespace: dict[str, Any] = {
        "app": application,
        "container": container,
        "db": db,
        "run": run,
        "commit": commit,
        "rollback": rollback,
        **{mapper.class_.__name__: mapper.class_ for mapper in Model.registry.mappers},
    }
    banner = (
        "Core shell on a unit of work: queries need no .using(db), e.g. "
        "run(Model.objects.count()). commit() keeps your changes, rollback() drops them; "
        "leaving drops what was not committed.\n"
        f"Loaded: app, container, db, run(awaitable), commit(), rollback(); models: "
        f"{', '.join(models) or '(none)'}"
    )
    return namespace, banner, close


def _core_app(app_module: str | None) -> Any:
    spec = app_module or read_settings().app_module
    application = load_app(spec)
    if not hasattr(application, "routes") or not hasattr(application, "container"):
        raise ConfigurationError(f"{spec!r} is not a CoreApp.")
    return application


def _permission_name(permission: Any) -> str:
    return permission.__name__ if isinstance(permission, type) else repr(permission)
