"""What the migration commands report: revisions, where the database stands with them, and
what one `makemigrations`, `migrate` or `rollback` did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ("MigrateResult", "Migration", "NewMigration")


@dataclass(frozen=True, slots=True)
class Migration:
    """One revision file, and where the database stands with it."""

    revision: str
    message: str
    path: Path
    applied: bool
    head: bool


@dataclass(frozen=True, slots=True)
class NewMigration:
    """What `make_migrations` wrote; `changes` lists the operations, one line each."""

    path: Path
    revision: str
    changes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """The revisions one `migrate` or `rollback` applied (in order) and unapplied (in order)."""

    applied: tuple[Migration, ...] = ()
    unapplied: tuple[Migration, ...] = ()
