"""`core createsuperuser`, run through cyclopts against a project app on SQLite."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclopts import App

from core.auth import register_password_hasher
from core.cli import users
from core.errors import ConfigurationError, ValidationFailedError
from core.testing import isolated_declarations
from tests.unit.auth.models import User
from tests.unit.auth.support import PASSWORD, FastHasher

PROJECT = """
    from core import CoreApp
    from core.auth import configure_auth
    from core.settings import Settings
    from tests.unit.auth.models import User

    configure_auth(user_model=User, password_hasher="fast_sha256")
    app = CoreApp(
        settings=Settings(_env_file=None, database_url="sqlite+aiosqlite:///{db}")
    )
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """A project module declaring the test user model (defining a model per test would leave
    its table in the shared metadata); returns its `module:app` and the module."""
    with isolated_declarations():
        register_password_hasher(FastHasher())
        name = f"users_cli_app_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(
            textwrap.dedent(PROJECT).format(db=tmp_path / "app.db")
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ENVIRONMENT", "test")
        monkeypatch.delenv(users.EMAIL_ENV, raising=False)
        monkeypatch.delenv(users.PASSWORD_ENV, raising=False)
        module = _import(name, tmp_path)
        asyncio.run(_create_tables(module.app))
        yield f"{name}:app", module
        sys.modules.pop(name, None)


def _import(name: str, root: Path) -> Any:
    from core.discovery import import_app_module

    return import_app_module(f"{name}:app", root=root)


async def _create_tables(app: Any) -> None:
    await app.create_all()
    await app.container.database.database().dispose()


async def _admins(module: Any) -> list[Any]:
    try:
        async with module.app.session() as db:
            return await User.objects.using(db).all()
    finally:
        await module.app.container.database.database().dispose()


def cli() -> App:
    app = App(name="core")
    app.command(users.createsuperuser)
    return app


def run(*tokens: str) -> Any:
    return cli()(list(tokens), exit_on_error=False, print_error=False, result_action="return_value")


def test_no_input_with_flags(project: tuple[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    spec, module = project

    run(
        "createsuperuser",
        "--email",
        "Root@Example.com",
        "--password",
        PASSWORD,
        "--no-input",
        "--app",
        spec,
    )

    assert capsys.readouterr().out == "Superuser root@example.com created.\n"
    [admin] = asyncio.run(_admins(module))
    assert (admin.email, admin.is_staff, admin.is_superuser) == ("root@example.com", True, True)
    assert admin.password.startswith("fast$")


def test_no_input_reads_the_environment(
    project: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, module = project
    monkeypatch.setenv(users.EMAIL_ENV, "ops@example.com")
    monkeypatch.setenv(users.PASSWORD_ENV, PASSWORD)

    run("createsuperuser", "--no-input", "--app", spec)

    assert [a.email for a in asyncio.run(_admins(module))] == ["ops@example.com"]


def test_no_input_without_a_password_fails_with_one_line(project: tuple[str, Any]) -> None:
    spec, _ = project

    with pytest.raises(ConfigurationError, match="--no-input needs --email and --password"):
        run("createsuperuser", "--email", "a@example.com", "--no-input", "--app", spec)


def test_an_existing_email_and_a_weak_password_are_refused(project: tuple[str, Any]) -> None:
    spec, module = project
    run(
        "createsuperuser",
        "--email",
        "a@example.com",
        "--password",
        PASSWORD,
        "--no-input",
        "--app",
        spec,
    )

    with pytest.raises(ValidationFailedError, match="already exists"):
        run(
            "createsuperuser",
            "--email",
            "A@example.com",
            "--password",
            PASSWORD,
            "--no-input",
            "--app",
            spec,
        )
    with pytest.raises(ValidationFailedError, match="Password refused: This password is too"):
        run(
            "createsuperuser",
            "--email",
            "b@example.com",
            "--password",
            "short",
            "--no-input",
            "--app",
            spec,
        )
    assert len(asyncio.run(_admins(module))) == 1


def test_interactive_prompts_until_the_answers_are_good(
    project: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, module = project
    emails = iter(["not-an-email", "ann@example.com"])
    passwords = iter(["short", "short", PASSWORD, "typo", PASSWORD, PASSWORD])
    monkeypatch.setattr(users, "_prompt", lambda prompt: next(emails))
    monkeypatch.setattr(users, "_getpass", lambda prompt: next(passwords))

    run("createsuperuser", "--app", spec)

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Enter a valid email address.",
        "This password is too short: it must contain at least 8 characters.",
        "Passwords do not match.",
        "Superuser ann@example.com created.",
    ]
    assert [a.email for a in asyncio.run(_admins(module))] == ["ann@example.com"]


def test_interactive_without_a_terminal_says_what_to_do(
    project: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = project

    def closed(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr(users, "_prompt", closed)
    with pytest.raises(ConfigurationError, match="--no-input"):
        run("createsuperuser", "--app", spec)


def test_an_app_without_user_model_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with isolated_declarations():
        name = f"users_cli_bare_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(
            "from core import CoreApp\nfrom core.testing import test_settings\n"
            "app = CoreApp(settings=test_settings())\n"
        )
        monkeypatch.chdir(tmp_path)
        try:
            with pytest.raises(ConfigurationError, match="No user model"):
                run("createsuperuser", "--no-input", "--app", f"{name}:app")
        finally:
            sys.modules.pop(name, None)
