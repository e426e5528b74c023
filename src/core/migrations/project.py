"""Project discovery: the settings, models and migrations folder of the project in the cwd."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData

from core.discovery import import_app_module, read_settings, split_spec
from core.migrations.errors import MigrationError
from core.models import Model


@dataclass(frozen=True, slots=True)
class Project:
    """Where a user's project keeps what the migration commands need.

    Attributes:
        root: The project root, the directory the command runs in.
        database_url: The SQLAlchemy async URL to migrate (`DATABASE_URL`).
        migrations_dir: The Alembic script folder (`MIGRATIONS_DIR`, relative to `root`).
        app_module: `module:attr` whose import registers the models (`APP_MODULE`).
    """

    root: Path
    database_url: str
    migrations_dir: Path
    app_module: str

    @classmethod
    def discover(cls, *, app_module: str | None = None) -> Project:
        """Read the settings (environment, then `.env`) of the project in the working directory.

        Args:
            app_module: Overrides `APP_MODULE`, as the CLI's `--app` does.

        Raises:
            ConfigurationError: when a setting has an invalid value.
        """
        settings = read_settings()
        root = Path.cwd()
        return cls(
            root=root,
            database_url=settings.database_url,
            migrations_dir=root / settings.migrations_dir,
            app_module=app_module or settings.app_module,
        )

    def display(self, path: Path) -> str:
        """`path` relative to the project root when it is inside it, for messages."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def load_models(self) -> MetaData:
        """Import the app module so the project's models register on `Model.metadata`.

        Only the module part of `app_module` matters: importing it runs the model declarations.

        Returns:
            The shared metadata, holding at least one table.

        Raises:
            ConfigurationError: when the app module cannot be found or fails to import.
            MigrationError: when importing it registered no model.
        """
        module_name, _ = split_spec(self.app_module)
        import_app_module(self.app_module, root=self.root)
        if not Model.metadata.tables:
            raise MigrationError(
                f"No models found: importing {module_name!r} registered no Model subclass with a "
                "__tablename__. Import your models from it, or point APP_MODULE / --app elsewhere."
            )
        return Model.metadata
