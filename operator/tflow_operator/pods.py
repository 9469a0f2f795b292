"""What every pod the operator makes runs with, and how a Deployment that cannot run its
pods is put into words for its owner's status.

**Security.** Worker and listener pods pass the ``restricted`` Pod Security Standard, so
they are admitted in a namespace that enforces it: non-root as the image's own user
(65532, matching the Dockerfile's ``USER``), the runtime's default seccomp profile, no
privilege escalation, every capability dropped. The root file system is read-only; the
image keeps ``HOME`` and its working directory in ``/tmp``, so ``/tmp`` is a small
emptyDir. Neither workers nor listeners call the Kubernetes API, so no service-account
token is mounted into them.

**Trouble.** A Deployment whose ReplicaSet cannot create pods (a Pod Security rejection, a
ResourceQuota) says so in its ``ReplicaFailure`` condition; a pod that was created but
cannot start says so only in its own container statuses (``ErrImagePull``,
``CrashLoopBackOff``, ...). :func:`workload_trouble` reads the first from the Deployment
and, only while the Deployment is short of available replicas, lists its pods for the
second, so a healthy Deployment costs no extra request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.naming import shard_name

log = logging.getLogger("tflow.operator.pods")

RUN_AS: Final = 65532
TMP_DIR: Final = "/tmp"
TMP_VOLUME: Final = "tmp"
# The processes write little there (Python's and the SDK's scratch files); the limit
# keeps a runaway writer from filling the node's disk.
TMP_SIZE_LIMIT: Final = "64Mi"
# A pod KEDA wakes from zero is Ready only at the first readiness probe after its process
# is up; with a 10 s period that came up to 10 s after the worker had taken work
# (docs/benchmarks.md). The probe is a local HTTP GET, so probing often costs little.
READINESS_PERIOD_SECONDS: Final = 2
LIVENESS_PERIOD_SECONDS: Final = 20

# Container waiting reasons that mean the container will not start without a change
# (a new image, a fixed config, a working process); "ContainerCreating" and
# "PodInitializing" are on the way up and are not trouble.
FAILING_WAITING_REASONS: Final = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def pod_security_context() -> dict[str, Any]:
    """The pod-level part of the ``restricted`` profile. ``fsGroup`` makes mounted
    Secrets readable by the group without making them world-readable."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": TMP_DIR}


def projected_configmaps(volume: str, base: str, count: int) -> dict[str, Any]:
    """A volume projecting the shards ``base``, ``base-1``, ... of published data, each
    optional: data that grows or shrinks within ``count`` shards needs no new pod."""
    return {
        "name": volume,
        "projected": {
            "sources": [
                {"configMap": {"name": shard_name(base, index), "optional": True}}
                for index in range(count)
            ]
        },
    }


def harden(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """``pod_spec`` (built without any of these) with the security settings above, the
    ``/tmp`` emptyDir mounted into every container, and no service-account token."""
    for container in pod_spec["containers"]:
        container["securityContext"] = container_security_context()
        container["volumeMounts"] = [*container.get("volumeMounts", []), tmp_mount()]
    pod_spec["volumes"] = [*pod_spec.get("volumes", []), tmp_volume()]
    pod_spec["securityContext"] = pod_security_context()
    pod_spec["automountServiceAccountToken"] = False
    return pod_spec


# --------------------------------------------------------------------------- trouble


@dataclass(frozen=True)
class PodTrouble:
    """Why a Deployment's pods cannot be created or started, in Kubernetes' own words."""

    reason: str
    message: str


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == type_:
            return item
    return None


def deployment_trouble(deployment: Mapping[str, Any]) -> PodTrouble | None:
    """The Deployment's ``ReplicaFailure`` (its ReplicaSet could not create a pod), or a
    rollout past its progress deadline."""
    failure = _condition(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return PodTrouble(
            str(failure.get("reason") or "ReplicaFailure"), str(failure.get("message") or "")
        )
    progressing = _condition(deployment, "Progressing")
    if (
        progressing is not None
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        return PodTrouble("ProgressDeadlineExceeded", str(progressing.get("message") or ""))
    return None


def short_of_replicas(deployment: Mapping[str, Any]) -> bool:
    """Whether some pod the Deployment wants is not available (only then can a pod's
    own status hold the reason)."""
    status = deployment.get("status") or {}
    if not status.get("observedGeneration"):
        return False  # the controller has not looked at it yet: nothing to read
    if int(status.get("unavailableReplicas") or 0) > 0:
        return True
    wanted = (deployment.get("spec") or {}).get("replicas")
    wanted = 1 if wanted is None else int(wanted)
    return int(status.get("availableReplicas") or 0) < wanted


def _container_trouble(pod_name: str, status: Mapping[str, Any]) -> PodTrouble | None:
    waiting = (status.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if reason not in FAILING_WAITING_REASONS:
        return None
    message = f"pod {pod_name}, container {status.get('name')}: {reason}"
    if waiting.get("message"):
        message += f": {waiting['message']}"
    terminated = (status.get("lastState") or {}).get("terminated") or {}
    if "exitCode" in terminated:
        last = f"last exit code {terminated['exitCode']}"
        if terminated.get("reason"):
            last += f" ({terminated['reason']})"
        message += f"; {last}"
    return PodTrouble(str(reason), message)


def pod_trouble(pods: Iterable[Mapping[str, Any]]) -> PodTrouble | None:
    """The first failing container (pods by name, init containers first), else an
    unschedulable pod; None when every pod is running or on its way."""
    ordered = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name")))
    for pod in ordered:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for container in status.get(key) or []:
                found = _container_trouble(str(meta.get("name")), container)
                if found is not None:
                    return found
    for pod in ordered:
        scheduled = _condition(pod, "PodScheduled")
        if (
            scheduled is not None
            and scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
        ):
            name = (pod.get("metadata") or {}).get("name")
            return PodTrouble("Unschedulable", f"pod {name}: {scheduled.get('message') or ''}")
    return None


def selector_string(deployment: Mapping[str, Any]) -> str:
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def workload_trouble(kube: KubeClient, deployment: Mapping[str, Any]) -> PodTrouble | None:
    """Why the Deployment cannot run its pods, if it cannot (see the module docstring)."""
    found = deployment_trouble(deployment)
    if found is not None or not short_of_replicas(deployment):
        return found
    selector = selector_string(deployment)
    if not selector:
        return None
    namespace = str((deployment.get("metadata") or {}).get("namespace"))
    try:
        listed = await kube.list("v1", "Pod", namespace, label_selector=selector)
    except KubeError as err:
        if err.status != 403:
            raise
        # A role made before the operator read pods: the status says less, but the
        # workers are still reconciled.
        log.warning("cannot list pods in %s (%s): grant `list` on pods", namespace, err)
        return None
    return pod_trouble(listed)
