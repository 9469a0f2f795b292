"""The worker Deployment (and its KEDA ScaledObject) of one task queue in one namespace.

Every valid WorkflowDefinition on a task queue shares that queue's Deployment: it runs
the same generic interpreter whatever the document, so one pool of workers serves them
all, and KEDA scales it on the queue's backlog. Each of those definitions is an owner of
the Deployment, so the garbage collector removes it with the last definition; the
ScaledObject and TriggerAuthentication are owned by the Deployment and go with it. (They
used to carry every definition as an owner too: with a thousand definitions on a queue,
each apply of such an object cost the apiserver about 170 ms of CPU, and a burst applies
a group many times.)

When definitions on one queue ask for different worker settings, they are merged:

* ``image`` and ``resources``: from the oldest definition that sets them (creation
  time, then name); the operator's default image otherwise;
* ``minReplicas`` and ``maxReplicas``: the largest asked for;
* ``targetBacklog`` and ``activationBacklog``: the smallest asked for (the most eager);
* ``env``: the union by name; for a name set twice, the oldest definition's value;
* Secrets: every Secret any of the documents names in ``use.secrets`` is mounted
  read-only at ``/etc/temporal-flow/secrets/<name>/`` (``$secret.<name>.<key>``);
* the Temporal namespace: the one all of them run in (a definition that would run in
  another is not valid), which the pods connect to and KEDA reads the backlog of.

The pods pass the ``restricted`` Pod Security Standard (see :mod:`tflow_operator.pods`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from tflow_operator import keda, pods
from tflow_operator.config import Config
from tflow_operator.model import BY_AGE, DefinitionInfo
from tflow_operator.naming import (
    COMPONENT_WORKER,
    NAMESPACE_DEFINITIONS_CONFIGMAP,
    TASK_QUEUE_LABEL,
    common_labels,
    worker_deployment_name,
    worker_selector,
)
from tflow_workers.commands import WORKER_COMMAND

DEFINITIONS_DIR: Final = "/etc/temporal-flow/definitions"
DEFINITIONS_VOLUME: Final = "definitions"
SECRETS_DIR: Final = "/etc/temporal-flow/secrets"
HEALTH_PORT: Final = 8080
METRICS_PORT: Final = 9090
# The per-namespace published definitions may be split into this many ConfigMaps; the
# Deployment mounts all of them (as optional sources of one projected volume).
MAX_NAMESPACE_SHARDS: Final = 8

DEFAULTS: Final[dict[str, int]] = {
    "minReplicas": 0,
    "maxReplicas": 10,
    "targetBacklog": 5,
    "activationBacklog": 0,
}


@dataclass(frozen=True)
class WorkerSettings:
    image: str
    resources: dict[str, Any] | None
    # Container env entries ({"name", "value"} or {"name", "valueFrom"}), sorted by name.
    env: tuple[dict[str, Any], ...]
    min_replicas: int
    max_replicas: int
    target_backlog: int
    activation_backlog: int
    secrets: tuple[str, ...] = ()
    # The Temporal namespace the queue lives in; "" for the operator's shared one.
    temporal_namespace: str = ""


def _int(workers: dict[str, Any], key: str) -> int:
    value = workers.get(key)
    return int(value) if isinstance(value, int) else DEFAULTS[key]


def merge_settings(
    members: Sequence[DefinitionInfo], default_image: str, temporal_namespace: str = ""
) -> WorkerSettings:
    """One queue's worker settings from all its definitions (see the module docstring)."""
    if not members:
        raise ValueError("a worker group needs at least one definition")
    ordered = sorted(members, key=BY_AGE)
    image = next((str(d.workers["image"]) for d in ordered if d.workers.get("image")), None)
    resources = next((d.workers["resources"] for d in ordered if d.workers.get("resources")), None)
    env: dict[str, dict[str, Any]] = {}
    for definition in ordered:
        for item in definition.workers.get("env") or []:
            if isinstance(item, dict) and item.get("name") and item["name"] not in env:
                env[str(item["name"])] = _env_entry(item)
    return WorkerSettings(
        image=image or default_image,
        resources=dict(resources) if isinstance(resources, dict) else None,
        env=tuple(entry for _, entry in sorted(env.items())),
        min_replicas=max(_int(d.workers, "minReplicas") for d in ordered),
        max_replicas=max(_int(d.workers, "maxReplicas") for d in ordered),
        target_backlog=min(_int(d.workers, "targetBacklog") for d in ordered),
        activation_backlog=min(_int(d.workers, "activationBacklog") for d in ordered),
        secrets=tuple(sorted({name for d in ordered for name in d.secrets})),
        temporal_namespace=temporal_namespace,
    )


def _env_entry(item: dict[str, Any]) -> dict[str, Any]:
    """A container env entry from a spec's: a Secret or ConfigMap key stays a reference
    (the kubelet resolves it; its value never passes through the operator)."""
    name = str(item["name"])
    source = item.get("valueFrom")
    if isinstance(source, dict):
        for field_name in ("secretKeyRef", "configMapKeyRef"):
            ref = source.get(field_name)
            if isinstance(ref, dict):
                return {
                    "name": name,
                    "valueFrom": {field_name: {"name": ref.get("name"), "key": ref.get("key")}},
                }
    return {"name": name, "value": str(item.get("value") or "")}


def worker_env(
    namespace: str, task_queue: str, settings: WorkerSettings, config: Config
) -> list[dict[str, Any]]:
    """The worker container's environment: the operator's, then the definitions' (which
    win on a name clash)."""
    env: dict[str, str] = {
        "TEMPORAL_ADDRESS": config.worker_temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace or config.temporal_namespace,
        "TFLOW_TASK_QUEUE": task_queue,
        "TFLOW_DEFINITIONS_DIR": DEFINITIONS_DIR,
        "TFLOW_ROUTER_TASK_QUEUE": config.router_task_queue,
        "TFLOW_HEALTH_PORT": str(HEALTH_PORT),
        "TFLOW_METRICS_PORT": str(METRICS_PORT),
    }
    if config.temporal_namespaces.only(namespace).enabled:
        # Only this namespace's entry: where its `run: workflow` targets live.
        env["TFLOW_TEMPORAL_NAMESPACES"] = config.temporal_namespaces.only(namespace).to_env()
    if config.worker_functions:
        env["TFLOW_FUNCTIONS"] = config.worker_functions
    if config.log_format:
        env["TFLOW_LOG_FORMAT"] = config.log_format
    if settings.secrets:
        env["TFLOW_SECRETS_DIR"] = SECRETS_DIR
    entries: dict[str, dict[str, Any]] = {
        name: {"name": name, "value": v} for name, v in env.items()
    }
    entries.update({entry["name"]: entry for entry in settings.env})
    return list(entries.values())


def projected_definitions() -> dict[str, Any]:
    """The namespace's published definitions as one volume (workers, and listeners that
    route their events themselves, mount it with `definitions_mount`)."""
    return pods.projected_configmaps(
        DEFINITIONS_VOLUME, NAMESPACE_DEFINITIONS_CONFIGMAP, MAX_NAMESPACE_SHARDS
    )


def definitions_mount() -> dict[str, Any]:
    """The volume of `projected_definitions`, read-only at DEFINITIONS_DIR."""
    return {"name": DEFINITIONS_VOLUME, "mountPath": DEFINITIONS_DIR, "readOnly": True}


def secret_volumes(secrets: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for the Secrets the queue's documents name in `use.secrets`:
    each at `<SECRETS_DIR>/<name>/<key>`, the layout the worker's secret store reads.
    Optional, because the Deployment is shared: one definition's missing Secret must not
    keep the others' workers from starting (its own status says the Secret is missing)."""
    volumes = [
        {"name": f"secret-{i}", "secret": {"secretName": name, "optional": True}}
        for i, name in enumerate(secrets)
    ]
    mounts = [
        {"name": f"secret-{i}", "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True}
        for i, name in enumerate(secrets)
    ]
    return volumes, mounts


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "health"}, "periodSeconds": period}


def worker_deployment(
    namespace: str,
    task_queue: str,
    members: Sequence[DefinitionInfo],
    settings: WorkerSettings,
    config: Config,
) -> dict[str, Any]:
    """The Deployment serving ``task_queue`` in ``namespace``, owned by ``members``.

    ``spec.replicas`` is left out on purpose: KEDA (through its HPA) owns it, and a
    server-side apply that set it would fight the autoscaler on every reconcile.
    """
    selector = worker_selector(task_queue)
    labels = {**common_labels(COMPONENT_WORKER), **selector}
    container: dict[str, Any] = {
        "name": "worker",
        "image": settings.image,
        "command": [*WORKER_COMMAND, "--task-queue", task_queue],
        "env": worker_env(namespace, task_queue, settings, config),
        "ports": [
            {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": _probe("/readyz", pods.READINESS_PERIOD_SECONDS),
        "livenessProbe": _probe("/livez", pods.LIVENESS_PERIOD_SECONDS),
        "volumeMounts": [definitions_mount()],
    }
    if settings.resources:
        container["resources"] = settings.resources
    if config.temporal_client_secret:
        container["envFrom"] = config.temporal_client_env_from()
    secret_vols, secret_mounts = secret_volumes(settings.secrets)
    container["volumeMounts"].extend(secret_mounts)
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [projected_definitions(), *secret_vols],
        # The worker drains in-flight tasks for up to 20 s on SIGTERM.
        "terminationGracePeriodSeconds": 30,
    }
    pods.harden(pod_spec)
    if config.worker_service_account:
        pod_spec["serviceAccountName"] = config.worker_service_account
        # An account chosen for the workers may be there for its token (custom functions
        # that call the API): its own automountServiceAccountToken decides.
        del pod_spec["automountServiceAccountToken"]
    ordered = sorted(members, key=BY_AGE)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": worker_deployment_name(task_queue),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [d.owner_reference() for d in ordered],
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def deployment_owner(deployment: dict[str, Any]) -> dict[str, Any]:
    """The owner reference to a worker Deployment as the apiserver returned it. Without
    ``blockOwnerDeletion``, which would need ``update`` on ``deployments/finalizers``
    where OwnerReferencesPermissionEnforcement is on, and which nothing here needs: the
    Deployment's deletion need not wait for its KEDA objects."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def worker_scaled_object(
    namespace: str,
    task_queue: str,
    settings: WorkerSettings,
    config: Config,
) -> dict[str, Any]:
    """The KEDA ScaledObject scaling the queue's Deployment on its backlog; it refers to
    ``worker_trigger_authentication`` when the operator has a Temporal client Secret.
    Without an owner: the Deployment owns it (:func:`deployment_owner`), and its uid is
    known only once the Deployment is applied."""
    name = worker_deployment_name(task_queue)
    auth = keda.trigger_authentication_name(name) if config.temporal_client_secret else None
    return keda.scaled_object_for_workers(
        name=name,
        namespace=namespace,
        deployment=name,
        temporal_address=config.worker_temporal_address,
        temporal_namespace=settings.temporal_namespace or config.temporal_namespace,
        task_queue=task_queue,
        min_replicas=settings.min_replicas,
        max_replicas=settings.max_replicas,
        target_backlog=settings.target_backlog,
        activation_backlog=settings.activation_backlog,
        timing=keda.Timing(config.worker_polling_seconds, config.worker_cooldown_seconds),
        authentication_ref=auth,
        owner_references=[],
        labels={**common_labels(COMPONENT_WORKER), TASK_QUEUE_LABEL: task_queue},
    )


def worker_trigger_authentication(
    namespace: str,
    task_queue: str,
    config: Config,
) -> dict[str, Any] | None:
    """KEDA's credentials for the queue's ScaledObject: the same Temporal client Secret
    (of the same namespace) the worker pods load, so the scaler reaches a Temporal that
    needs an API key or mutual TLS exactly where the workers do. None without a Secret."""
    if not config.temporal_client_secret:
        return None
    name = worker_deployment_name(task_queue)
    return keda.trigger_authentication_for_workers(
        keda.trigger_authentication_name(name),
        namespace,
        config.temporal_client_secret,
        owner_references=[],
        labels={**common_labels(COMPONENT_WORKER), TASK_QUEUE_LABEL: task_queue},
    )
