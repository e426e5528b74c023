"""Finding the user's project from the command line: its settings and its app module.

Every `core` command runs from the project root; these helpers turn what goes wrong there
(invalid settings, a missing or broken app module) into one-line ConfigurationErrors.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from core.errors import ConfigurationError
from core.settings import Settings


def read_settings() -> Settings:
    """Settings from the environment and `.env`, or a one-line ConfigurationError."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"Invalid settings: {problems}.") from None


def put_on_sys_path(root: Path) -> None:
    """Make the project's modules (`src.main`) importable from its root."""
    # A console script does not put the cwd on sys.path the way `python -m` does.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def split_spec(spec: str) -> tuple[str, str]:
    """`"src.main:app"` -> `("src.main", "app")`; the attribute defaults to `app`."""
    module_name, _, attribute = (part.strip() for part in spec.partition(":"))
    if not module_name:
        raise ConfigurationError(f"APP_MODULE / --app must look like 'module:attr', got {spec!r}.")
    return module_name, attribute or "app"


def import_app_module(
    spec: str, *, root: Path | None = None, required: bool = True
) -> ModuleType | None:
    """Import the module part of `spec` with the project root on sys.path.

    Returns None when the module does not exist and `required` is False (a project without an
    app module still has the framework's defaults).

    Raises:
        ConfigurationError: the module is missing (and required), or fails to import; the
            message names the project file and line where it broke.
    """
    root = root or Path.cwd()
    module_name, _ = split_spec(spec)
    put_on_sys_path(root)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            if not required:
                return None
            raise ConfigurationError(
                f"Cannot find the app module {module_name!r} under {root}: run core from the "
                "project root, or set APP_MODULE / pass --app module:attr."
            ) from None
        raise ConfigurationError(import_failure(module_name, exc, root)) from exc
    except Exception as exc:
        raise ConfigurationError(import_failure(module_name, exc, root)) from exc


def load_app(spec: str, *, root: Path | None = None) -> Any:
    """The object `spec` names (`module:attr`), usually the project's CoreApp.

    A function there is an app factory (as `uvicorn --factory` takes): it is called with no
    arguments and what it returns is the app.
    """
    application = _app_attribute(spec, root)
    return application() if inspect.isfunction(application) else application


def is_app_factory(spec: str, *, root: Path | None = None) -> bool:
    """Whether `spec` names an app factory rather than an app."""
    return inspect.isfunction(_app_attribute(spec, root))


def _app_attribute(spec: str, root: Path | None) -> Any:
    module = import_app_module(spec, root=root)
    module_name, attribute = split_spec(spec)
    application = getattr(module, attribute, None)
    if application is None:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}.")
    return application


def import_failure(module_name: str, exc: BaseException, root: Path) -> str:
    """One line saying where the user's code broke: the deepest frame inside the project."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{_display(Path(exc.filename), root)}:{exc.lineno}: "
    else:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if Path(frame.filename).is_relative_to(root)
        ]
        if frames:
            where = f"{_display(Path(frames[-1].filename), root)}:{frames[-1].lineno}: "
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    message = text.splitlines()[0] if text else ""
    return (
        f"Importing the app module {module_name!r} failed: {where}{type(exc).__name__}: {message}"
    )


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
