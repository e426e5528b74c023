"""The `core` command line: the cyclopts App every command module registers on, and `main`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from importlib.metadata import version

from cyclopts import App

from core.errors import CoreError

app = App(
    name="core",
    help="Core Framework: Django-REST-style APIs on FastAPI. Run from the project root.",
    # The import package (`core`) and the distribution have different names, so cyclopts
    # cannot find the version on its own.
    version=lambda: version("core-framework"),
    # A mistyped option or value is a user mistake: one line, like every other error here.
    error_formatter=lambda error: f"error: {error}",
)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `core` console script.

    Args:
        argv: The arguments after `core`; `sys.argv[1:]` when omitted.
    """
    try:
        app(argv)
    except CoreError as exc:
        # A mistake the user can fix (bad settings, no models, unreachable database) gets one
        # line; anything else is a bug in us or in the project and keeps its traceback.
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _quiet_orphaned_aiosqlite(args: threading.ExceptHookArgs) -> None:
    # After a failed aiosqlite connect, SQLAlchemy leaves the connection's worker thread behind
    # (sqlalchemy/sqlalchemy#13039); it may hand its result to the closed loop before the
    # process exits, which would print a traceback under the one-line error.
    orphan = "_connection_worker_thread" in getattr(args.thread, "name", "")
    if orphan and isinstance(args.exc_value, RuntimeError):
        return
    threading.__excepthook__(args)


def console() -> None:
    """The `core` console script: `main`, ending the process at once on a user error."""
    threading.excepthook = _quiet_orphaned_aiosqlite
    try:
        main()
    except SystemExit as exc:
        if exc.code != 1:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        # Exit without interpreter shutdown: after a failed aiosqlite connect, SQLAlchemy
        # leaves a worker thread behind that raises into stderr while the interpreter tears
        # down (sqlalchemy/sqlalchemy#13039), turning the one-line error into a traceback.
        os._exit(1)
