"""`core deploy` output checked by the real tools: kustomize and Kubernetes' schemas, and PM2.

kubectl and node/npm must be on the machine; PM2 itself is installed from the npm registry
into a cache folder on first use. A missing tool skips locally and fails when CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.settings import Settings
from tests import services
from tests.migration_roundtrip import core_command
from tests.scaffolding import make_project

PM2_VERSION = "7"
DISTRIBUTED = """
MESSAGE_BROKER=kafka
TASK_BROKER=redis
DATABASE_URL=postgresql+asyncpg://shop:s3cret@db.internal:5432/shop
"""


def _clean_env(**extra: str) -> dict[str, str]:
    # Settings of the outer environment must not override the project's .env.
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {**env, **extra}


def _core(project: Path, *args: str) -> str:
    out = subprocess.run(
        [*core_command(), *args],
        cwd=project,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "env", "tasks", "deployments"),
    [
        ("microservice", DISTRIBUTED, True, 4),
        # Promoted for production: PostgreSQL and Redis, and a worker.
        ("default", "", False, 2),
        ("default", "AUTH_ALGORITHM=RS256\nAUTH_PRIVATE_KEY_FILE=keys/private.pem\n", False, 2),
    ],
    ids=["every-process", "embedded-default", "key-files"],
)
def test_kustomize_renders_k8s_and_every_object_is_valid(
    tmp_path: Path, template: str, env: str, tasks: bool, deployments: int
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        services.unavailable("kubectl", "not on PATH")
    try:
        import kubernetes_validate
    except ImportError as exc:
        services.unavailable("kubernetes-validate", str(exc))
    project = make_project(tmp_path, template, env=env, tasks=tasks)
    if "KEY_FILE" in env:
        (project / "keys").mkdir()
        (project / "keys" / "private.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    _core(project, "deploy", "k8s")

    rendered = subprocess.run(
        [str(kubectl), "kustomize", "k8s/"], cwd=project, capture_output=True, text=True
    )

    assert rendered.returncode == 0, rendered.stderr
    objects: list[dict[str, Any]] = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    version = kubernetes_validate.latest_version()
    for document in objects:
        kubernetes_validate.validate(document, version, strict=True)
    kinds = sorted(d["kind"] for d in objects)
    assert kinds.count("Deployment") == deployments
    assert {
        "ConfigMap",
        "Secret",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= set(kinds)
    # The generators' hashed names reach every container's envFrom.
    config = next(d for d in objects if d["kind"] == "ConfigMap")["metadata"]["name"]
    for deployment in (d for d in objects if d["kind"] == "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["containers"][0]["envFrom"][0]["configMapRef"]["name"] == config
        assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "shop"
    names = {d["metadata"]["name"] for d in objects if d["kind"] == "Deployment"}
    assert "shop-worker" in names
    # The key file is in a Secret of its own, mounted into the pods; never in the ConfigMap.
    secrets = [d for d in objects if d["kind"] == "Secret"]
    configmap = next(d for d in objects if d["kind"] == "ConfigMap")
    assert "BEGIN PRIVATE KEY" not in str(configmap)
    if "KEY_FILE" in env:
        keys = next(d for d in secrets if d["metadata"]["name"].startswith("shop-keys-"))
        assert set(keys["data"]) == {"auth_private_key.pem"}
        for deployment in (d for d in objects if d["kind"] == "Deployment"):
            volumes = deployment["spec"]["template"]["spec"]["volumes"]
            assert {
                "name": "keys",
                "secret": {"secretName": keys["metadata"]["name"], "defaultMode": 0o440},
            } in volumes


# -- PM2 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pm2() -> str:
    """The pm2 executable, installed once into a cache folder from the npm registry."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        services.unavailable("pm2", "node and npm are not on PATH")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = cache / "core-framework-tests" / f"pm2-{PM2_VERSION}"
    binary = prefix / "node_modules" / ".bin" / "pm2"
    if not binary.is_file():
        install = subprocess.run(
            [
                str(npm),
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"pm2@{PM2_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if install.returncode != 0 or not binary.is_file():
            services.unavailable("pm2", f"npm install failed: {install.stderr.strip()[-300:]}")
    return str(binary)


@pytest.fixture
def pm2_home(tmp_path: Path, pm2: str) -> Iterator[dict[str, str]]:
    """A private PM2_HOME: the daemon started in it is killed after the test."""
    home = tmp_path / "pm2-home"
    home.mkdir()
    env = _clean_env(PM2_HOME=str(home))
    try:
        yield env
    finally:
        for command in (["delete", "all"], ["kill"]):
            subprocess.run([pm2, *command], env=env, capture_output=True, timeout=60)


def _core_wrapper(folder: Path) -> Path:
    """An executable that runs this interpreter's `core`, for CORE_BIN."""
    wrapper = folder / "core"
    command = " ".join(f'"{part}"' for part in core_command())
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_pm2_starts_the_api_from_the_ecosystem(
    tmp_path: Path, pm2: str, pm2_home: dict[str, str]
) -> None:
    project = make_project(tmp_path, "default")
    _core(project, "deploy", "pm2")
    port = services.free_port()
    env = {**pm2_home, "CORE_BIN": str(_core_wrapper(tmp_path)), "PORT": str(port)}

    started = subprocess.run(
        [pm2, "start", "ecosystem.config.js", "--only", "api"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert started.returncode == 0, started.stdout + started.stderr
    response = _wait_for(f"http://127.0.0.1:{port}/health", pm2, env)
    assert response.json() == {"status": "ok"}
    posts = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["paths"]
    assert "/api/v1/posts/" in posts


def _wait_for(url: str, pm2: str, env: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                logs = subprocess.run(
                    [pm2, "logs", "--nostream", "--lines", "30"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                pytest.fail(f"the API did not answer at {url}:\n{logs.stdout[-3000:]}")
            time.sleep(0.3)
