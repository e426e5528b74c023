"""`core deploy docker|pm2|k8s`: write the project's deployment files.

Each reads the project's settings and imports its app (APP_MODULE), as `core worker` does, to
decide which processes to run (api, worker, scheduler, consumer) and which services its
settings name (PostgreSQL, Redis, RabbitMQ, Kafka). A file that exists and differs is left
alone unless `--force`; the command says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import App, Parameter

if TYPE_CHECKING:
    from core.scaffold.deploy.plan import DeployPlan

__all__ = ("deploy_app", "docker", "k8s", "pm2")

deploy_app = App(
    name="deploy",
    help="Write deployment files for the project in the working directory: docker, pm2 or k8s.",
)

AppOption = Annotated[
    str | None, Parameter(name="--app", help="module:attr of the CoreApp (APP_MODULE).")
]
ForceOption = Annotated[
    bool,
    Parameter(negative=(), help="Overwrite files that exist and differ from what core writes."),
]


@deploy_app.command
def docker(
    *, python: str | None = None, force: ForceOption = False, app_module: AppOption = None
) -> None:
    """Write a Dockerfile, .dockerignore and docker-compose.yml.

    The Dockerfile has two stages (a virtualenv is built, then copied into a slim image), runs
    as an unprivileged user and has a HEALTHCHECK on GET /health. docker-compose.yml has the
    `api`, and the `worker`, `scheduler` and `consumer` the settings call for (`worker` has no
    fixed name or port: `docker compose up --scale worker=4`), a one-shot `migrate`, and the
    PostgreSQL, Redis, RabbitMQ or Kafka the settings name.

    Args:
        python: Python version of the image, e.g. 3.13. Default: the project's .venv's.
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.docker import REQUIREMENTS, REQUIREMENTS_TEXT, docker_files
    from core.scaffold.deploy.plan import python_version

    plan = _plan(app_module)
    version = python_version(plan.root, python)
    notes = []
    if plan.framework.directory is not None:
        notes.append(
            f"core-framework comes from {plan.framework.directory}, outside the build context: "
            f"build its wheel into wheels/ (pip wheel --no-deps -w wheels "
            f"{plan.framework.directory}) or pass --build-arg CORE_FRAMEWORK=..."
        )
    _write(
        plan,
        docker_files(plan, python_version=version),
        force=force,
        keep={REQUIREMENTS: REQUIREMENTS_TEXT},
        notes=notes,
    )


@deploy_app.command
def pm2(*, force: ForceOption = False, app_module: AppOption = None) -> None:
    """Write ecosystem.config.js: the same processes, run by PM2 on one machine.

    Each process runs the `core` of the project's .venv (or CORE_BIN); the API listens on
    HOST:PORT (127.0.0.1:8000 by default). Run `core migrate` before `pm2 start`.

    Args:
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.pm2 import pm2_files

    plan = _plan(app_module)
    notes = []
    if plan.services:
        notes.append(f"PM2 does not run {', '.join(plan.services)}: point the settings at them")
    _write(plan, pm2_files(plan), force=force, notes=notes)


@deploy_app.command
def k8s(*, force: ForceOption = False, app_module: AppOption = None) -> None:
    """Write k8s/, a kustomize folder for `kubectl apply -k k8s/`.

    A Deployment per process (the API's with readiness and liveness probes on /health and an
    init container that runs `core migrate`), a Service and a HorizontalPodAutoscaler for the
    API, resource requests, and the settings as a ConfigMap (k8s/config.env) and a Secret
    (k8s/secret.env, written once with a fresh SECRET_KEY, then never overwritten).

    Args:
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.k8s import FOLDER, k8s_files

    plan = _plan(app_module)
    files = k8s_files(plan)
    secret = f"{FOLDER}/secret.env"
    notes = []
    if plan.services:
        notes.append(
            f"the cluster must provide {', '.join(plan.services)}: set their addresses in "
            f"{FOLDER}/config.env and {secret}"
        )
    if plan.database_dialect in ("sqlite", "memory"):
        notes.append(f"DATABASE_URL is {plan.database_dialect}: use PostgreSQL in Kubernetes")
    _write(plan, files, force=force, keep={secret: files.pop(secret)}, notes=notes)


def _plan(app_module: str | None) -> DeployPlan:
    from core.scaffold.deploy.plan import plan_deployment

    return plan_deployment(Path.cwd(), app_module=app_module)


def _write(
    plan: DeployPlan,
    files: Mapping[str, str],
    *,
    force: bool,
    keep: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Write `files` (and each of `keep` only when missing), then report."""
    from core.scaffold.files import write_files

    report = write_files(plan.root, files, force=force)
    for line in report.lines():
        say(line)
    for name, text in (keep or {}).items():
        if (plan.root / name).exists():
            say(f"kept {name}: it is yours now (delete it to have core write it again)")
        else:
            write_files(plan.root, {name: text})
            say(f"wrote {name}")
    for line in [*plan.summary(), *(f"note: {note}" for note in notes or [])]:
        say(line)
