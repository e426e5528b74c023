"""`core makemigrations`, `core migrate` and `core showmigrations`: Alembic behind the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from core.cli.app import app

if TYPE_CHECKING:
    from core.migrations import MigrateResult, MigrationRunner


def _runner(app_module: str | None = None) -> MigrationRunner:
    # Imported here, not at the top, so `core --help` and the other commands do not pay for
    # importing Alembic.
    from core.migrations import MigrationRunner, Project

    return MigrationRunner(Project.discover(app_module=app_module))


@app.command
def makemigrations(
    *,
    name: Annotated[str | None, Parameter(name=("--name", "-n"))] = None,
    empty: Annotated[bool, Parameter(negative=())] = False,
    check: Annotated[bool, Parameter(negative=())] = False,
    app_module: Annotated[str | None, Parameter(name="--app")] = None,
) -> None:
    """Write a migration for what changed between the models and the migrations.

    Imports the app module (APP_MODULE, default `src.main:app`) so the models register,
    replays the migrations on a scratch database of the same kind as DATABASE_URL (a temporary
    SQLite file, or a temporary PostgreSQL database on the same server), compares the models
    with it, and writes the difference to MIGRATIONS_DIR/versions. The live database is never
    read, so it may be behind or absent. The first run creates the migrations folder. Prints
    "No changes detected" and writes nothing when the migrations already match the models.

    Args:
        name: Message that also names the file, e.g. `add_phone`. Default: from the changes.
        empty: Write a migration with empty upgrade/downgrade, to fill in by hand.
        check: Write nothing; exit 1 when the models have changes no migration holds (for CI).
        app_module: `module:attr` to import instead of APP_MODULE.
    """
    runner = _runner(app_module)
    if check:
        changes = runner.pending_changes()
        if not changes:
            print("No changes detected")
            return
        print("Changes not in a migration yet (run `core makemigrations`):")
        for change in changes:
            print(f"  {change}")
        raise SystemExit(1)
    created = runner.make_migrations(name, empty=empty)
    if created is None:
        print("No changes detected")
        return
    print(f"Created {runner.project.display(created.path)}")
    for change in created.changes:
        print(f"  {change}")


@app.command
def migrate(
    *,
    rollback: Annotated[bool, Parameter(negative=())] = False,
    to: str | None = None,
) -> None:
    """Apply the migrations to the database at DATABASE_URL (all of them by default).

    Args:
        rollback: Unapply the latest applied migration only.
        to: Revision to move to, up or down: an id or unique prefix, `head`, or `base`
            (none applied).
    """
    from core.migrations import MigrationError

    if rollback and to is not None:
        raise MigrationError("Use either --rollback or --to, not both.")
    runner = _runner()
    result = runner.rollback() if rollback else runner.migrate(to)
    _report(result)


@app.command
def showmigrations() -> None:
    """List the migrations in order: `[X]` applied, `[ ]` not applied, `(head)` the latest."""
    migrations = _runner().show()
    if not migrations:
        print("No migrations yet: run `core makemigrations`.")
        return
    for migration in migrations:
        mark = "X" if migration.applied else " "
        head = "  (head)" if migration.head else ""
        print(f"[{mark}] {migration.revision}  {migration.message}{head}")


def _report(result: MigrateResult) -> None:
    if not (result.applied or result.unapplied):
        print("No migrations to apply.")
    for migration in result.applied:
        print(f"Applied {migration.revision}  {migration.message}")
    for migration in result.unapplied:
        print(f"Unapplied {migration.revision}  {migration.message}")
