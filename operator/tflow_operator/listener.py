"""The Listener kind: kopf handlers and the reconcile they run.

A Listener becomes, in its own namespace, the objects :mod:`tflow_operator.listener_children`
builds: a Deployment running the listener, a Service for a webhook, KEDA objects for a
queue listener with ``spec.scaling``. When its pods cannot be created or started,
``Ready`` is False with Kubernetes' reason (``FailedCreate``, ``ImagePullBackOff``, ...)
and message.

Every child carries a controller owner reference, so deleting the Listener garbage
collects them. Reconciling is idempotent (server-side apply) and runs on create, update
and resume, in the shared resync loop (:mod:`tflow_operator.resync`) and whenever the listener's
Deployment changes (for ``status.readyReplicas``). A Secret the spec refers to that does
not exist stops the rollout: ``Ready`` is False with reason ``SecretNotFound`` naming it,
and the reconcile is retried until it appears. When ``spec.scaling`` is dropped, the
replica count from spec is applied once KEDA has let the ScaledObject go (until then it
may still scale the Deployment), retried while it holds on.

main.py imports this module to register the handlers; they use the operator's clients
from kopf's memo (the runtime main.py's startup handler puts there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import kopf
from pydantic import ValidationError

from tflow_operator import keda, metrics, pods
from tflow_operator.api.common import API_VERSION, GROUP, VERSION, Condition, ConditionStatus
from tflow_operator.api.listener import NAMES, ListenerRouting, ListenerSpec
from tflow_operator.conditions import make_condition, merge_conditions, status_changes
from tflow_operator.config import Config
from tflow_operator.kube import KubeClient, KubeError, SecretsNotReadable, secret_of
from tflow_operator.listener_children import (
    LISTENER_LABEL,
    READY,
    child_name,
    listener_children,
    listener_endpoint,
    ready_condition,
    secret_mounts,
)
from tflow_operator.naming import NAMESPACE_ROUTING_CONFIGMAP
from tflow_operator.workflowdefinition import backoff, runtime_of

PLURAL: Final = NAMES.plural
KIND: Final = NAMES.kind

log = logging.getLogger("tflow.operator.listener")


# --------------------------------------------------------------------------- reconcile


class SecretsMissingError(kopf.TemporaryError):
    """A referenced Secret (or key) is missing; retried until it appears."""


class KedaReleasingError(kopf.TemporaryError):
    """A pruned KEDA object is still held by its finalizer; retried until it is gone."""


# How long one reconcile waits for KEDA to let go of a ScaledObject it was asked to
# delete: until its finalizer has run, KEDA may still scale the Deployment (to zero),
# undoing the replica count the Listener's spec gives back.
KEDA_RELEASE_SECONDS: Final = 10.0
KEDA_RELEASE_POLL_SECONDS: Final = 0.25
KEDA_RELEASE_RETRY_SECONDS: Final = 5.0


@dataclass
class Outcome:
    status: dict[str, Any]
    missing: list[str]
    # KEDA objects deleted but not yet gone: the Deployment's replica count is applied
    # again once they are (the handler retries while this is not empty).
    releasing: list[str] = field(default_factory=list)


async def _missing_secrets(kube: KubeClient, namespace: str, spec: ListenerSpec) -> list[str]:
    """Human-readable names of the referenced Secrets or keys that do not exist; raises
    SecretsNotReadable where the namespace has not let the operator read Secrets."""
    missing: list[str] = []
    for mount in secret_mounts(spec):
        secret = await secret_of(kube, namespace, mount.secret)
        if secret is None:
            missing.append(f"Secret {namespace}/{mount.secret}")
        elif mount.key is not None and mount.key not in (
            (secret.get("data") or {}) | (secret.get("stringData") or {})
        ):
            missing.append(f"key {mount.key!r} of Secret {namespace}/{mount.secret}")
    return missing


def _controlled_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


async def _prune(
    kube: KubeClient, namespace: str, uid: str, keep: Sequence[Mapping[str, Any]], name: str
) -> list[str]:
    """Delete children this Listener no longer needs (type or scaling changed).

    Returns the KEDA objects still held by their finalizer: those deleted here are waited
    for (up to KEDA_RELEASE_SECONDS), those already terminating are not.
    """
    wanted = {(c["apiVersion"], c["kind"]) for c in keep}
    waiting: list[str] = []  # KEDA kinds deleted here
    releasing: list[str] = []
    for api_version, kind in (
        ("v1", "Service"),
        (keda.API_VERSION, "ScaledObject"),
        (keda.API_VERSION, "TriggerAuthentication"),
    ):
        if (api_version, kind) in wanted:
            continue
        try:
            current = await kube.get(api_version, kind, namespace, child_name(name))
        except KubeError as err:
            if err.status == 404:  # the kind itself is unknown: KEDA is not installed
                continue
            raise
        if not _controlled_by(current, uid):
            continue
        assert current is not None
        if current["metadata"].get("deletionTimestamp"):
            releasing.append(f"{kind} {namespace}/{child_name(name)}")
            continue
        log.info("deleting %s %s/%s: no longer needed", kind, namespace, child_name(name))
        await kube.delete(api_version, kind, namespace, child_name(name))
        if api_version == keda.API_VERSION:
            waiting.append(kind)
    deadline = time.monotonic() + KEDA_RELEASE_SECONDS
    while waiting:
        waiting = [
            kind
            for kind in waiting
            if await kube.get(keda.API_VERSION, kind, namespace, child_name(name)) is not None
        ]
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(KEDA_RELEASE_POLL_SECONDS)
    releasing += [f"{kind} {namespace}/{child_name(name)}" for kind in waiting]
    if releasing:
        log.warning("KEDA has not released %s yet: will apply again", ", ".join(releasing))
    return releasing


@metrics.reconciler("Listener")
async def reconcile_listener(kube: KubeClient, body: Mapping[str, Any], config: Config) -> Outcome:
    """Bring the Listener's children in line with its spec and write its status.

    Returns the status written and the missing Secrets (empty when all were found).
    """
    meta = body["metadata"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    generation = meta.get("generation")
    current_status = body.get("status") or {}

    async def write(condition: Condition, extra: Mapping[str, Any]) -> dict[str, Any]:
        desired = {
            **extra,
            "observedGeneration": generation,
            "conditions": merge_conditions(current_status.get("conditions"), [condition]),
        }
        changes = status_changes(current_status, desired)
        if changes:
            try:
                await kube.patch_status(
                    API_VERSION, KIND, namespace, name, changes, meta.get("resourceVersion")
                )
            except KubeError as err:
                if err.status != 409:
                    raise
                # The Listener changed since it was read: the handlers see the newer one.
        return desired

    try:
        spec = ListenerSpec.model_validate(body.get("spec") or {})
    except ValidationError as err:
        message = "; ".join(e["msg"] for e in err.errors())
        status = await write(make_condition(READY, False, "InvalidSpec", message, generation), {})
        return Outcome(status, [])

    endpoint = listener_endpoint(name, namespace, spec)
    unverified = ""
    try:
        missing = await _missing_secrets(kube, namespace, spec)
    except SecretsNotReadable as err:
        # The kubelet mounts them without the operator: roll out, and say what was skipped.
        missing, unverified = [], err.note
    if missing:
        message = f"{', '.join(missing)} not found; the listener is not rolled out until it exists"
        condition = make_condition(READY, False, "SecretNotFound", message, generation)
        return Outcome(await write(condition, {"endpoint": endpoint}), missing)

    children = listener_children(name, namespace, uid, spec, config)
    # Children no longer wanted go first: when spec.scaling was dropped, KEDA must stop
    # scaling the Deployment before the replica count it gets back from spec is applied.
    releasing = await _prune(kube, namespace, uid, children, name)
    deployment: dict[str, Any] | None = None
    for child in children:
        try:
            applied = await kube.apply(child)
        except KubeError as err:
            if child["apiVersion"] == keda.API_VERSION and err.status == 404:
                condition = make_condition(
                    READY,
                    False,
                    "KedaNotInstalled",
                    "spec.scaling needs KEDA (keda.sh/v1alpha1 ScaledObject) in the cluster",
                    generation,
                )
                await write(condition, {"endpoint": endpoint})
            raise
        if child["kind"] == "Deployment":
            deployment = applied

    ready_replicas = int(((deployment or {}).get("status") or {}).get("readyReplicas", 0) or 0)
    trouble = await pods.workload_trouble(kube, deployment) if deployment else None
    routing_table = True
    if spec.routing == ListenerRouting.DIRECT and not ready_replicas:
        # The publisher writes it (index shard last); until then the pods are not ready.
        table = await kube.get(
            "v1", "ConfigMap", namespace, NAMESPACE_ROUTING_CONFIGMAP, metadata_only=True
        )
        routing_table = table is not None
    condition = ready_condition(spec, deployment, generation, trouble, routing_table)
    if unverified:
        condition = make_condition(
            READY,
            condition.status == ConditionStatus.TRUE,
            condition.reason,
            f"{condition.message}; {unverified}",
            generation,
        )
    status = await write(condition, {"readyReplicas": ready_replicas, "endpoint": endpoint})
    return Outcome(status, [], releasing)


# --------------------------------------------------------------------------- kopf wiring


def retry_error(outcome: Outcome, config: Config, retry: int = 0) -> kopf.TemporaryError | None:
    """What the spec handler raises to run again (``retry``: how many times it has): while
    a Secret is missing, or while KEDA still holds an object it was asked to delete (the
    replica count is applied again), at KEDA_RELEASE_RETRY_SECONDS and then less often:
    a KEDA that was uninstalled leaves its finalizer behind for good."""
    if outcome.missing:
        return SecretsMissingError(
            f"waiting for {', '.join(outcome.missing)}", delay=min(30.0, config.resync_seconds)
        )
    if outcome.releasing:
        return KedaReleasingError(
            f"waiting for KEDA to release {', '.join(outcome.releasing)}",
            delay=max(KEDA_RELEASE_RETRY_SECONDS, backoff(retry)),
        )
    return None


async def _run(body: Mapping[str, Any], memo: Any, retry: int | None) -> None:
    """Reconcile; with ``retry`` (the handler's retry count), raise to run again while
    the reconcile could not finish."""
    runtime = runtime_of(memo)
    outcome = await reconcile_listener(runtime.kube, body, runtime.config)
    error = retry_error(outcome, runtime.config, retry) if retry is not None else None
    if error is not None:
        raise error


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def listener_changed(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    await _run(body, memo, retry=retry)


@kopf.index(GROUP, VERSION, PLURAL)
async def tflow_listener_sharing(body: kopf.Body, **_: Any) -> dict[str, tuple[str, ...]]:
    """Namespace -> the namespaces this Listener shares its events with: the sending side
    of the cross-namespace opt-in, which routes' Ready depends on."""
    shared = (body.get("spec") or {}).get("shareEventsWith") or ()
    return {str(body.metadata.namespace): tuple(sorted({str(n) for n in shared}))}


@kopf.index(GROUP, VERSION, PLURAL)
async def tflow_listener_routing(body: kopf.Body, **_: Any) -> dict[str, bool]:
    """Namespace -> True for a Listener that routes its events itself (spec.routing
    direct): its namespace gets its own part of the routing table. Any other Listener
    gives an empty mapping, not None, which kopf would take as "keep the old entry"."""
    if _routing(body) != ListenerRouting.DIRECT:
        return {}
    return {str(body.metadata.namespace): True}


def _routing(body: kopf.Body) -> str:
    return str((body.get("spec") or {}).get("routing") or ListenerRouting.ORCHESTRATOR)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def listener_sharing_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Recompile the routes' verdicts when what a Listener shares changed, and publish
    or drop its namespace's routing table when how it routes changed."""
    runtime = getattr(memo, "runtime", None)
    if runtime is None:
        return
    key = (str(body.metadata.namespace), str(body.metadata.name))
    if type == "DELETED":
        runtime.publisher.forget("lsn", key)
        return
    shared = tuple(sorted((body.get("spec") or {}).get("shareEventsWith") or ()))
    runtime.publisher.observe("lsn", key, (body.metadata.uid, shared, _routing(body)))


@kopf.on.event("apps", "v1", "deployments", labels={LISTENER_LABEL: kopf.PRESENT})
async def listener_deployment_changed(
    body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """A listener Deployment's status changed: refresh its Listener's status."""
    if type == "DELETED":
        return
    owner = next(
        (
            ref
            for ref in body.metadata.get("ownerReferences") or []
            if ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION
        ),
        None,
    )
    if owner is None:
        return
    kube = runtime_of(memo).kube
    listener = await kube.get(API_VERSION, KIND, body.metadata.namespace, owner["name"])
    if listener is None or listener["metadata"].get("uid") != owner.get("uid"):
        return
    if listener["metadata"].get("deletionTimestamp"):
        return
    await _run(listener, memo, retry=None)
