"""`core deploy k8s`: a kustomize folder, k8s/, for `kubectl apply -k k8s/`.

One Deployment per process, a Service, a HorizontalPodAutoscaler and a PodDisruptionBudget for
the API, the settings as a ConfigMap (config.env) and a Secret (secret.env) that every
container reads, and the key files the settings name as a Secret mounted as files.
"""

from __future__ import annotations

import secrets
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from core.scaffold.deploy.docker import APP_UID, key_files
from core.scaffold.deploy.plan import (
    HTTP_PORT,
    LIVE_PATH,
    MIGRATE_ARGS,
    READY_PATH,
    DeployPlan,
    Process,
)
from core.scaffold.yaml import dump

FOLDER = "k8s"
# Where the keys Secret is mounted in every container.
KEYS_MOUNT = "/var/run/secrets/core/keys"
_HEADER = """Written by `core deploy k8s`. Edit freely: running it again leaves an edited file alone
(`core deploy k8s --force` writes it again)."""
# Settings that hold credentials (URLs may carry passwords) go to the Secret, the rest to the
# ConfigMap.
_SECRET_SETTINGS = (
    "secret_key",
    "database_url",
    "redis_url",
    "rabbitmq_url",
    "auth_token_store_url",
)
_LOCAL_SETTINGS = {"database_backend", "environment", "debug"}
# Paths of files on the developer's machine: in the cluster they point into KEYS_MOUNT.
_KEY_SETTINGS = {"auth_private_key_file", "auth_public_key_file"}


def k8s_files(plan: DeployPlan) -> dict[str, str]:
    """The files to write under k8s/ (relative path -> text)."""
    files = {
        f"{process.name}-deployment.yaml": _deployment(plan, process) for process in plan.processes
    }
    files["api-service.yaml"] = _service(plan)
    files["api-hpa.yaml"] = _hpa(plan)
    files["api-pdb.yaml"] = _pdb(plan)
    files["config.env"] = _config_env(plan)
    files["secret.env"] = _secret_env(plan)
    files["kustomization.yaml"] = _kustomization(plan, list(files))
    return {f"{FOLDER}/{name}": text for name, text in files.items()}


def key_copies(plan: DeployPlan) -> dict[str, str]:
    """`{"k8s/keys/auth_private_key.pem": "keys/private.pem"}`: where each key file the settings
    name is copied for the keys Secret (kustomize reads only files inside k8s/)."""
    return {
        f"{FOLDER}/keys/{_key_name(setting, path)}": path
        for setting, path in key_files(plan).items()
    }


def _key_name(setting: str, path: str) -> str:
    """`AUTH_PRIVATE_KEY_FILE`, `keys/private.pem` -> `auth_private_key.pem`."""
    return setting.lower().removesuffix("_file") + PurePosixPath(path).suffix


def _labels(plan: DeployPlan, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": component}


def _env_from(plan: DeployPlan) -> list[dict[str, Any]]:
    return [
        {"configMapRef": {"name": f"{plan.name}-config"}},
        {"secretRef": {"name": f"{plan.name}-secret"}},
    ]


def _container(plan: DeployPlan, name: str, args: tuple[str, ...]) -> dict[str, Any]:
    return {
        "name": name,
        "image": plan.name,
        "command": ["core", *args],
        "envFrom": _env_from(plan),
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": _mounts(plan),
    }


def _mounts(plan: DeployPlan) -> list[dict[str, Any]]:
    # The root filesystem is read-only: /tmp is the one writable place.
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if key_files(plan):
        mounts.append({"name": "keys", "mountPath": KEYS_MOUNT, "readOnly": True})
    return mounts


def _volumes(plan: DeployPlan) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if key_files(plan):
        volumes.append(
            {"name": "keys", "secret": {"secretName": f"{plan.name}-keys", "defaultMode": 0o440}}
        )
    return volumes


def _deployment(plan: DeployPlan, process: Process) -> str:
    labels = _labels(plan, process.name)
    container = _container(plan, process.name, process.args)
    pod: dict[str, Any] = {
        # The app never talks to the Kubernetes API: no token to steal.
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "fsGroup": APP_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": process.stop_seconds,
    }
    if process.serves_http and plan.has_migrations:
        # Each new API pod applies pending migrations before it serves.
        pod["initContainers"] = [_container(plan, "migrate", MIGRATE_ARGS)]
    pod["containers"] = [container]
    pod["volumes"] = _volumes(plan)
    if process.serves_http:
        container["ports"] = [{"name": "http", "containerPort": HTTP_PORT}]
        # Readiness checks the database, brokers and token store (out of the Service while
        # one is down); liveness only the process, so an outage restarts nothing.
        container["readinessProbe"] = {
            "httpGet": {"path": READY_PATH, "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        }
        container["livenessProbe"] = {
            "httpGet": {"path": LIVE_PATH, "port": "http"},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "failureThreshold": 3,
        }
    spec: dict[str, Any] = {
        "replicas": 2 if process.serves_http else 1,
        "selector": {"matchLabels": labels},
    }
    if process.name == "scheduler":
        # Exactly one scheduler, even during a rollout: two would send each task twice.
        spec["strategy"] = {"type": "Recreate"}
    spec["template"] = {"metadata": {"labels": labels}, "spec": pod}
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{plan.name}-{process.name}", "labels": labels},
        "spec": spec,
    }
    return dump(document, comment=_HEADER)


def _service(plan: DeployPlan) -> str:
    labels = _labels(plan, "api")
    document = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{plan.name}-api", "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    return dump(document, comment=_HEADER)


def _hpa(plan: DeployPlan) -> str:
    document = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{plan.name}-api", "labels": _labels(plan, "api")},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{plan.name}-api",
            },
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    return dump(document, comment=_HEADER)


def _pdb(plan: DeployPlan) -> str:
    labels = _labels(plan, "api")
    document = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"{plan.name}-api", "labels": labels},
        # A node drain never takes the last serving API pod.
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
    }
    return dump(document, comment=_HEADER)


def _kustomization(plan: DeployPlan, names: list[str]) -> str:
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": plan.name}}],
        "resources": [name for name in names if name.endswith(".yaml")],
        # Point newName at your registry (registry.example.com/team/app) and set newTag.
        "images": [{"name": plan.name, "newName": plan.name, "newTag": "latest"}],
        "configMapGenerator": [{"name": f"{plan.name}-config", "envs": ["config.env"]}],
        "secretGenerator": [{"name": f"{plan.name}-secret", "envs": ["secret.env"]}],
    }
    copies = key_copies(plan)
    if copies:
        # The key files as a Secret of files, mounted read-only at KEYS_MOUNT.
        files = [copy.removeprefix(f"{FOLDER}/") for copy in copies]
        document["secretGenerator"].append({"name": f"{plan.name}-keys", "files": files})
    comment = (
        f"{_HEADER}\n\n  docker build -t {plan.name} . && kubectl apply -k {FOLDER}/\n\n"
        "images: points the manifests at your registry; config.env and secret.env become\n"
        "the ConfigMap and Secret every container reads its settings from."
    )
    return dump(document, comment=comment)


def _config_env(plan: DeployPlan) -> str:
    values = plan.settings.model_dump(exclude_defaults=True)
    lines = [
        "# Settings every container reads (a ConfigMap). Credentials go to secret.env.",
        "ENVIRONMENT=production",
    ]
    if "kafka" in plan.services:
        # The cluster's brokers: the project's value is a local address.
        values["kafka_bootstrap_servers"] = plan.settings.kafka_bootstrap_servers
    for name, value in sorted(values.items()):
        if name in _SECRET_SETTINGS or name in _LOCAL_SETTINGS or value is None:
            continue
        if name in _KEY_SETTINGS:
            # The path inside the pod; the key itself is in the keys Secret.
            value = f"{KEYS_MOUNT}/{_key_name(name.upper(), str(value))}"
        lines.append(f"{name.upper()}={_env_value(value)}")
    return "\n".join(lines) + "\n"


def _secret_env(plan: DeployPlan) -> str:
    settings = plan.settings
    lines = [
        "# Credentials (a Secret). Keep this file out of version control.",
        "# A fresh SECRET_KEY: services that must trust each other's tokens share one value.",
        f"SECRET_KEY={secrets.token_urlsafe(48)}",
    ]
    promoted = {label for label, _, _ in plan.promoted}
    lines.append("# Point these at the services of your cluster.")
    database_url = settings.database_url
    if "DATABASE_URL" in promoted:
        # A PostgreSQL service named `postgres` in the namespace, and a fresh password.
        database_url = (
            make_url(database_url)
            .set(host="postgres", password=secrets.token_hex(24))
            .render_as_string(hide_password=False)
        )
    lines.append(f"DATABASE_URL={database_url}")
    if "redis" in plan.services:
        redis_url = settings.redis_url
        if promoted - {"DATABASE_URL"} and "localhost" in redis_url:
            redis_url = redis_url.replace("localhost", "redis", 1)
        lines.append(f"REDIS_URL={redis_url}")
        if settings.auth_token_store_url:
            lines.append(f"AUTH_TOKEN_STORE_URL={settings.auth_token_store_url}")
    if "rabbitmq" in plan.services:
        lines.append(f"RABBITMQ_URL={settings.rabbitmq_url}")
    return "\n".join(lines) + "\n"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
