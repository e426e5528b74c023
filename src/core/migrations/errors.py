"""The error the migration commands raise when the project, its models or its database are wrong."""

from __future__ import annotations

from core.errors import CoreError


class MigrationError(CoreError, RuntimeError):
    """A migration command cannot go on; the message says why in one line, for the CLI to print."""

    code = "migration_error"
    default_detail = "Migration failed."
