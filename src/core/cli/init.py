"""`core init`: create a project (src layout, settings, apps, migrations, tests) and its .venv."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from core.cli.app import app
from core.scaffold.project import Template

__all__ = ("init",)

# What the project's own tests need besides the framework (whose pytest plugin they use).
TEST_PACKAGES = ("pytest>=8.3", "pytest-asyncio>=0.24")


@app.command
def init(
    project: Annotated[Path, Parameter(help="Directory to create; its name names the project.")],
    /,
    *,
    python: str | None = None,
    template: Template = "default",
    venv: bool = True,
) -> None:
    """Create a new project in PROJECT, with a .venv that has this framework installed.

    Writes a src layout (`src/main.py`, `src/settings.py`, `src/apps/...`), a `.env` with a
    random SECRET_KEY, the migrations folder `core makemigrations` uses, tests that run in
    memory, a `pyproject.toml` and a README. Then creates `.venv` with the requested Python
    (with uv when installed, else venv and pip) and installs into it the same core-framework
    that runs this command, plus pytest. PROJECT must not exist, or be an empty directory.

    Args:
        project: Directory to create; its name names the project.
        python: Python version of `.venv`, e.g. 3.13 or 3.13.1. Default: the one running core.
        template: `default` (users and auth endpoints, a posts resource), `minimal` (one
            resource, no auth) or `microservice` (an event, a consumer, broker settings).
        venv: Create `.venv` and install the framework into it (`--no-venv` skips that).
    """
    from core.scaffold.environment import create_virtualenv, find_python, installed_framework
    from core.scaffold.errors import ScaffoldError
    from core.scaffold.project import ProjectSpec, check_target, create_project

    # Everything that can refuse runs before the first file is written.
    interpreter = find_python(python)
    directory = project.expanduser().absolute()
    check_target(directory)
    source = installed_framework() if venv else None
    spec = ProjectSpec.new(
        directory,
        template=template,
        python_version=interpreter.short_version,
        framework_version=source.version if source else _framework_version(),
    )
    written = create_project(directory, spec)
    print(f"Created {project} from the {template} template ({len(written)} files).")
    if source is not None:
        print(f"Creating {project}/.venv with {interpreter}", flush=True)
        print(f"Installing {source.describe()} and pytest into it...", flush=True)
        try:
            create_virtualenv(directory, interpreter, [*source.requirement(), *TEST_PACKAGES])
        except ScaffoldError as exc:
            raise ScaffoldError(
                f"{exc} (the project's files are written: fix that and run `core init` again "
                f"in an emptied {project}, or make its .venv yourself)"
            ) from None
    _next_steps(project, venv=source is not None)


def _framework_version() -> str:
    try:
        return metadata.version("core-framework")
    except metadata.PackageNotFoundError:
        return "unknown"


def _next_steps(project: Path, *, venv: bool) -> None:
    activate = (
        "source .venv/bin/activate"
        if venv
        else "python3 -m venv .venv && source .venv/bin/activate  # then install core-framework"
    )
    print("\nNext:")
    for line in (
        f"cd {project}",
        activate,
        "core makemigrations --name initial && core migrate",
        "core run",
        "pytest",
    ):
        print(f"  {line}")
