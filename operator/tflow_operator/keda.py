"""KEDA objects for the operator's Deployments, as plain dicts ready for server-side apply.

Autoscaling is KEDA's job (design decision 6). This module only builds the objects:

- a worker Deployment gets a ``ScaledObject`` with KEDA's ``temporal`` trigger, which
  polls ``DescribeTaskQueue`` (with ``reportStats``) for the task queue's approximate
  backlog and scales on backlog per replica; from 0 to 1 and back KEDA scales the
  Deployment itself, above 1 its HorizontalPodAutoscaler does;
- a queue listener's Deployment gets a ``ScaledObject`` with the ``aws-sqs-queue`` or
  ``azure-servicebus`` trigger, plus a ``TriggerAuthentication`` that points KEDA at the
  Listener's credentials Secret (KEDA reads the Secret itself: no credential is ever
  copied into a ScaledObject);
- a worker ScaledObject gets a ``TriggerAuthentication`` too when the Temporal it polls
  needs credentials: it maps the keys of the same client Secret the workers load
  (``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*_DATA``) to the temporal scaler's parameters.

Every builder is pure: same arguments, same dict, so a reconcile that re-applies them is
idempotent. Trigger metadata values are strings, as KEDA's CRD requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tflow_operator.api.listener import ListenerSpec, ListenerType

API_VERSION: Final = "keda.sh/v1alpha1"

# What the temporal trigger counts: a worker process polls both the workflow and the
# activity task queue of its task queue name, so a backlog of either needs a worker.
WORKER_QUEUE_TYPES: Final = ("workflow", "activity")

# Defaults. KEDA's own are 30 s polling and 300 s cooldown; workers poll a little more
# often because a flow run waits for its first workflow task while they are at zero.
WORKER_POLLING_INTERVAL: Final = 10
WORKER_COOLDOWN_PERIOD: Final = 300
LISTENER_POLLING_INTERVAL: Final = 15
LISTENER_COOLDOWN_PERIOD: Final = 300
LISTENER_TARGET_QUEUE_LENGTH: Final = 5
LISTENER_ACTIVATION_QUEUE_LENGTH: Final = 0

# The keys of an SQS Listener's credentials Secret (see SqsSpec.credentials_secret_ref),
# mapped to the auth parameters of KEDA's aws-sqs-queue scaler. A missing optional key
# (the session token) resolves to an empty value, which the scaler ignores.
SQS_SECRET_KEYS: Final = (
    ("awsAccessKeyID", "AWS_ACCESS_KEY_ID"),
    ("awsSecretAccessKey", "AWS_SECRET_ACCESS_KEY"),
    ("awsSessionToken", "AWS_SESSION_TOKEN"),
)

# The keys of the Temporal client Secret (Temporal's client environment variables, which
# the workers load with envFrom) mapped to the auth parameters of KEDA's temporal scaler.
# Only the _DATA forms: KEDA reads the Secret's values, it has no file to point a _PATH
# at. A key the Secret lacks resolves to an empty value, which the scaler treats as
# unset, so one mapping serves an API key, mutual TLS, or both.
TEMPORAL_SECRET_KEYS: Final = (
    ("apiKey", "TEMPORAL_API_KEY"),
    ("cert", "TEMPORAL_TLS_CLIENT_CERT_DATA"),
    ("key", "TEMPORAL_TLS_CLIENT_KEY_DATA"),
    ("ca", "TEMPORAL_TLS_SERVER_CA_CERT_DATA"),
)


@dataclass(frozen=True)
class Timing:
    """How often KEDA polls the trigger and how long it waits before scaling to zero.

    ``polling_interval``: seconds between two polls of the trigger (also how fast a
    Deployment at zero wakes up). ``cooldown_period``: seconds the trigger must have been
    inactive (backlog at or below the activation value) before 1 -> 0.
    """

    polling_interval: int
    cooldown_period: int

    def __post_init__(self) -> None:
        if self.polling_interval < 1:
            raise ValueError("polling_interval must be at least 1 second")
        if self.cooldown_period < 0:
            raise ValueError("cooldown_period must not be negative")


WORKER_TIMING: Final = Timing(WORKER_POLLING_INTERVAL, WORKER_COOLDOWN_PERIOD)
LISTENER_TIMING: Final = Timing(LISTENER_POLLING_INTERVAL, LISTENER_COOLDOWN_PERIOD)


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller owner reference: the child is garbage-collected with its owner."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def trigger_authentication_name(scaled_object_name: str) -> str:
    """The TriggerAuthentication that goes with a ScaledObject of the given name."""
    return scaled_object_name


def _metadata(
    name: str,
    namespace: str,
    owner_references: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(sorted(labels.items()))
    if owner_references:
        meta["ownerReferences"] = [dict(ref) for ref in owner_references]
    return meta


def _check_replicas(min_replicas: int, max_replicas: int) -> None:
    if min_replicas < 0:
        raise ValueError("min_replicas must not be negative")
    if max_replicas < 1:
        raise ValueError("max_replicas must be at least 1")
    if min_replicas > max_replicas:
        raise ValueError("min_replicas must not exceed max_replicas")


def _scaled_object(
    *,
    name: str,
    namespace: str,
    deployment: str,
    min_replicas: int,
    max_replicas: int,
    timing: Timing,
    trigger: dict[str, Any],
    owner_references: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    _check_replicas(min_replicas, max_replicas)
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": _metadata(name, namespace, owner_references, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "pollingInterval": timing.polling_interval,
            "cooldownPeriod": timing.cooldown_period,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "triggers": [trigger],
        },
    }


def scaled_object_for_workers(
    name: str,
    namespace: str,
    deployment: str,
    temporal_address: str,
    temporal_namespace: str,
    task_queue: str,
    min_replicas: int,
    max_replicas: int,
    target_backlog: int,
    activation_backlog: int,
    owner_references: Sequence[Mapping[str, Any]],
    *,
    timing: Timing = WORKER_TIMING,
    queue_types: Sequence[str] = WORKER_QUEUE_TYPES,
    authentication_ref: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ScaledObject scaling a worker Deployment on its Temporal task queue's backlog.

    ``target_backlog`` is the backlog per replica KEDA aims for (``targetQueueSize``);
    the Deployment leaves zero replicas once the backlog exceeds ``activation_backlog``
    (``activationTargetQueueSize``) and returns to ``min_replicas`` after the backlog
    stayed at or below it for the cooldown period. ``authentication_ref`` names a
    TriggerAuthentication for a Temporal that needs an API key or mTLS (as
    ``trigger_authentication_for_workers`` builds it).
    """
    if target_backlog < 1:
        raise ValueError("target_backlog must be at least 1")
    if activation_backlog < 0:
        raise ValueError("activation_backlog must not be negative")
    unknown = sorted(set(queue_types) - {"workflow", "activity", "nexus"})
    if unknown or not queue_types:
        raise ValueError(f"queue_types must be workflow, activity or nexus, not {unknown}")
    trigger: dict[str, Any] = {
        "type": "temporal",
        "metadata": {
            "endpoint": temporal_address,
            "namespace": temporal_namespace,
            "taskQueue": task_queue,
            "queueTypes": ",".join(queue_types),
            "targetQueueSize": str(target_backlog),
            "activationTargetQueueSize": str(activation_backlog),
        },
    }
    if authentication_ref is not None:
        trigger["authenticationRef"] = {"name": authentication_ref}
    return _scaled_object(
        name=name,
        namespace=namespace,
        deployment=deployment,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        timing=timing,
        trigger=trigger,
        owner_references=owner_references,
        labels=labels,
    )


def trigger_authentication_for_workers(
    name: str,
    namespace: str,
    client_secret: str,
    owner_references: Sequence[Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The TriggerAuthentication of a worker ScaledObject: the temporal scaler's ``apiKey``,
    ``cert``, ``key`` and ``ca`` from the Temporal client Secret ``client_secret`` of the
    ScaledObject's namespace (see ``TEMPORAL_SECRET_KEYS``). KEDA reads the Secret when it
    polls; a Secret or key that is not there leaves the parameter empty, so a namespace
    without the Secret is polled in plain text, as its workers connect."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": _metadata(name, namespace, owner_references, labels),
        "spec": {
            "secretTargetRef": [
                {"parameter": parameter, "name": client_secret, "key": key}
                for parameter, key in TEMPORAL_SECRET_KEYS
            ]
        },
    }


def _listener_trigger(
    spec: ListenerSpec, auth_name: str, target: int, activation: int
) -> dict[str, Any]:
    if spec.type is ListenerType.SQS and spec.sqs is not None:
        sqs = spec.sqs
        metadata = {
            "queueURL": sqs.queue_url,
            "awsRegion": sqs.region,
            "queueLength": str(target),
            "activationQueueLength": str(activation),
        }
        if sqs.endpoint_url is not None:
            metadata["awsEndpoint"] = sqs.endpoint_url
        return {
            "type": "aws-sqs-queue",
            "metadata": metadata,
            "authenticationRef": {"name": auth_name},
        }
    if spec.type is ListenerType.AZURE_SERVICE_BUS and spec.azure_service_bus is not None:
        asb = spec.azure_service_bus
        metadata = {
            "messageCount": str(target),
            "activationMessageCount": str(activation),
        }
        if asb.queue is not None:
            metadata["queueName"] = asb.queue
        else:
            metadata["topicName"] = asb.topic or ""
            metadata["subscriptionName"] = asb.subscription or ""
        return {
            "type": "azure-servicebus",
            "metadata": metadata,
            "authenticationRef": {"name": auth_name},
        }
    raise ValueError(f"a {spec.type.value} listener is not scaled by KEDA")


def scaled_object_for_listener(
    name: str,
    namespace: str,
    deployment: str,
    spec: ListenerSpec,
    owner_references: Sequence[Mapping[str, Any]],
    *,
    target_queue_length: int = LISTENER_TARGET_QUEUE_LENGTH,
    activation_queue_length: int = LISTENER_ACTIVATION_QUEUE_LENGTH,
    timing: Timing = LISTENER_TIMING,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ScaledObject scaling a queue listener's Deployment on the queue's length.

    SQS: ``aws-sqs-queue`` on visible plus in-flight messages (``queueLength`` per
    replica). Service Bus: ``azure-servicebus`` on the queue's or subscription's active
    messages (``messageCount`` per replica). Replicas come from ``spec.scaling`` (which
    must be set); credentials from the TriggerAuthentication that
    ``trigger_authentication_for_listener`` builds under the same name.
    """
    if spec.scaling is None:
        raise ValueError("the Listener has no spec.scaling")
    if target_queue_length < 1:
        raise ValueError("target_queue_length must be at least 1")
    if activation_queue_length < 0:
        raise ValueError("activation_queue_length must not be negative")
    trigger = _listener_trigger(
        spec, trigger_authentication_name(name), target_queue_length, activation_queue_length
    )
    return _scaled_object(
        name=name,
        namespace=namespace,
        deployment=deployment,
        min_replicas=spec.scaling.min_replicas,
        max_replicas=spec.scaling.max_replicas,
        timing=timing,
        trigger=trigger,
        owner_references=owner_references,
        labels=labels,
    )


def trigger_authentication_for_listener(
    name: str,
    namespace: str,
    spec: ListenerSpec,
    owner_references: Sequence[Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The TriggerAuthentication a queue listener's ScaledObject refers to.

    It only names Secret keys (``secretTargetRef``); KEDA reads them when it polls. An SQS
    listener without a credentials Secret uses the AWS identity of the listener's pods
    (``podIdentity`` aws, owner ``workload``), as the listener itself does.
    """
    spec_body: dict[str, Any]
    if spec.type is ListenerType.SQS and spec.sqs is not None:
        ref = spec.sqs.credentials_secret_ref
        if ref is None:
            spec_body = {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
        else:
            spec_body = {
                "secretTargetRef": [
                    {"parameter": parameter, "name": ref.name, "key": key}
                    for parameter, key in SQS_SECRET_KEYS
                ]
            }
    elif spec.type is ListenerType.AZURE_SERVICE_BUS and spec.azure_service_bus is not None:
        cs = spec.azure_service_bus.connection_string_secret_ref
        spec_body = {
            "secretTargetRef": [{"parameter": "connection", "name": cs.name, "key": cs.key}]
        }
    else:
        raise ValueError(f"a {spec.type.value} listener is not scaled by KEDA")
    return {
        "apiVersion": API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": _metadata(
            trigger_authentication_name(name), namespace, owner_references, labels
        ),
        "spec": spec_body,
    }
