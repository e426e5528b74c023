"""`core deploy docker`: a multi-stage Dockerfile, .dockerignore and docker-compose.yml."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from core.scaffold.deploy.plan import HEALTH_PATH, HTTP_PORT, MIGRATE_ARGS, DeployPlan, Process
from core.scaffold.yaml import dump

# The image's unprivileged user; numeric, so Kubernetes' runAsNonRoot can check it.
APP_UID = 10001
DATA_DIR = "/app/data"
REQUIREMENTS = "requirements.txt"
# Passwords and URLs compose's services share: written once with random passwords, git-ignored.
ENV_FILE = ".env.docker"
# Where compose mounts the key files a project signs tokens with (AUTH_*_KEY_FILE).
KEYS_DIR = "/run/secrets"

_HEADER = """Written by `core deploy {target}`. Edit freely: running it again leaves an edited file
alone (`core deploy {target} --force` writes it again)."""

DOCKERIGNORE = """\
# Kept out of the image: secrets, local state, and what the image does not run. Settings and
# key files reach the containers at run time (env_file, secrets in docker-compose.yml).
.git
.venv
**/.env*
**/*.pem
**/*.key
keys
*.db
*.db-journal
__pycache__
*.pyc
.pytest_cache
.ruff_cache
.mypy_cache
tests
k8s
"""

REQUIREMENTS_TEXT = """\
# The project's own dependencies, one per line, installed into the image by the Dockerfile
# (core-framework itself comes from its CORE_FRAMEWORK build argument).
"""

# Images of the backing services: current stable lines, pinned to a major version.
IMAGES = {
    "postgres": "postgres:16-alpine",
    "redis": "redis:7-alpine",
    "rabbitmq": "rabbitmq:3.13-management-alpine",
    "kafka": "apache/kafka:3.9.0",
}
_SERVICE_NAMES = {"postgres": "db", "redis": "redis", "rabbitmq": "rabbitmq", "kafka": "kafka"}


def docker_files(plan: DeployPlan, *, python_version: str) -> dict[str, str]:
    """The files to write (relative path -> text); REQUIREMENTS and ENV_FILE are only written
    when missing."""
    return {
        "Dockerfile": dockerfile(plan, python_version=python_version),
        ".dockerignore": dockerignore(plan),
        "docker-compose.yml": compose(plan),
        "wheels/.gitkeep": "",
    }


def dockerignore(plan: DeployPlan) -> str:
    """DOCKERIGNORE, plus the project's key files wherever they live."""
    extra = [
        path.removeprefix("./")
        for path in key_files(plan).values()
        if not path.startswith("/") and not path.endswith((".pem", ".key"))
    ]
    return DOCKERIGNORE + "".join(f"{path}\n" for path in extra)


def key_files(plan: DeployPlan) -> dict[str, str]:
    """`{"AUTH_PRIVATE_KEY_FILE": "keys/private.pem", ...}`: the key files the settings name."""
    settings = plan.settings
    files = {
        "AUTH_PRIVATE_KEY_FILE": settings.auth_private_key_file,
        "AUTH_PUBLIC_KEY_FILE": settings.auth_public_key_file,
    }
    return {name: path for name, path in files.items() if path}


def env_file(plan: DeployPlan) -> dict[str, str]:
    """ENV_FILE's variables: the backing services' credentials, fresh and random, and the URLs
    the processes reach them with."""
    variables: dict[str, str] = {}
    if "postgres" in plan.services:
        user, database = _postgres_names(plan)
        password = secrets.token_hex(24)
        driver = make_url(plan.settings.database_url).drivername
        variables |= {
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": database,
            "DATABASE_URL": f"{driver}://{user}:{password}@db:5432/{database}",
        }
    if "rabbitmq" in plan.services:
        password = secrets.token_hex(24)
        variables |= {
            "RABBITMQ_DEFAULT_USER": "app",
            "RABBITMQ_DEFAULT_PASS": password,
            "RABBITMQ_URL": f"amqp://app:{password}@rabbitmq:5672/",
        }
    return variables


def env_file_text(variables: dict[str, str]) -> str:
    header = (
        "# Written once by `core deploy docker`: the passwords of docker-compose.yml's\n"
        "# services, random. Keep it out of git and out of the image (.gitignore, .dockerignore).\n"
    )
    return header + "".join(f"{name}={value}\n" for name, value in variables.items())


def dockerfile(plan: DeployPlan, *, python_version: str) -> str:
    """A two-stage Dockerfile: build a virtualenv, then copy it and the code to a slim image."""
    requirement = plan.framework.requirement(plan.extras)[-1]
    if plan.framework.directory is not None:
        # A local directory is outside the build context: install by version, from wheels/.
        requirement = _pinned(plan)
    health = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{HTTP_PORT}{HEALTH_PATH}', timeout=4)"
    )
    header = "\n".join(f"# {line}" for line in _HEADER.format(target="docker").splitlines())
    return f"""\
# syntax=docker/dockerfile:1
{header}
#
#   docker build -t {plan.name} .
#   docker compose up -d

ARG PYTHON_VERSION={python_version}

# -- build: a virtualenv with the framework and the project's dependencies -----------------
FROM python:${{PYTHON_VERSION}}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"
# core-framework is not on PyPI: pass a requirement pip can reach (--build-arg
# CORE_FRAMEWORK="core-framework @ git+https://..."), or put its wheel in wheels/
# (pip wheel --no-deps -w wheels <its source directory>).
ARG CORE_FRAMEWORK={json.dumps(requirement)}
COPY wheels/ /tmp/wheels/
COPY {REQUIREMENTS} /tmp/{REQUIREMENTS}
RUN pip install --find-links /tmp/wheels "${{CORE_FRAMEWORK}}" -r /tmp/{REQUIREMENTS}

# -- runtime: the virtualenv and the code, run by an unprivileged user ----------------------
FROM python:${{PYTHON_VERSION}}-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid {APP_UID} app \\
 && useradd --system --uid {APP_UID} --gid app --home-dir /app --no-create-home app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY . .
# Files the app writes go to {DATA_DIR} (mount a volume there).
RUN mkdir -p {DATA_DIR} && chown app:app {DATA_DIR}
USER {APP_UID}:{APP_UID}
EXPOSE {HTTP_PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\
  CMD {json.dumps(["python", "-c", health])}
CMD {json.dumps(["core", *plan.processes[0].args])}
"""


def compose(plan: DeployPlan) -> str:
    """docker-compose.yml: the processes, a one-shot `migrate`, and the backing services."""
    environment = _environment(plan)
    services: dict[str, Any] = {}
    backing = {_SERVICE_NAMES[s]: {"condition": "service_healthy"} for s in plan.services}
    if plan.has_migrations:
        services["migrate"] = _app_service(plan, MIGRATE_ARGS, environment, backing)
        services["migrate"]["restart"] = "no"
        services["migrate"]["healthcheck"] = {"disable": True}
        ready = {**backing, "migrate": {"condition": "service_completed_successfully"}}
    else:
        ready = backing
    for process in plan.processes:
        services[process.name] = _process_service(plan, process, environment, ready)
    volumes: dict[str, Any] = {}
    for service in plan.services:
        name = _SERVICE_NAMES[service]
        services[name], volume = _BACKING[service](plan)
        if volume:
            volumes[volume] = {}
    document: dict[str, Any] = {"services": services}
    if volumes:
        document["volumes"] = volumes
    keys = key_files(plan)
    if keys:
        # Mounted at run time, never copied into the image (.dockerignore keeps them out).
        document["secrets"] = {
            _secret_name(name): {"file": path if path.startswith("/") else f"./{path}"}
            for name, path in keys.items()
        }
    scale = "\n  docker compose up -d --scale worker=4" if "worker" in services else ""
    comment = (
        _HEADER.format(target="docker")
        + f"\n\n  docker compose up -d{scale}\n\n"
        + f"Settings come from .env, then {ENV_FILE} (the services' random passwords, written\n"
        + "once); `environment:` points them at the services below."
    )
    return dump(document, comment=comment)


def _process_service(
    plan: DeployPlan, process: Process, environment: dict[str, str], ready: dict[str, Any]
) -> dict[str, Any]:
    service = _app_service(plan, process.args, environment, ready)
    if process.serves_http:
        service["ports"] = [f"{HTTP_PORT}:{HTTP_PORT}"]
    else:
        # No fixed name or host port, so `--scale worker=N` can start N of them; and no HTTP
        # to check, so the image's HEALTHCHECK does not apply.
        service["healthcheck"] = {"disable": True}
    service["stop_grace_period"] = f"{process.stop_seconds}s"
    service["restart"] = "unless-stopped"
    return service


def _app_service(
    plan: DeployPlan, args: tuple[str, ...], environment: dict[str, str], ready: dict[str, Any]
) -> dict[str, Any]:
    service: dict[str, Any] = {
        "build": ".",
        "image": f"{plan.name}:latest",
        "command": ["core", *args],
        "env_file": [{"path": ".env", "required": False}, ENV_FILE],
        "environment": dict(environment),
    }
    keys = key_files(plan)
    if keys:
        service["secrets"] = [_secret_name(name) for name in keys]
    if ready:
        service["depends_on"] = dict(ready)
    return service


def _environment(plan: DeployPlan) -> dict[str, str]:
    """Settings that differ inside compose: production, and the services' addresses."""
    settings = plan.settings
    environment = {"ENVIRONMENT": "production"}
    # What promotion changed (or the project set) and .env may say otherwise; the URLs with
    # passwords (DATABASE_URL, RABBITMQ_URL) come from ENV_FILE.
    environment["TASK_BROKER"] = settings.task_broker
    environment["MESSAGE_BROKER"] = settings.message_broker
    environment["AUTH_TOKEN_STORE"] = settings.auth_token_store
    if "redis" in plan.services:
        database = urlsplit(settings.redis_url).path.strip("/") or "0"
        environment["REDIS_URL"] = f"redis://redis:6379/{database}"
        if settings.auth_token_store_url:
            environment["AUTH_TOKEN_STORE_URL"] = environment["REDIS_URL"]
    if "kafka" in plan.services:
        environment["KAFKA_BOOTSTRAP_SERVERS"] = "kafka:9092"
    for name in key_files(plan):
        environment[name] = f"{KEYS_DIR}/{_secret_name(name)}"
    return environment


def _secret_name(setting: str) -> str:
    """`AUTH_PRIVATE_KEY_FILE` -> `auth_private_key`."""
    return setting.lower().removesuffix("_file")


def _postgres_names(plan: DeployPlan) -> tuple[str, str]:
    """The user and database names of DATABASE_URL: the defaults of POSTGRES_USER/_DB."""
    url = make_url(plan.settings.database_url)
    return url.username or "app", url.database or plan.name


def _postgres(plan: DeployPlan) -> tuple[dict[str, Any], str]:
    # POSTGRES_USER, _PASSWORD and _DB come from ENV_FILE, as DATABASE_URL does.
    return {
        "image": IMAGES["postgres"],
        "env_file": [ENV_FILE],
        "volumes": ["pgdata:/var/lib/postgresql/data"],
        "healthcheck": {
            "test": ["CMD-SHELL", 'pg_isready -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'],
            "interval": "5s",
            "timeout": "5s",
            "retries": 10,
        },
        "restart": "unless-stopped",
    }, "pgdata"


def _redis(plan: DeployPlan) -> tuple[dict[str, Any], str]:
    return {
        "image": IMAGES["redis"],
        "volumes": ["redisdata:/data"],
        "healthcheck": {
            "test": ["CMD", "redis-cli", "ping"],
            "interval": "5s",
            "timeout": "3s",
            "retries": 10,
        },
        "restart": "unless-stopped",
    }, "redisdata"


def _rabbitmq(plan: DeployPlan) -> tuple[dict[str, Any], str]:
    return {
        "image": IMAGES["rabbitmq"],
        # RABBITMQ_DEFAULT_USER and _PASS from ENV_FILE: the default `guest` user may only
        # connect from inside its own container.
        "env_file": [ENV_FILE],
        "volumes": ["rabbitmqdata:/var/lib/rabbitmq"],
        "healthcheck": {
            "test": ["CMD", "rabbitmq-diagnostics", "-q", "ping"],
            "interval": "10s",
            "timeout": "10s",
            "retries": 12,
        },
        "restart": "unless-stopped",
    }, "rabbitmqdata"


def _kafka(plan: DeployPlan) -> tuple[dict[str, Any], str]:
    # One node in KRaft mode (no ZooKeeper), reachable as kafka:9092 inside the network.
    return {
        "image": IMAGES["kafka"],
        "environment": {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_NUM_PARTITIONS": "3",
            "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        },
        "volumes": ["kafkadata:/var/lib/kafka/data"],
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 "
                "> /dev/null 2>&1",
            ],
            "interval": "10s",
            "timeout": "10s",
            "retries": 12,
            "start_period": "20s",
        },
        "restart": "unless-stopped",
    }, "kafkadata"


_BACKING: dict[str, Callable[[DeployPlan], tuple[dict[str, Any], str]]] = {
    "postgres": _postgres,
    "redis": _redis,
    "rabbitmq": _rabbitmq,
    "kafka": _kafka,
}


def _pinned(plan: DeployPlan) -> str:
    extras = f"[{','.join(plan.extras)}]" if plan.extras else ""
    version = f"=={plan.framework.version}" if plan.framework.version else ""
    return f"core-framework{extras}{version}"
