"""The error `core init` and `core deploy` raise when they cannot go on."""

from __future__ import annotations

from core.errors import CoreError


class ScaffoldError(CoreError, RuntimeError):
    """A project or deployment file cannot be written, or its virtualenv cannot be made.

    The message says why in one line, for the CLI to print.
    """

    code = "scaffold_error"
    default_detail = "Cannot create the project."
