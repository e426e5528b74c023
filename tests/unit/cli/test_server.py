"""`core run`, `core routes` and `core shell` on a small project, through the console script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.migration_roundtrip import core_command
from tests.services import free_port

APP = """
    from pydantic import BaseModel, ConfigDict
    from sqlalchemy.orm import Mapped

    from core import AutoRouter, CoreApp, Field, Model, ModelViewSet, action
    from core.permissions import AllowAny, IsAuthenticated


    class Note(Model):
        __tablename__ = "notes"
        id: Mapped[int] = Field.pk()
        text: Mapped[str] = Field.text()


    class NoteViewSet(ModelViewSet):
        model = Note
        permission_classes = [IsAuthenticated]
        permission_classes_by_action = {"list": [AllowAny]}

        @action(methods=["POST"], detail=True)
        async def pin(self, request, db, **kwargs):
            return {"pinned": True}


    router = AutoRouter(prefix="/api/v1")
    router.register("/notes", NoteViewSet)
    app = CoreApp(routers=[router])
"""


def _project(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text(textwrap.dedent(APP))
    return {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db"}


def test_routes_lists_methods_paths_actions_and_permissions(tmp_path: Path) -> None:
    env = _project(tmp_path)
    out = subprocess.run(
        [*core_command(), "routes"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["METHOD", "PATH", "NAME", "ACTION", "PERMISSIONS"]
    assert "GET     /api/v1/notes/" in out.stdout
    assert any(
        line.split()[:3] == ["GET", "/api/v1/notes/", "note-list"] and "AllowAny" in line
        for line in lines
    )
    assert any(
        line.split()[:3] == ["POST", "/api/v1/notes/{id}/pin/", "note-pin"] for line in lines
    )
    assert any("note-destroy" in line and "IsAuthenticated" in line for line in lines)


def test_run_serves_the_app(tmp_path: Path) -> None:
    env = _project(tmp_path)
    port = free_port()
    server = subprocess.Popen([*core_command(), "run", "--port", str(port)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    "core run did not serve"
                )
                time.sleep(0.2)
        assert "/api/v1/notes/" in response.json()["paths"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    env = _project(tmp_path)
    out = subprocess.run(
        [*core_command(), "run", "--port", "70000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (
        out.returncode == 1
        and out.stderr.strip() == "error: --port must be between 1 and 65535, got 70000."
    )
    out = subprocess.run(
        [*core_command(), "routes", "--app", "src.nope:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1


def test_shell_has_the_app_and_models(tmp_path: Path) -> None:
    env = _project(tmp_path)
    script = "print(type(app).__name__, Note.__tablename__, container is app.container)\n"
    out = subprocess.run(
        [*core_command(), "shell"],
        cwd=tmp_path,
        env=env,
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "CoreApp notes True" in out.stdout, out.stderr


def _shell(tmp_path: Path, env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*core_command(), "shell"],
        cwd=tmp_path,
        env=env,
        input=textwrap.dedent(script),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out


def test_shell_queries_run_on_its_unit_of_work_until_commit_or_rollback(tmp_path: Path) -> None:
    env = _project(tmp_path)
    first = _shell(
        tmp_path,
        env,
        """
        run(app.create_all())
        run(Note.objects.create(text="kept"))
        commit()
        run(Note.objects.create(text="dropped"))
        rollback()
        print("notes", [note.text for note in run(Note.objects.all())])
        run(Note.objects.create(text="never committed"))
        """,
    )
    # The banner (on stderr, as the interactive console writes it) says how to keep changes.
    assert "commit()" in first.stderr and "rollback()" in first.stderr
    assert "notes ['kept']" in first.stdout, first.stderr

    # Leaving the shell dropped what was not committed.
    second = _shell(tmp_path, env, "print('count', run(Note.objects.count()))\n")
    assert "count 1" in second.stdout, second.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--bogus"], "error: Unknown option: --bogus"),
        (["run", "--port", "abc"], 'error: Invalid value for --port: unable to convert "abc"'),
        (["no-such-command"], 'error: Unknown command "no-such-command"'),
    ],
)
def test_a_mistyped_command_line_is_a_short_error_not_a_box(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", *argv], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message) or result.stdout.startswith(message)
    assert "╭" not in result.stderr + result.stdout and "Traceback" not in result.stderr
