"""What a Listener is made of: the Deployment running ``python -m tflow_listeners
<source>``, the Service in front of a webhook, a queue listener's KEDA objects, and the
Ready condition read back from the Deployment. Pure functions of the spec and the
operator's settings; `tflow_operator.listener` applies them.

The Deployment's pods run the spec's settings as flags, Temporal's address, namespace and
the router's task queue from the operator's settings, and mount every credential
read-only from the Secret the spec names (never copied into the Deployment). A listener
that routes its events itself (``spec.routing: direct``) also mounts its namespace's part
of the routing table and its published definitions, which the publisher writes there.
They pass the ``restricted`` Pod Security Standard (:mod:`tflow_operator.pods`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tflow_operator import keda, pods
from tflow_operator.api.common import API_VERSION, GROUP, Condition
from tflow_operator.api.listener import (
    NAMES,
    HmacScheme,
    ListenerRouting,
    ListenerSpec,
    ListenerType,
)
from tflow_operator.conditions import make_condition
from tflow_operator.config import Config
from tflow_operator.configmaps import MAX_NAMESPACE_ROUTING_SHARDS
from tflow_operator.naming import APP_NAME, NAMESPACE_ROUTING_CONFIGMAP, bounded, common_labels
from tflow_operator.workers import DEFINITIONS_DIR, definitions_mount, projected_definitions
from tflow_workers.commands import (
    LISTENER_COMMAND,
    SERVICE_BUS_SOURCE,
    SQS_SOURCE,
    WEBHOOK_SOURCE,
)

PLURAL: Final = NAMES.plural
KIND: Final = NAMES.kind

PREFIX: Final = "tflow-listener-"
COMPONENT_LISTENER: Final = "listener"
LISTENER_LABEL: Final = f"{GROUP}/listener"
APP_NAME_VALUE: Final = "tflow-listener"

SOURCES: Final = {
    ListenerType.WEBHOOK: WEBHOOK_SOURCE,
    ListenerType.SQS: SQS_SOURCE,
    ListenerType.AZURE_SERVICE_BUS: SERVICE_BUS_SOURCE,
}
# Where a queue listener serves /healthz, /readyz and /metrics (a webhook serves them on
# its own port).
OPS_PORT: Final = 8080
SECRETS_ROOT: Final = "/etc/tflow/secrets"
# Where a listener with spec.routing direct finds its namespace's routing table (beside
# its published definitions, mounted where the workers mount them).
ROUTES_DIR: Final = "/etc/temporal-flow/routes"
REASON_ROUTING_TABLE_MISSING: Final = "RoutingTableMissing"
CLUSTER_DOMAIN: Final = "cluster.local"
# A Secret mode readable by the pod's group (fsGroup) only.
SECRET_FILE_MODE: Final = 0o440

READY: Final = "Ready"


# --------------------------------------------------------------------------- naming


def child_name(listener: str) -> str:
    """The Deployment's and Service's name (a DNS label: Services need one)."""
    return bounded(f"{PREFIX}{listener}")


def selector_labels(listener: str) -> dict[str, str]:
    return {APP_NAME: APP_NAME_VALUE, LISTENER_LABEL: bounded(listener)}


def child_labels(listener: str) -> dict[str, str]:
    return {**common_labels(COMPONENT_LISTENER), **selector_labels(listener)}


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    return keda.owner_reference(API_VERSION, KIND, name, uid)


# --------------------------------------------------------------------------- secrets


@dataclass(frozen=True)
class SecretMount:
    """One Secret the listener reads, mounted as files under ``SECRETS_ROOT/<volume>``.

    ``key`` None mounts every key of the Secret (the SQS credentials directory); else only
    that key, as the file ``file``.
    """

    volume: str
    secret: str
    key: str | None = None
    file: str = ""

    @property
    def directory(self) -> str:
        return f"{SECRETS_ROOT}/{self.volume}"

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.file}" if self.file else self.directory

    def volume_spec(self) -> dict[str, Any]:
        source: dict[str, Any] = {"secretName": self.secret, "defaultMode": SECRET_FILE_MODE}
        if self.key is not None:
            source["items"] = [{"key": self.key, "path": self.file}]
        return {"name": self.volume, "secret": source}

    def mount_spec(self) -> dict[str, Any]:
        return {"name": self.volume, "mountPath": self.directory, "readOnly": True}


def secret_mounts(spec: ListenerSpec) -> list[SecretMount]:
    """Every Secret the spec refers to, in a stable order."""
    mounts: list[SecretMount] = []
    if spec.type is ListenerType.WEBHOOK:
        auth = spec.effective_webhook.auth
        if auth is not None and auth.hmac_secret_ref is not None:
            ref = auth.hmac_secret_ref
            mounts.append(SecretMount("hmac", ref.name, ref.key, "secret"))
        if auth is not None and auth.bearer_token_secret_ref is not None:
            ref = auth.bearer_token_secret_ref
            mounts.append(SecretMount("bearer-token", ref.name, ref.key, "token"))
    elif spec.type is ListenerType.SQS and spec.sqs is not None:
        if spec.sqs.credentials_secret_ref is not None:
            mounts.append(SecretMount("aws", spec.sqs.credentials_secret_ref.name))
    elif spec.type is ListenerType.AZURE_SERVICE_BUS and spec.azure_service_bus is not None:
        ref = spec.azure_service_bus.connection_string_secret_ref
        mounts.append(SecretMount("servicebus", ref.name, ref.key, "connection-string"))
    return mounts


# --------------------------------------------------------------------------- builders


def _source_flags(spec: ListenerSpec, mounts: Sequence[SecretMount]) -> list[str]:
    by_volume = {m.volume: m for m in mounts}
    flags: list[str] = []
    if spec.type is ListenerType.WEBHOOK:
        hook = spec.effective_webhook
        flags += ["--port", str(hook.port), "--path", hook.path]
        flags += ["--max-body-bytes", str(hook.max_body_bytes)]
        if hook.rate_limit_per_second is not None:
            flags += ["--rate-limit", str(hook.rate_limit_per_second)]
        if "hmac" in by_volume and hook.auth is not None:
            flags += ["--hmac-secret-file", by_volume["hmac"].path]
            if hook.auth.hmac_scheme is HmacScheme.GITHUB:
                flags += ["--hmac-scheme", "github"]
            if hook.auth.hmac_tolerance_seconds is not None:
                flags += ["--hmac-tolerance-seconds", str(hook.auth.hmac_tolerance_seconds)]
        if "bearer-token" in by_volume:
            flags += ["--bearer-token-file", by_volume["bearer-token"].path]
        if hook.run_control is not None and hook.run_control.enabled:
            flags += ["--run-control"]
    elif spec.type is ListenerType.SQS and spec.sqs is not None:
        sqs = spec.sqs
        flags += ["--queue-url", sqs.queue_url, "--region", sqs.region]
        if sqs.endpoint_url is not None:
            flags += ["--endpoint-url", sqs.endpoint_url]
        if "aws" in by_volume:
            flags += ["--credentials-dir", by_volume["aws"].path]
        flags += [
            "--wait-time-seconds",
            str(sqs.wait_time_seconds),
            "--max-messages",
            str(sqs.max_messages),
            "--visibility-timeout-seconds",
            str(sqs.visibility_timeout_seconds),
            "--max-receive-count",
            str(sqs.max_receive_count),
            "--port",
            str(OPS_PORT),
        ]
    elif spec.type is ListenerType.AZURE_SERVICE_BUS and spec.azure_service_bus is not None:
        asb = spec.azure_service_bus
        flags += ["--connection-string-file", by_volume["servicebus"].path]
        if asb.queue is not None:
            flags += ["--queue", asb.queue]
        else:
            flags += ["--topic", asb.topic or "", "--subscription", asb.subscription or ""]
        flags += ["--max-messages", str(asb.max_messages), "--port", str(OPS_PORT)]
    return flags


def direct_routing_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and read-only mounts of the namespace's routing table (every shard the
    publisher may write, each optional: a table that grows needs no new pod) and its
    published definitions."""
    volumes = [
        pods.projected_configmaps(
            "routes", NAMESPACE_ROUTING_CONFIGMAP, MAX_NAMESPACE_ROUTING_SHARDS
        ),
        projected_definitions(),
    ]
    mounts = [
        {"name": "routes", "mountPath": ROUTES_DIR, "readOnly": True},
        definitions_mount(),
    ]
    return volumes, mounts


def _direct_routing_env(spec: ListenerSpec) -> list[dict[str, str]]:
    if spec.routing is not ListenerRouting.DIRECT:
        return []
    return [
        {"name": "TFLOW_LISTENER_ROUTING", "value": ListenerRouting.DIRECT.value},
        {"name": "TFLOW_ROUTES_DIR", "value": ROUTES_DIR},
        {"name": "TFLOW_DEFINITIONS_DIR", "value": DEFINITIONS_DIR},
    ]


def container_port(spec: ListenerSpec) -> int:
    """The port the container serves on: the webhook's, else the ops port."""
    return spec.effective_webhook.port if spec.type is ListenerType.WEBHOOK else OPS_PORT


def listener_deployment(
    name: str,
    namespace: str,
    uid: str,
    spec: ListenerSpec,
    config: Config,
) -> dict[str, Any]:
    """The Deployment running the listener.

    With ``spec.scaling`` the replica count is left out: KEDA owns it (a server-side apply
    that set it would fight the autoscaler); a new Deployment starts at one replica and
    KEDA takes it to zero if the queue is empty.
    """
    mounts = secret_mounts(spec)
    port = container_port(spec)
    port_name = "http" if spec.type is ListenerType.WEBHOOK else "ops"
    labels = child_labels(name)
    container: dict[str, Any] = {
        "name": "listener",
        "image": spec.image or config.listener_image,
        "command": list(LISTENER_COMMAND),
        "args": [SOURCES[spec.type], *_source_flags(spec, mounts)],
        "env": [
            {"name": "TEMPORAL_ADDRESS", "value": config.worker_temporal_address},
            # Events go to the namespace's home Temporal namespace, whose root
            # orchestrator routes them.
            {"name": "TEMPORAL_NAMESPACE", "value": config.home_temporal_namespace(namespace)},
            *(
                [
                    {
                        "name": "TFLOW_TEMPORAL_NAMESPACES",
                        "value": config.temporal_namespaces.only(namespace).to_env(),
                    }
                ]
                if config.temporal_namespaces.only(namespace).enabled
                else []
            ),
            {"name": "TFLOW_LISTENER_TASK_QUEUE", "value": config.router_task_queue},
            # The tenant boundary: events are routed, and runs reached, within it.
            {"name": "TFLOW_LISTENER_KUBE_NAMESPACE", "value": namespace},
            *_direct_routing_env(spec),
            *(
                [{"name": "TFLOW_LISTENER_SHARE_WITH", "value": ",".join(spec.share_events_with)}]
                if spec.share_events_with
                else []
            ),
            *(
                [{"name": "TFLOW_LOG_FORMAT", "value": config.log_format}]
                if config.log_format
                else []
            ),
        ],
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port_name},
            "periodSeconds": pods.READINESS_PERIOD_SECONDS,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port_name},
            "periodSeconds": pods.LIVENESS_PERIOD_SECONDS,
        },
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
    }
    volumes = [m.volume_spec() for m in mounts]
    volume_mounts = [m.mount_spec() for m in mounts]
    if spec.routing is ListenerRouting.DIRECT:
        routing_volumes, routing_mounts = direct_routing_volumes()
        volumes += routing_volumes
        volume_mounts += routing_mounts
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    if config.temporal_client_secret:
        container["envFrom"] = config.temporal_client_env_from()
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        # A listener stops receiving on SIGTERM and finishes the hand-offs in flight.
        "terminationGracePeriodSeconds": 30,
    }
    pods.harden(pod_spec)
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(name)},
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(port),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": pod_spec,
        },
    }
    if spec.scaling is None:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": child_name(name),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": deployment_spec,
    }


def listener_service(name: str, namespace: str, uid: str, spec: ListenerSpec) -> dict[str, Any]:
    """The ClusterIP Service in front of a webhook listener."""
    port = spec.effective_webhook.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": child_name(name),
            "namespace": namespace,
            "labels": child_labels(name),
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def listener_children(
    name: str, namespace: str, uid: str, spec: ListenerSpec, config: Config
) -> list[dict[str, Any]]:
    """Every object the Listener should own, in apply order."""
    children = [listener_deployment(name, namespace, uid, spec, config)]
    owners = [owner_reference(name, uid)]
    if spec.type is ListenerType.WEBHOOK:
        children.append(listener_service(name, namespace, uid, spec))
    elif spec.scaling is not None:
        so_name = child_name(name)
        children.append(
            keda.trigger_authentication_for_listener(
                so_name, namespace, spec, owners, labels=child_labels(name)
            )
        )
        children.append(
            keda.scaled_object_for_listener(
                so_name,
                namespace,
                so_name,
                spec,
                owners,
                target_queue_length=spec.scaling.target_queue_length,
                activation_queue_length=spec.scaling.activation_queue_length,
                labels=child_labels(name),
            )
        )
    return children


def listener_endpoint(
    name: str, namespace: str, spec: ListenerSpec, cluster_domain: str = CLUSTER_DOMAIN
) -> str:
    """Where the listener receives from: the webhook's in-cluster URL, or the queue."""
    if spec.type is ListenerType.WEBHOOK:
        hook = spec.effective_webhook
        host = f"{child_name(name)}.{namespace}.svc.{cluster_domain}"
        return f"http://{host}:{hook.port}{hook.path}"
    if spec.type is ListenerType.SQS and spec.sqs is not None:
        return spec.sqs.queue_url
    asb = spec.azure_service_bus
    if asb is None:
        return ""
    if asb.queue is not None:
        return f"servicebus:queue/{asb.queue}"
    return f"servicebus:topic/{asb.topic}/subscriptions/{asb.subscription}"


def ready_condition(
    spec: ListenerSpec,
    deployment: Mapping[str, Any] | None,
    generation: int | None,
    trouble: pods.PodTrouble | None = None,
    routing_table: bool = True,
) -> Condition:
    """Ready from the Deployment: every requested replica ready, or scaled to zero; False
    with Kubernetes' reason when its pods cannot be created or started (``trouble``), and
    ``RoutingTableMissing`` while a listener routing directly waits for its namespace's
    routing table (``routing_table``: whether the operator has published it)."""
    if deployment is None:
        return make_condition(
            READY, False, "Pending", "the Deployment does not exist yet", generation
        )
    if trouble is not None:
        message = f"Deployment {deployment['metadata']['name']}: {trouble.message}"
        return make_condition(READY, False, trouble.reason, message, generation)
    desired = int(deployment.get("spec", {}).get("replicas", 1) or 0)
    ready = int(deployment.get("status", {}).get("readyReplicas", 0) or 0)
    if desired == 0:
        why = "KEDA scaled the listener to zero: the queue is empty" if spec.scaling else ""
        return make_condition(READY, True, "ScaledToZero", why or "spec.replicas is 0", generation)
    if ready >= desired:
        return make_condition(
            READY, True, "Available", f"{ready} of {desired} replicas ready", generation
        )
    if spec.routing == ListenerRouting.DIRECT and not routing_table:
        message = (
            f"{ready} of {desired} replicas ready: the routing table of this namespace "
            f"(ConfigMap {NAMESPACE_ROUTING_CONFIGMAP}) is not published yet, and a "
            "listener routing directly is not ready without it"
        )
        return make_condition(READY, False, REASON_ROUTING_TABLE_MISSING, message, generation)
    return make_condition(
        READY, False, "Progressing", f"{ready} of {desired} replicas ready", generation
    )
