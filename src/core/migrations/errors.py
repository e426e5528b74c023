"""The error the migration commands raise when the project, its models or its database are wrong."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from core.errors import CoreError

# The extra of core-framework that installs an async driver.
_EXTRAS = {"postgresql+asyncpg": "postgres"}


class MigrationError(CoreError, RuntimeError):
    """A migration command cannot go on; the message says why in one line, for the CLI to print."""

    code = "migration_error"
    default_detail = "Migration failed."


def check_database_url(url: str) -> None:
    """Raise MigrationError, in one line, unless `url` names a database the commands can reach.

    Refuses a URL SQLAlchemy cannot parse or names no driver it has (`postgresql+nope`), a sync
    driver, and a driver that is not installed (`postgresql+asyncpg` without asyncpg), before
    anything connects.
    """
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise MigrationError(
            f"DATABASE_URL is not a database URL SQLAlchemy knows: {exc}"
        ) from None
    safe = parsed.render_as_string(hide_password=True)
    if not dialect.is_async:
        raise MigrationError(
            "DATABASE_URL needs an async driver, e.g. sqlite+aiosqlite:///./app.db or "
            f"postgresql+asyncpg://user:pass@host/db; got {safe}."
        )
    driver = f"{parsed.get_backend_name()}+{parsed.get_driver_name()}"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        extra = _EXTRAS.get(driver)
        hint = f': pip install "core-framework[{extra}]"' if extra else ""
        raise MigrationError(
            f"DATABASE_URL uses {driver}, whose driver is not installed ({exc}){hint}."
        ) from None
