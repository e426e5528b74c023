"""Project discovery: the settings, models and migrations folder of the project in the cwd."""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import MetaData

from core.errors import ConfigurationError
from core.migrations.errors import MigrationError
from core.models import Model
from core.settings import Settings


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
        try:
            settings = Settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
                for error in exc.errors()
            )
            raise ConfigurationError(f"Invalid settings: {problems}.") from None
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

    def put_on_sys_path(self) -> None:
        """Make the project's modules (`src.main`) importable, for the models and migrations."""
        # A console script does not put the cwd on sys.path the way `python -m` does, and
        # alembic.ini's usual `prepend_sys_path = .` has no file to live in here.
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))

    def load_models(self) -> MetaData:
        """Import the app module so the project's models register on `Model.metadata`.

        Only the module part of `app_module` matters: importing it runs the model declarations.

        Returns:
            The shared metadata, holding at least one table.

        Raises:
            ConfigurationError: when the app module cannot be found or fails to import.
            MigrationError: when importing it registered no model.
        """
        module_name = self.app_module.partition(":")[0].strip()
        if not module_name:
            raise ConfigurationError(
                f"APP_MODULE must look like 'package.module:attr', got {self.app_module!r}."
            )
        self.put_on_sys_path()
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
                raise ConfigurationError(
                    f"Cannot find the app module {module_name!r} under {self.root}: run core from "
                    "the project root, or set APP_MODULE / pass --app module:attr."
                ) from None
            raise ConfigurationError(self._import_failure(module_name, exc)) from exc
        except Exception as exc:
            raise ConfigurationError(self._import_failure(module_name, exc)) from exc
        if not Model.metadata.tables:
            raise MigrationError(
                f"No models found: importing {module_name!r} registered no Model subclass with a "
                "__tablename__. Import your models from it, or point APP_MODULE / --app elsewhere."
            )
        return Model.metadata

    def _import_failure(self, module_name: str, exc: BaseException) -> str:
        # One line still has to say where the user's code broke, so point at the deepest
        # frame inside the project (or at the file a SyntaxError names).
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f"{self.display(Path(exc.filename))}:{exc.lineno}: "
        else:
            frames = [
                frame
                for frame in traceback.extract_tb(exc.__traceback__)
                if Path(frame.filename).is_relative_to(self.root)
            ]
            if frames:
                where = f"{self.display(Path(frames[-1].filename))}:{frames[-1].lineno}: "
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        message = text.splitlines()[0] if text else ""
        failure = f"{where}{type(exc).__name__}: {message}"
        return f"Importing the app module {module_name!r} failed: {failure}"
