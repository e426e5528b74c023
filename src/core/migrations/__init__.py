"""Migrations: Alembic inside a user's project, behind `core makemigrations` and `core migrate`."""

from core.migrations.errors import MigrationError
from core.migrations.history import MigrateResult, Migration, NewMigration
from core.migrations.project import Project
from core.migrations.runner import MigrationRunner

__all__ = (
    "MigrateResult",
    "Migration",
    "MigrationError",
    "MigrationRunner",
    "NewMigration",
    "Project",
)
