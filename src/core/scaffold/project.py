"""The files of a new project, rendered from the templates in `core/scaffold/templates`.

A template is a folder of `*.tmpl` files: `common/` first, then the chosen template's own,
which win where both have a path. A path part `dot-x` becomes `.x` (so packaging tools that
skip dotfiles or follow `.gitignore` still ship them), and `{{ name }}` placeholders take the
project's values.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal, get_args

from core.scaffold.errors import ScaffoldError
from core.scaffold.files import write_files

Template = Literal["default", "minimal", "microservice"]
TEMPLATES: tuple[str, ...] = get_args(Template)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
_SUFFIX = ".tmpl"


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    """What a new project is made of.

    Attributes:
        project_name: The directory's name, also the app's APP_NAME.
        distribution_name: `project_name` normalized for pyproject.toml and image names.
        template: Which template to render.
        python_version: `X.Y` of the project's Python.
        framework_version: The version of core-framework that writes the project.
        secret_key: A fresh random SECRET_KEY for its `.env`.
    """

    project_name: str
    distribution_name: str
    template: Template
    python_version: str
    framework_version: str
    secret_key: str

    @classmethod
    def new(
        cls, directory: Path, *, template: Template, python_version: str, framework_version: str
    ) -> ProjectSpec:
        """The spec of a project created in `directory`, with a fresh secret key.

        Raises:
            ScaffoldError: the directory's name cannot name a project.
        """
        name = directory.name
        if not _NAME.match(name):
            raise ScaffoldError(
                f"{name!r} cannot name a project: use a letter, then letters, digits, '-', '_' "
                "or '.' (at most 63 characters)."
            )
        return cls(
            project_name=name,
            distribution_name=re.sub(r"[-_.]+", "-", name).lower(),
            template=template,
            python_version=python_version,
            framework_version=framework_version,
            secret_key=secrets.token_urlsafe(48),
        )


def project_files(spec: ProjectSpec) -> dict[str, str]:
    """Every file of the new project: relative path -> text."""
    templates = resources.files("core.scaffold").joinpath("templates")
    values = asdict(spec)
    files: dict[str, str] = {}
    for layer in ("common", spec.template):
        for relative, source in _walk(templates.joinpath(layer), ()):
            files[_target(relative)] = _render(source.read_text(encoding="utf-8"), values)
    files.update(_migration_files())
    return dict(sorted(files.items()))


def create_project(directory: Path, spec: ProjectSpec) -> list[str]:
    """Write the project into `directory`, which must be missing or empty.

    Returns:
        The relative paths written.

    Raises:
        ScaffoldError: the directory is not empty, or is a file, or cannot be written.
    """
    check_target(directory)
    return write_files(directory, project_files(spec)).written


def check_target(directory: Path) -> None:
    """Refuse a path that is a file or a non-empty directory.

    Raises:
        ScaffoldError: with the reason.
    """
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} exists and is not a directory.")
    if directory.is_dir() and any(directory.iterdir()):
        raise ScaffoldError(
            f"{directory} exists and is not empty: pick a new name, or empty it first."
        )


def _walk(
    folder: Traversable, parts: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _walk(entry, (*parts, entry.name))
        elif entry.name.endswith(_SUFFIX):
            yield (*parts, entry.name.removesuffix(_SUFFIX)), entry


def _target(parts: tuple[str, ...]) -> str:
    return "/".join("." + part[4:] if part.startswith("dot-") else part for part in parts)


def _render(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        # A placeholder without a value is a bug in a template, never the user's input.
        return str(values[match.group(1)])

    return _PLACEHOLDER.sub(value, text)


def _migration_files() -> dict[str, str]:
    """The migrations folder `core makemigrations` would write on its first run."""
    # Same files as MigrationRunner's scaffold, so the project starts with what the migration
    # commands expect, and `git` keeps versions/ through its .gitkeep.
    from core.migrations.runner import TEMPLATE_FILES

    template = resources.files("core.migrations").joinpath("template")
    files = {
        f"migrations/{name}": template.joinpath(name).read_text(encoding="utf-8")
        for name in TEMPLATE_FILES
    }
    files["migrations/versions/.gitkeep"] = ""
    return files
