"""`core run`, `core routes` and `core shell`: serve, list and explore the project's app."""

from __future__ import annotations

import asyncio
import code
import sys
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from core.cli.app import app
from core.discovery import is_app_factory, load_app, put_on_sys_path, read_settings
from core.errors import ConfigurationError

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
    import uvicorn

    if not 1 <= port <= 65535:
        raise ConfigurationError(f"--port must be between 1 and 65535, got {port}.")
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}.")
    settings = read_settings()
    spec = app_module or settings.app_module
    # Import once here so a broken app fails with one line, before uvicorn starts.
    loaded = load_app(spec)
    effective = getattr(loaded, "settings", settings)
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
    """An interactive Python shell with `app`, `container` and the models loaded.

    `run(awaitable)` awaits; `db = new_session()` opens a session that QuerySets use without
    `.using(db)`, e.g. `run(Post.objects.count())`; `run(db.commit())` keeps changes.
    """
    from core.context import _container
    from core.models import Model

    application = _core_app(app_module)
    # Set in this (the shell's) context: every run() copies it into its task.
    _container.set(application.container)
    loop = asyncio.new_event_loop()

    def run_coroutine(awaitable: Any) -> Any:
        return loop.run_until_complete(awaitable)

    namespace: dict[str, Any] = {
        "app": application,
        "container": application.container,
        "run": run_coroutine,
        "new_session": lambda: _new_session(application),
        **{mapper.class_.__name__: mapper.class_ for mapper in Model.registry.mappers},
    }
    banner = (
        "Core shell: app, container, run(awaitable), new_session(), and your models: "
        + ", ".join(sorted(mapper.class_.__name__ for mapper in Model.registry.mappers))
    )
    try:
        code.interact(banner=banner, local=namespace, exitmsg="")
    finally:
        loop.close()


def _new_session(application: Any) -> Any:
    from core.context import _session

    session = application.container.database.database().session()
    _session.set(session)
    return session


def _core_app(app_module: str | None) -> Any:
    spec = app_module or read_settings().app_module
    application = load_app(spec)
    if not hasattr(application, "routes") or not hasattr(application, "container"):
        raise ConfigurationError(f"{spec!r} is not a CoreApp.")
    return application


def _permission_name(permission: Any) -> str:
    return permission.__name__ if isinstance(permission, type) else repr(permission)
