"""`core deploy k8s`: a kustomize folder, k8s/, for `kubectl apply -k k8s/`.

One Deployment per process, a Service and a HorizontalPodAutoscaler for the API, the settings
as a ConfigMap (config.env) and a Secret (secret.env) that every container reads.
"""

from __future__ import annotations

import secrets
from typing import Any

from core.scaffold.deploy.docker import APP_UID
from core.scaffold.deploy.plan import HEALTH_PATH, HTTP_PORT, MIGRATE_ARGS, DeployPlan, Process
from core.scaffold.yaml import dump

FOLDER = "k8s"
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


def k8s_files(plan: DeployPlan) -> dict[str, str]:
    """The files to write under k8s/ (relative path -> text)."""
    files = {
        f"{process.name}-deployment.yaml": _deployment(plan, process) for process in plan.processes
    }
    files["api-service.yaml"] = _service(plan)
    files["api-hpa.yaml"] = _hpa(plan)
    files["config.env"] = _config_env(plan)
    files["secret.env"] = _secret_env(plan)
    files["kustomization.yaml"] = _kustomization(plan, list(files))
    return {f"{FOLDER}/{name}": text for name, text in files.items()}


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
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _deployment(plan: DeployPlan, process: Process) -> str:
    labels = _labels(plan, process.name)
    container = _container(plan, process.name, process.args)
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "fsGroup": APP_UID,
        },
        "terminationGracePeriodSeconds": process.stop_seconds,
    }
    if process.serves_http and plan.has_migrations:
        # Each new API pod applies pending migrations before it serves.
        pod["initContainers"] = [_container(plan, "migrate", MIGRATE_ARGS)]
    pod["containers"] = [container]
    if process.serves_http:
        container["ports"] = [{"name": "http", "containerPort": HTTP_PORT}]
        probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
        container["readinessProbe"] = {**probe, "initialDelaySeconds": 5, "periodSeconds": 10}
        container["livenessProbe"] = {
            **probe,
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "failureThreshold": 3,
        }
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{plan.name}-{process.name}", "labels": labels},
        "spec": {
            "replicas": 2 if process.serves_http else 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
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


def _kustomization(plan: DeployPlan, names: list[str]) -> str:
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": plan.name}}],
        "resources": [name for name in names if name.endswith(".yaml")],
        # Point newName at your registry (registry.example.com/team/app) and set newTag.
        "images": [{"name": plan.name, "newName": plan.name, "newTag": "latest"}],
        "configMapGenerator": [{"name": f"{plan.name}-config", "envs": ["config.env"]}],
        "secretGenerator": [{"name": f"{plan.name}-secret", "envs": ["secret.env"]}],
    }
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
        lines.append(f"{name.upper()}={_env_value(value)}")
    return "\n".join(lines) + "\n"


def _secret_env(plan: DeployPlan) -> str:
    settings = plan.settings
    lines = [
        "# Credentials (a Secret). Keep this file out of version control.",
        "# A fresh SECRET_KEY: services that must trust each other's tokens share one value.",
        f"SECRET_KEY={secrets.token_urlsafe(48)}",
    ]
    if plan.database_dialect in ("sqlite", "memory"):
        lines.append(
            "# SQLite keeps one file per pod: point DATABASE_URL at PostgreSQL for Kubernetes."
        )
    lines.append("# Point these at the services of your cluster.")
    lines.append(f"DATABASE_URL={settings.database_url}")
    if "redis" in plan.services:
        lines.append(f"REDIS_URL={settings.redis_url}")
        if settings.auth_token_store_url:
            lines.append(f"AUTH_TOKEN_STORE_URL={settings.auth_token_store_url}")
    if "rabbitmq" in plan.services:
        lines.append(f"RABBITMQ_URL={settings.rabbitmq_url}")
    return "\n".join(lines) + "\n"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
