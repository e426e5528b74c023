"""`core init --no-venv`: the files of each template, the secret key, and refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from core.cli import main
from core.errors import ConfigurationError
from core.scaffold.environment import (
    Interpreter,
    create_virtualenv,
    find_python,
    framework_source,
)
from core.scaffold.errors import ScaffoldError
from core.settings import Settings
from tests.migration_roundtrip import core_command

COMMON = {
    ".env",
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/__init__.py",
    "src/main.py",
    "src/apps/__init__.py",
    "tests/__init__.py",
    "tests/conftest.py",
    "migrations/env.py",
    "migrations/script.py.mako",
    "migrations/versions/.gitkeep",
}
TEMPLATES = {
    "default": {
        "src/settings.py",
        "src/apps/users/__init__.py",
        "src/apps/users/models.py",
        "src/apps/users/routes.py",
        "src/apps/posts/__init__.py",
        "src/apps/posts/models.py",
        "src/apps/posts/schemas.py",
        "src/apps/posts/views.py",
        "src/apps/posts/routes.py",
        "tests/test_auth.py",
        "tests/test_posts.py",
    },
    "minimal": {
        "src/apps/posts/__init__.py",
        "src/apps/posts/models.py",
        "src/apps/posts/views.py",
        "tests/test_posts.py",
    },
    "microservice": {
        "src/settings.py",
        "src/apps/orders/__init__.py",
        "src/apps/orders/events.py",
        "src/apps/orders/models.py",
        "src/apps/orders/views.py",
        "src/apps/orders/consumers.py",
        "tests/test_orders.py",
    },
}


def init(*args: str) -> int:
    """Run `core init ...` in this process; returns its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main(["init", *args])
    return int(exit_info.value.code or 0)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def dotenv(root: Path) -> dict[str, str]:
    lines = (root / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_writes_its_files(tmp_path: Path, template: str) -> None:
    project = tmp_path / "shop-api"

    assert init(str(project), "--no-venv", "--template", template) == 0

    assert files_under(project) == COMMON | TEMPLATES[template]
    assert not (project / ".venv").exists()
    env = dotenv(project)
    assert env["APP_NAME"] == "shop-api"
    assert "{{" not in "".join(p.read_text() for p in project.rglob("*") if p.is_file())
    assert 'name = "shop-api"' in (project / "pyproject.toml").read_text()


def test_the_migrations_folder_is_the_one_makemigrations_writes(tmp_path: Path) -> None:
    assert init(str(tmp_path / "blog"), "--no-venv") == 0

    template = resources.files("core.migrations").joinpath("template")
    for name in ("env.py", "script.py.mako"):
        written = (tmp_path / "blog" / "migrations" / name).read_text()
        assert written == template.joinpath(name).read_text()


def test_the_secret_key_is_random_and_differs_between_projects(tmp_path: Path) -> None:
    assert init(str(tmp_path / "one"), "--no-venv") == 0
    assert init(str(tmp_path / "two"), "--no-venv") == 0

    first, second = dotenv(tmp_path / "one")["SECRET_KEY"], dotenv(tmp_path / "two")["SECRET_KEY"]

    assert first != second
    assert len(first) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", first)
    assert first != Settings.model_fields["secret_key"].default


def test_a_new_project_starts_outside_tests_with_the_key_of_its_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert init(str(tmp_path / "shop"), "--no-venv") == 0
    monkeypatch.chdir(tmp_path / "shop")
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    from core import CoreApp

    # No public default: the key is the one `core init` wrote, and it passes the start-up check.
    app = CoreApp(settings=Settings())
    assert app.settings.secret_key == dotenv(tmp_path / "shop")["SECRET_KEY"]
    assert app.settings.environment == "development"


def test_an_existing_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    assert init(str(tmp_path / "empty"), "--no-venv", "--template", "minimal") == 0
    assert (tmp_path / "empty" / "src" / "main.py").is_file()


def test_a_non_empty_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "taken"
    project.mkdir()
    (project / "notes.txt").write_text("mine")

    assert init(str(project), "--no-venv") == 1

    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not empty" in err and err.count("\n") == 1
    assert files_under(project) == {"notes.txt"}


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("3.99", "Python 3.99 is not installed"),
        ("2.7", "needs Python 3.11 or newer"),
        ("3.10", "needs Python 3.11 or newer"),
        ("three", "--python takes a version such as 3.13"),
    ],
)
def test_a_bad_python_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str, message: str
) -> None:
    assert init(str(tmp_path / "proj"), "--no-venv", "--python", version) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "proj").exists()


def test_the_running_python_is_accepted(tmp_path: Path) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert init(str(tmp_path / "proj"), "--no-venv", "--python", version) == 0
    assert f'requires-python = ">={version}"' in (tmp_path / "proj" / "pyproject.toml").read_text()


def test_a_bad_template_is_refused_by_the_console_script(tmp_path: Path) -> None:
    out = subprocess.run(
        [*core_command(), "init", "proj", "--no-venv", "--template", "huge"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert out.returncode != 0
    assert "huge" in out.stderr + out.stdout and "minimal" in out.stderr + out.stdout
    assert not (tmp_path / "proj").exists()


def test_the_console_script_prints_one_line_for_a_refusal(tmp_path: Path) -> None:
    out = subprocess.run(
        [*core_command(), "init", "proj", "--no-venv", "--python", "3.99"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert out.returncode == 1
    assert out.stderr.startswith("error: Python 3.99 is not installed")
    assert out.stderr.count("\n") == 1


def test_a_name_that_cannot_name_a_project_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(str(tmp_path / "1st project"), "--no-venv") == 1

    assert "cannot name a project" in capsys.readouterr().err


def test_help_lists_the_options() -> None:
    out = subprocess.run([*core_command(), "init", "--help"], capture_output=True, text=True)

    assert out.returncode == 0
    for option in ("--python", "--template", "--no-venv", "PROJECT"):
        assert option in out.stdout


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_generated_tests_pass(tmp_path: Path, template: str) -> None:
    """The project's own tests, run with this interpreter (which has the framework)."""
    project = tmp_path / "proj"
    assert init(str(project), "--no-venv", "--template", template) == 0
    # Settings of the outer environment must not leak into the project's tests.
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (None, ["core-framework==0.1.0"]),
        ('{"url": "file:///src/core", "dir_info": {"editable": true}}', ["-e", "/src/core"]),
        ('{"url": "file:///src/core", "dir_info": {}}', ["/src/core"]),
        (
            '{"url": "https://example.com/core.git", '
            '"vcs_info": {"vcs": "git", "commit_id": "abc123"}}',
            ["core-framework @ git+https://example.com/core.git@abc123"],
        ),
        (
            '{"url": "https://example.com/core-0.1.0.whl", "archive_info": {}}',
            ["core-framework @ https://example.com/core-0.1.0.whl"],
        ),
    ],
)
def test_the_venv_gets_the_distribution_that_runs_core_init(
    direct_url: str | None, expected: list[str]
) -> None:
    assert framework_source("0.1.0", direct_url).requirement() == expected


# -- finding Python and making the venv, with stand-in executables -----------------------------


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_python_is_found_in_pyenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pyenv"
    _script(root / "versions" / "3.12.1" / "bin" / "python3.12", 'echo "3 12 1"')
    newest = _script(root / "versions" / "3.12.9" / "bin" / "python3.12", 'echo "3 12 9"')
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PYENV_ROOT", str(root))

    found = find_python("3.12")

    assert found.path == newest and found.version == (3, 12, 9)
    assert find_python("3.12.1").version == (3, 12, 1)


def test_a_shim_that_cannot_run_that_version_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyenv's shims exist for every version but fail for those not selected.
    _script(
        tmp_path / "bin" / "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127"
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))

    with pytest.raises(ConfigurationError, match="Python 3.12 is not installed"):
        find_python("3.12")


def test_uv_makes_the_venv_when_it_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "uv.log"
    _script(tmp_path / "bin" / "uv", f'echo "$@" >> {log}')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    python = Interpreter(tmp_path / "python3.12", (3, 12, 1))

    create_virtualenv(tmp_path / "proj", python, ["-e", "/src/core", "pytest>=8.3"])

    venv = tmp_path / "proj" / ".venv"
    assert log.read_text().splitlines() == [
        f"venv --quiet --python {python.path} {venv}",
        f"pip install --python {venv}/bin/python --quiet -e /src/core pytest>=8.3",
    ]


def test_a_failed_install_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    broken = _script(
        tmp_path / "python3.12",
        "echo 'WARNING: Location is ignored' >&2; echo 'Error: No space left' >&2; exit 3",
    )

    with pytest.raises(ScaffoldError) as error:
        create_virtualenv(tmp_path / "proj", Interpreter(broken, (3, 12, 1)), ["pytest"])

    assert str(error.value) == "python3.12 -m venv failed (exit 3): Error: No space left"
