"""`core deploy docker|pm2|k8s`: what each writes for a project's settings, and no clobbering.

Each test makes a project with `core init --no-venv` and runs `core deploy` in a subprocess
from its root (the command imports the project's app, whose modules must not leak between
tests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.scaffold.yaml import dump, dump_all
from core.settings import Settings
from tests.migration_roundtrip import core_command
from tests.scaffolding import make_project

DISTRIBUTED = """
MESSAGE_BROKER=kafka
TASK_BROKER=redis
DATABASE_URL=postgresql+asyncpg://shop:s3cret@localhost:5432/shop
"""


def deploy(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Settings of the outer environment must not override the project's .env.
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return subprocess.run(
        [*core_command(), "deploy", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_of(project: Path) -> dict[str, Any]:
    document = yaml.safe_load((project / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def env_of(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file."""
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def build_context(project: Path) -> set[str]:
    """The files `docker build .` sends, by .dockerignore's rules (Go filepath.Match, `**` for
    any depth, a pattern that matches a folder drops everything in it)."""
    patterns = [
        line.strip().rstrip("/")
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    regexes = [re.compile(_glob_regex(pattern)) for pattern in patterns]
    sent = set()
    for path in project.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(project).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if not any(regex.fullmatch(prefix) for regex in regexes for prefix in prefixes):
            sent.add("/".join(parts))
    return sent


def _glob_regex(pattern: str) -> str:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


# -- docker -----------------------------------------------------------------------------------


def test_docker_compose_has_every_process_and_the_services_the_settings_name(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, "microservice", env=DISTRIBUTED, tasks=True)

    out = deploy(project, "docker")

    assert out.returncode == 0, out.stderr
    services = compose_of(project)["services"]
    assert set(services) == {
        "api",
        "worker",
        "scheduler",
        "consumer",
        "migrate",
        "db",
        "redis",
        "kafka",
    }
    assert services["api"]["command"] == ["core", "run", "--host", "0.0.0.0", "--port", "8000"]
    assert services["api"]["ports"] == ["8000:8000"]
    for name in ("worker", "scheduler", "consumer"):
        assert services[name]["command"] == ["core", name]
        assert services[name]["healthcheck"] == {"disable": True}
    # Scalable: `docker compose up --scale worker=4` needs no fixed name or host port.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    for name in ("api", "worker", "scheduler", "consumer"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        for backing in ("db", "redis", "kafka"):
            assert services[name]["depends_on"][backing] == {"condition": "service_healthy"}
        environment = services[name]["environment"]
        assert environment["ENVIRONMENT"] == "production"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert services[name]["env_file"][-1] == ".env.docker"
    assert services["migrate"]["command"] == ["core", "migrate"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["db"]["env_file"] == [".env.docker"]
    assert "healthcheck" in services["db"] and "healthcheck" in services["kafka"]
    # The database URL, with a fresh random password, is in the git-ignored env file.
    passwords = env_of(project / ".env.docker")
    assert passwords["DATABASE_URL"] == (
        f"postgresql+asyncpg://shop:{passwords['POSTGRES_PASSWORD']}@db:5432/shop"
    )
    assert len(passwords["POSTGRES_PASSWORD"]) >= 32
    # The password of .env stays out of every file core writes.
    assert "s3cret" not in (project / "docker-compose.yml").read_text()
    assert "s3cret" not in (project / ".env.docker").read_text()
    assert "change-me" not in (project / "docker-compose.yml").read_text()
    assert "processes: api, worker, scheduler, consumer" in out.stdout


def test_rabbitmq_is_a_service_when_it_is_the_broker(tmp_path: Path) -> None:
    project = make_project(tmp_path, "microservice", env="MESSAGE_BROKER=rabbitmq\n")

    assert deploy(project, "docker").returncode == 0

    services = compose_of(project)["services"]
    assert set(services) == {"api", "worker", "consumer", "migrate", "rabbitmq", "db", "redis"}
    passwords = env_of(project / ".env.docker")
    assert passwords["RABBITMQ_URL"] == (
        f"amqp://app:{passwords['RABBITMQ_DEFAULT_PASS']}@rabbitmq:5672/"
    )
    assert services["rabbitmq"]["env_file"] == [".env.docker"]
    assert services["consumer"]["environment"]["MESSAGE_BROKER"] == "rabbitmq"
    assert services["rabbitmq"]["image"].startswith("rabbitmq:")


def test_the_embedded_default_is_promoted_for_production(tmp_path: Path) -> None:
    project = make_project(tmp_path)

    out = deploy(project, "docker")

    assert out.returncode == 0, out.stderr
    document = compose_of(project)
    services = document["services"]
    # `docker compose up -d --scale worker=4` works on a fresh project.
    assert set(services) == {"api", "worker", "migrate", "db", "redis"}
    assert services["worker"]["command"] == ["core", "worker"]
    for name in ("api", "worker", "migrate"):
        environment = services[name]["environment"]
        assert environment["TASK_BROKER"] == "redis"
        assert environment["MESSAGE_BROKER"] == "redis"
        assert environment["AUTH_TOKEN_STORE"] == "redis"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "volumes" not in services[name]
    assert env_of(project / ".env.docker")["DATABASE_URL"].startswith("postgresql+asyncpg://shop:")
    promoted = [line for line in out.stdout.splitlines() if line.startswith("promoted")]
    assert promoted == [
        "promoted for production: DATABASE_URL SQLite -> PostgreSQL, TASK_BROKER memory -> "
        "Redis, MESSAGE_BROKER memory -> Redis, AUTH_TOKEN_STORE memory -> Redis"
    ]
    assert "processes: api, worker" in out.stdout
    # The passwords file is git-ignored.
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        ignored = subprocess.run(["git", "check-ignore", "-q", ".env.docker"], cwd=project)
        assert ignored.returncode == 0


def test_rerunning_keeps_the_passwords_and_adds_a_new_service(tmp_path: Path) -> None:
    project = make_project(tmp_path, "microservice")
    assert deploy(project, "docker").returncode == 0
    first = env_of(project / ".env.docker")
    with (project / ".env").open("a") as dotenv:
        dotenv.write("MESSAGE_BROKER=rabbitmq\n")

    out = deploy(project, "docker", "--force")

    assert out.returncode == 0, out.stderr
    again = env_of(project / ".env.docker")
    assert again["POSTGRES_PASSWORD"] == first["POSTGRES_PASSWORD"]
    assert "RABBITMQ_URL" in again and "RABBITMQ_URL" not in first
    assert "updated .env.docker: added RABBITMQ_DEFAULT_USER" in out.stdout


def test_no_key_file_or_env_file_reaches_the_build_context(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        env="AUTH_ALGORITHM=RS256\nAUTH_PRIVATE_KEY_FILE=keys/private.pem\n"
        "AUTH_PUBLIC_KEY_FILE=secrets/jwt_public\n",
    )
    (project / "keys").mkdir()
    (project / "keys" / "private.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (project / "secrets").mkdir()
    (project / "secrets" / "jwt_public").write_text("-----BEGIN PUBLIC KEY-----\n")
    (project / "src" / "tls.key").write_text("secret\n")
    (project / ".env.local").write_text("SECRET_KEY=x\n")

    out = deploy(project, "docker")

    assert out.returncode == 0, out.stderr
    sent = build_context(project)
    assert "src/main.py" in sent and "Dockerfile" in sent
    leaked = {
        name
        for name in sent
        if name.split("/")[-1].startswith(".env") or name.endswith((".pem", ".key"))
    }
    assert not leaked
    assert "secrets/jwt_public" not in sent and "keys/private.pem" not in sent
    # The containers get the keys at run time, as compose secrets.
    document = compose_of(project)
    assert document["secrets"] == {
        "auth_private_key": {"file": "./keys/private.pem"},
        "auth_public_key": {"file": "./secrets/jwt_public"},
    }
    api = document["services"]["api"]
    assert api["secrets"] == ["auth_private_key", "auth_public_key"]
    assert api["environment"]["AUTH_PRIVATE_KEY_FILE"] == "/run/secrets/auth_private_key"


def test_the_dockerfile_is_multi_stage_non_root_with_a_healthcheck(tmp_path: Path) -> None:
    project = make_project(tmp_path, env=DISTRIBUTED)

    assert deploy(project, "docker", "--python", "3.12").returncode == 0

    text = (project / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, flags=re.M)
    assert len(stages) == 2 and f"COPY --from={stages[0]} " in text
    assert "ARG PYTHON_VERSION=3.12" in text
    users = re.findall(r"^USER (\S+)$", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/health", text, flags=re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, flags=re.M).group(1))  # type: ignore[union-attr]
    assert cmd == ["core", "run", "--host", "0.0.0.0", "--port", "8000"]
    # The extras the settings need come with the framework.
    assert re.search(r'ARG CORE_FRAMEWORK=".*\[postgres,redis,kafka\]', text)
    ignored = (project / ".dockerignore").read_text().split()
    assert {"**/.env*", "**/*.pem", "**/*.key", "keys", ".venv", ".git"} <= set(ignored)


def test_rerunning_skips_edited_files_and_force_overwrites_them(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert deploy(project, "docker").returncode == 0
    (project / "Dockerfile").write_text("FROM scratch\n")
    (project / "requirements.txt").write_text("httpx\n")

    again = deploy(project, "docker")

    assert again.returncode == 0
    assert "skipped Dockerfile: it exists and differs (--force overwrites it)" in again.stdout
    assert "unchanged docker-compose.yml" in again.stdout
    assert (project / "Dockerfile").read_text() == "FROM scratch\n"

    forced = deploy(project, "docker", "--force")

    assert forced.returncode == 0
    assert "wrote Dockerfile" in forced.stdout
    assert "HEALTHCHECK" in (project / "Dockerfile").read_text()
    # requirements.txt is the project's: written once, never overwritten.
    assert (project / "requirements.txt").read_text() == "httpx\n"


# -- pm2 --------------------------------------------------------------------------------------


def test_pm2_ecosystem_runs_the_same_processes(tmp_path: Path) -> None:
    project = make_project(tmp_path, "microservice", env=DISTRIBUTED, tasks=True)

    out = deploy(project, "pm2")

    assert out.returncode == 0, out.stderr
    text = (project / "ecosystem.config.js").read_text()
    for name in ("api", "worker", "scheduler", "consumer"):
        assert f'app("{name}", ' in text
    assert 'interpreter: "none"' in text and "process.env.CORE_BIN" in text
    node = shutil.which("node")
    if node:
        # Load it as PM2 does, and check what PM2 would run.
        script = "console.log(JSON.stringify(require('./ecosystem.config.js')))"
        loaded = subprocess.run(
            [node, "-e", script],
            cwd=project,
            env={**os.environ, "CORE_BIN": "/opt/core", "PORT": "9001"},
            capture_output=True,
            text=True,
            check=True,
        )
        apps = {app["name"]: app for app in json.loads(loaded.stdout)["apps"]}
        assert set(apps) == {"api", "worker", "scheduler", "consumer"}
        assert apps["api"]["script"] == "/opt/core"
        assert apps["api"]["args"] == ["run", "--host", "127.0.0.1", "--port", "9001"]
        assert apps["worker"]["args"] == ["worker"]
        assert apps["worker"]["kill_timeout"] >= 30000


def test_pm2_of_a_fresh_project_runs_a_worker_with_postgres_and_redis(tmp_path: Path) -> None:
    project = make_project(tmp_path)

    out = deploy(project, "pm2")

    assert out.returncode == 0, out.stderr
    text = (project / "ecosystem.config.js").read_text()
    assert 'app("api", ' in text and 'app("worker", ' in text
    production = env_of(project / ".env.pm2")
    assert re.fullmatch(
        r"postgresql\+asyncpg://shop:\w{32,}@localhost:5432/shop", production["DATABASE_URL"]
    )
    assert production["TASK_BROKER"] == production["MESSAGE_BROKER"] == "redis"
    assert production["AUTH_TOKEN_STORE"] == "redis"
    node = shutil.which("node")
    if node:
        # PM2 hands each process .env.pm2's settings as environment variables.
        script = "console.log(JSON.stringify(require('./ecosystem.config.js')))"
        # Started as an operator would: without the test suite's ENVIRONMENT=test.
        shell = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT"}
        loaded = subprocess.run(
            [node, "-e", script],
            cwd=project,
            env=shell,
            capture_output=True,
            text=True,
            check=True,
        )
        apps = {app["name"]: app for app in json.loads(loaded.stdout)["apps"]}
        assert apps["worker"]["env"]["TASK_BROKER"] == "redis"
        assert apps["api"]["env"]["DATABASE_URL"] == production["DATABASE_URL"]
        assert apps["api"]["env"]["ENVIRONMENT"] == "production"


# -- k8s --------------------------------------------------------------------------------------


def test_k8s_has_a_deployment_per_process_probes_and_an_hpa(tmp_path: Path) -> None:
    project = make_project(tmp_path, "microservice", env=DISTRIBUTED, tasks=True)

    out = deploy(project, "k8s")

    assert out.returncode == 0, out.stderr
    folder = project / "k8s"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (folder / resource).is_file()
    documents = [yaml.safe_load((folder / name).read_text()) for name in kustomization["resources"]]
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert set(deployments) == {f"shop-{p}" for p in ("api", "worker", "scheduler", "consumer")}
    for deployment in deployments.values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "shop-config"}},
            {"secretRef": {"name": "shop-secret"}},
        ]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    api = deployments["shop-api"]["spec"]["template"]["spec"]
    assert api["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # docs/operations.md shows these probes as written.
    operations = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    block = operations.split("```yaml\nreadinessProbe:", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load("readinessProbe:" + block)
    assert documented == {
        probe: api["containers"][0][probe] for probe in ("readinessProbe", "livenessProbe")
    }
    assert api["initContainers"][0]["command"] == ["core", "migrate"]
    scheduler = deployments["shop-scheduler"]["spec"]
    assert scheduler["replicas"] == 1 and scheduler["strategy"] == {"type": "Recreate"}
    kinds = {d["kind"] for d in documents}
    assert {"Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    pdb = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "shop-api"
    assert kustomization["configMapGenerator"][0]["envs"] == ["config.env"]
    assert kustomization["secretGenerator"][0]["envs"] == ["secret.env"]
    config = (folder / "config.env").read_text()
    assert "ENVIRONMENT=production" in config and "MESSAGE_BROKER=kafka" in config
    assert "s3cret" not in config
    assert re.search(r"^SECRET_KEY=\S{40,}$", (folder / "secret.env").read_text(), flags=re.M)


def test_k8s_secret_env_is_written_once_even_with_force(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert deploy(project, "k8s").returncode == 0
    secret = (project / "k8s" / "secret.env").read_text()

    out = deploy(project, "k8s", "--force")

    assert out.returncode == 0
    assert "kept k8s/secret.env" in out.stdout
    assert (project / "k8s" / "secret.env").read_text() == secret


def test_k8s_of_a_fresh_project_runs_a_worker_on_postgres_and_redis(tmp_path: Path) -> None:
    project = make_project(tmp_path)

    out = deploy(project, "k8s")

    assert out.returncode == 0, out.stderr
    folder = project / "k8s"
    assert (folder / "worker-deployment.yaml").is_file()
    config = env_of(folder / "config.env")
    assert config["TASK_BROKER"] == config["MESSAGE_BROKER"] == "redis"
    assert config["AUTH_TOKEN_STORE"] == "redis"
    secret = env_of(folder / "secret.env")
    assert re.fullmatch(
        r"postgresql\+asyncpg://shop:\w{32,}@postgres:5432/shop", secret["DATABASE_URL"]
    )
    assert secret["REDIS_URL"] == "redis://redis:6379/0"
    assert "promoted for production: DATABASE_URL SQLite -> PostgreSQL" in out.stdout


def test_k8s_mounts_key_files_from_a_secret_never_the_configmap(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, env="AUTH_ALGORITHM=RS256\nAUTH_PRIVATE_KEY_FILE=keys/private.pem\n"
    )
    (project / "keys").mkdir()
    key = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    (project / "keys" / "private.pem").write_text(key)

    out = deploy(project, "k8s")

    assert out.returncode == 0, out.stderr
    folder = project / "k8s"
    config = (folder / "config.env").read_text()
    assert "BEGIN PRIVATE KEY" not in config
    assert env_of(folder / "config.env")["AUTH_PRIVATE_KEY_FILE"] == (
        "/var/run/secrets/core/keys/auth_private_key.pem"
    )
    assert (folder / "keys" / "auth_private_key.pem").read_text() == key
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert {"name": "shop-keys", "files": ["keys/auth_private_key.pem"]} in kustomization[
        "secretGenerator"
    ]
    assert "keys" not in str(kustomization["configMapGenerator"])
    pod = yaml.safe_load((folder / "api-deployment.yaml").read_text())["spec"]["template"]["spec"]
    assert {"name": "keys", "secret": {"secretName": "shop-keys", "defaultMode": 0o440}} in pod[
        "volumes"
    ]
    mount = {"name": "keys", "mountPath": "/var/run/secrets/core/keys", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]


# -- bad input ------------------------------------------------------------------------------


def test_an_unknown_target_is_refused(tmp_path: Path) -> None:
    out = deploy(make_project(tmp_path), "heroku")

    assert out.returncode != 0
    assert "heroku" in out.stdout + out.stderr


def test_outside_a_project_it_is_one_line(tmp_path: Path) -> None:
    out = deploy(tmp_path, "docker")

    assert out.returncode == 1
    assert out.stderr.startswith("error: Cannot find the app module 'src.main'")
    assert out.stderr.count("\n") == 1
    assert not (tmp_path / "Dockerfile").exists()


def test_a_bad_python_is_one_line(tmp_path: Path) -> None:
    out = deploy(make_project(tmp_path), "docker", "--python", "2.7")

    assert out.returncode == 1
    assert out.stderr == "error: Core Framework needs Python 3.11 or newer, not 2.7.\n"


def test_help_of_each_target(tmp_path: Path) -> None:
    for target in ("docker", "pm2", "k8s"):
        out = deploy(tmp_path, target, "--help")
        assert out.returncode == 0
        assert "--force" in out.stdout


# -- the YAML writer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "no",
        "on",
        "null",
        "~",
        "1.5",
        ".5",
        "8000:8000",
        "0.0.0.0",
        "--port",
        "a: b",
        "#x",
        "x #y",
        "",
        " padded ",
        "@x",
        "*x",
        "&x",
        "!x",
        "{a}",
        "[a]",
        "-",
        "2024-01-01",
        "100m",
        "${POSTGRES_USER:-app}",
        "CMD-SHELL",
        "/health",
        "ünïcode",
        "multi\nline",
        "tab\there",
    ],
)
def test_yaml_strings_read_back_as_written(value: str) -> None:
    document = {"key": value, value or "empty": [value, {"nested": value}]}

    assert yaml.safe_load(dump(document)) == document


def test_yaml_documents_keep_their_structure() -> None:
    documents = [
        {"a": {"b": [1, 2.5, True, None], "c": {}, "d": []}, "e": [[1, 2], [{"f": "g"}]]},
        {"kind": "Service"},
    ]

    assert list(yaml.safe_load_all(dump_all(documents, comment="two\ndocuments"))) == documents


def test_yaml_repeats_shared_values_instead_of_anchoring_them() -> None:
    shared = {"condition": "service_healthy"}

    text = dump({"a": shared, "b": shared})

    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"a": shared, "b": shared}
