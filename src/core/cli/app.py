"""The `core` command line: the cyclopts App every command module registers on, and `main`."""

from __future__ import annotations

import sys
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
