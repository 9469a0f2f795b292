"""Names, labels and annotations of everything the operator creates.

Kubernetes names are at most 63 characters here (they also become label values and DNS
labels); a name that would be longer keeps a readable prefix and ends in a hash of the
whole, so two long task queues never share a Deployment.
"""

from __future__ import annotations

import hashlib
from typing import Final

from tflow_operator.api.common import GROUP

MAX_NAME: Final = 63

# Labels on every child object.
PART_OF: Final = "app.kubernetes.io/part-of"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
APP_NAME: Final = "app.kubernetes.io/name"
COMPONENT: Final = f"{GROUP}/component"
TASK_QUEUE_LABEL: Final = f"{GROUP}/task-queue"
SCOPE_LABEL: Final = f"{GROUP}/scope"

PART_OF_VALUE: Final = "temporal-flow"
MANAGED_BY_VALUE: Final = "temporal-flow-operator"

COMPONENT_WORKER: Final = "worker"
COMPONENT_DEFINITIONS: Final = "definitions"
COMPONENT_ROUTING: Final = "routing"

# Annotations.
ROUTING_HASH: Final = f"{GROUP}/routing-hash"
CONTENT_HASH: Final = f"{GROUP}/content-hash"
SHARDS: Final = f"{GROUP}/shards"

FINALIZER: Final = f"{GROUP}/finalizer"

ROUTING_CONFIGMAP: Final = "tflow-routing"
# The cluster-wide copy (system namespace, for the root orchestrator).
DEFINITIONS_CONFIGMAP: Final = "tflow-definitions"
# The per-namespace copy (mounted by that namespace's workers).
NAMESPACE_DEFINITIONS_CONFIGMAP: Final = "tflow-namespace-definitions"
# A namespace's own routes, in a namespace with a Listener that routes its events itself
# (spec.routing direct), which mounts them.
NAMESPACE_ROUTING_CONFIGMAP: Final = "tflow-namespace-routing"

WORKER_PREFIX: Final = "tflow-worker-"


def bounded(name: str, limit: int = MAX_NAME) -> str:
    """``name`` when it fits, else a prefix of it and an 8-hex-digit hash of all of it."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def worker_deployment_name(task_queue: str) -> str:
    return bounded(f"{WORKER_PREFIX}{task_queue}")


def shard_name(base: str, index: int) -> str:
    """Shard 0 is ``base``; shard N is ``base-N``."""
    return base if index == 0 else f"{base}-{index}"


def definition_key(namespace: str, name: str) -> str:
    """The ConfigMap key a published definition is stored under."""
    return f"{namespace}.{name}.yaml"


def common_labels(component: str) -> dict[str, str]:
    return {
        PART_OF: PART_OF_VALUE,
        MANAGED_BY: MANAGED_BY_VALUE,
        COMPONENT: component,
    }


def worker_selector(task_queue: str) -> dict[str, str]:
    """The labels a worker Deployment selects its pods by (never changes for a queue)."""
    return {APP_NAME: "tflow-worker", TASK_QUEUE_LABEL: task_queue}
