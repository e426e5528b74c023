"""The spec's quick start, end to end, as a user types it:

    core init myproj --python 3.11
    cd myproj
    core makemigrations --name initial && core migrate
    core run

then one real exchange over HTTP (register, log in, write and list posts), and the generated
project's own tests, run by its own .venv's pytest. `core init` really creates the .venv and
installs this framework into it (pip's cache makes that quick after the first time).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from core.errors import ConfigurationError
from core.scaffold.environment import find_python
from core.settings import Settings
from tests import services
from tests.migration_roundtrip import core_command

PYTHON = "3.11"


def _env() -> dict[str, str]:
    # Settings of the outer environment must not override the project's .env.
    return {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}


def _run(command: list[str], cwd: Path, timeout: float = 300) -> str:
    out = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{command} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.timeout(600)
def test_the_quick_start_works_end_to_end(tmp_path: Path) -> None:
    try:
        find_python(PYTHON)
    except ConfigurationError as exc:
        services.unavailable(f"python{PYTHON}", str(exc))
    timings: dict[str, float] = {}
    clock = time.monotonic()

    out = _run([*core_command(), "init", "myproj", "--python", PYTHON], cwd=tmp_path)
    timings["core init (with .venv)"] = time.monotonic() - clock
    project = tmp_path / "myproj"
    core = str(project / ".venv" / "bin" / "core")
    assert "Created myproj from the default template" in out
    version = _run([str(project / ".venv" / "bin" / "python"), "--version"], cwd=project)
    assert version.startswith(f"Python {PYTHON}.")

    clock = time.monotonic()
    made = _run([core, "makemigrations", "--name", "initial"], cwd=project)
    migrated = _run([core, "migrate"], cwd=project)
    timings["makemigrations + migrate"] = time.monotonic() - clock
    assert "_initial.py" in made and "+ create table posts" in made
    assert migrated.startswith("Applied ")

    clock = time.monotonic()
    _exchange_over_http(project, core)
    timings["core run + HTTP"] = time.monotonic() - clock

    clock = time.monotonic()
    tests = _run([str(project / ".venv" / "bin" / "pytest"), "-q"], cwd=project)
    timings["the project's tests"] = time.monotonic() - clock
    assert " passed" in tests and "failed" not in tests

    print("quick start timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def _exchange_over_http(project: Path, core: str) -> None:
    port = services.free_port()
    server = subprocess.Popen(
        [core, "run", "--port", str(port)],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/health", server)
        with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
            user = {"email": "ann@example.com", "password": "correct-horse-battery"}
            assert http.post("/auth/register/", json=user).status_code == 201
            login = http.post("/auth/login/", json=user)
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            created = http.post("/posts/", json={"title": "Hi", "slug": "hi"}, headers=headers)
            assert created.status_code == 201, created.text
            listed = http.get("/posts/").json()
            assert listed["count"] == 1 and listed["results"][0]["slug"] == "hi"
            assert http.get("/auth/me/", headers=headers).json()["email"] == user["email"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"core run exited with {server.returncode}:\n{output[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"core run did not answer at {url} within 60 s")
        time.sleep(0.2)
