"""`core deploy docker|pm2|k8s`: write the project's deployment files.

Each reads the project's settings and imports its app (APP_MODULE), as `core worker` does, to
decide which processes to run (api, worker, scheduler, consumer) and which services its
settings name (PostgreSQL, Redis, RabbitMQ, Kafka). The embedded defaults are promoted for
production (SQLite to PostgreSQL; the in-memory task queue, broker and token store to Redis),
and a worker is always there. A file that exists and differs is left alone unless `--force`;
the command says which.
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
    `api` and a `worker` (no fixed name or port: `docker compose up --scale worker=4`), the
    `scheduler` and `consumer` the app calls for, a one-shot `migrate`, and the PostgreSQL,
    Redis, RabbitMQ or Kafka the settings name. Their passwords are random, in .env.docker
    (written once, git-ignored); .dockerignore keeps .env files and keys out of the image.

    Args:
        python: Python version of the image, e.g. 3.13. Default: the project's .venv's.
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.docker import (
        ENV_FILE,
        REQUIREMENTS,
        REQUIREMENTS_TEXT,
        docker_files,
        env_file,
        env_file_text,
    )
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
    _keep_env(plan, ENV_FILE, env_file(plan), env_file_text)
    _git_ignore(plan, [ENV_FILE])


@deploy_app.command
def pm2(*, force: ForceOption = False, app_module: AppOption = None) -> None:
    """Write ecosystem.config.js: the same processes, run by PM2 on one machine.

    Each process runs the `core` of the project's .venv (or CORE_BIN); the API listens on
    HOST:PORT (127.0.0.1:8000 by default). The promoted settings (PostgreSQL with a random
    password, Redis) go to .env.pm2, written once, which the processes read over .env. Run
    `core migrate` before `pm2 start`.

    Args:
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.pm2 import ENV_FILE, env_file, env_file_text, pm2_files

    plan = _plan(app_module)
    notes = []
    if plan.services:
        notes.append(
            f"PM2 does not run {', '.join(plan.services)}: start them, and point {ENV_FILE} at "
            "them (DATABASE_URL's role and password, REDIS_URL)"
        )
    _write(plan, pm2_files(plan), force=force, notes=notes)
    _keep_env(plan, ENV_FILE, env_file(plan), env_file_text)
    _git_ignore(plan, [ENV_FILE])


@deploy_app.command
def k8s(*, force: ForceOption = False, app_module: AppOption = None) -> None:
    """Write k8s/, a kustomize folder for `kubectl apply -k k8s/`.

    A Deployment per process (the API's with a readiness probe on /health/ready, a liveness
    probe on /health/live and an init container that runs `core migrate`; one scheduler at
    most), a Service, a HorizontalPodAutoscaler and a PodDisruptionBudget for the API, a
    read-only root filesystem with a writable /tmp, RuntimeDefault seccomp, no service account
    token, and the settings as a ConfigMap (k8s/config.env) and a Secret (k8s/secret.env,
    written once with a fresh SECRET_KEY and database password, then never overwritten). Key
    files (AUTH_*_KEY_FILE) are copied to k8s/keys/ and mounted from a Secret.

    Args:
        force: Overwrite files that exist and differ from what core writes.
    """
    from core.scaffold.deploy.k8s import FOLDER, k8s_files, key_copies

    plan = _plan(app_module)
    files = k8s_files(plan)
    secret = f"{FOLDER}/secret.env"
    keep = {secret: files.pop(secret)}
    notes = []
    for copy, source in key_copies(plan).items():
        if (plan.root / source).is_file():
            keep[copy] = (plan.root / source).read_text(encoding="utf-8")
        elif not (plan.root / copy).exists():
            notes.append(f"{source} does not exist: put the key at {copy} for the keys Secret")
    if plan.services:
        notes.append(
            f"the cluster must provide {', '.join(plan.services)}: set their addresses in "
            f"{FOLDER}/config.env and {secret}"
        )
    _write(plan, files, force=force, keep=keep, notes=notes)
    for name in (secret, *key_copies(plan)):
        if (plan.root / name).is_file():
            (plan.root / name).chmod(0o600)
    _git_ignore(plan, [secret, f"{FOLDER}/keys/"])


def _keep_env(
    plan: DeployPlan,
    name: str,
    variables: Mapping[str, str],
    render: Callable[[dict[str, str]], str],
    say: Callable[[str], None] = print,
) -> None:
    """Write the env file `name` once; later runs only add the variables it lacks (a service
    the settings now name), so passwords already in use never change."""
    path = plan.root / name
    if not path.exists():
        path.write_text(render(dict(variables)), encoding="utf-8")
        path.chmod(0o600)
        say(f"wrote {name} (random passwords; git-ignored)")
        return
    text = path.read_text(encoding="utf-8")
    present = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    missing = {key: value for key, value in variables.items() if key not in present}
    if not missing:
        say(f"kept {name}")
        return
    lines = "".join(f"{key}={value}\n" for key, value in missing.items())
    path.write_text(text + ("" if text.endswith("\n") else "\n") + lines, encoding="utf-8")
    say(f"updated {name}: added {', '.join(missing)}")


def _git_ignore(plan: DeployPlan, names: list[str], say: Callable[[str], None] = print) -> None:
    """Add `names` to the project's .gitignore when it has one that does not ignore them."""
    import fnmatch

    path = plan.root / ".gitignore"
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    patterns = [line.strip().rstrip("/") for line in text.splitlines()]
    patterns = [p for p in patterns if p and not p.startswith(("#", "!"))]
    missing = [
        name
        for name in names
        if not any(
            fnmatch.fnmatch(name.rstrip("/"), pattern)
            or fnmatch.fnmatch(name.rsplit("/", 1)[-1].rstrip("/"), pattern)
            for pattern in patterns
        )
    ]
    if missing:
        lines = "".join(f"{name}\n" for name in missing)
        path.write_text(text + ("" if text.endswith("\n") else "\n") + lines, encoding="utf-8")
        say(f"added {', '.join(missing)} to .gitignore")


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
