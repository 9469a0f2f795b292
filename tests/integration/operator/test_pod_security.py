"""The pods the operator makes, against the real apiserver's admission: in a namespace
that enforces the `restricted` Pod Security Standard the worker and listener
ReplicaSets get their Pods created, each with a read-only root and /tmp mounted and no
service-account token; and when a Deployment cannot create its pods (a ResourceQuota
that allows none), the owner's Ready says FailedCreate with Kubernetes' message, and
recovers once the pods can be made."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml
from operator_harness import RESYNC_SECONDS, OperatorProcess, apply, condition, get, kubectl_json
from polling import eventually

from tflow_devstack.controlplane import ControlPlane

pytestmark = [pytest.mark.integration]

WITHIN = 3 * RESYNC_SECONDS + 30
WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "pss", "version": "1.0.0"},
    "do": [{"noop": {"set": {"ok": True}}}],
}


def enforce_restricted(kube: ControlPlane, namespace: str) -> None:
    kube.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "--overwrite",
    )


def definition(name: str, namespace: str, queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "taskQueue": queue,
            # One worker at all times: when the session's KEDA operator runs (the KEDA
            # tests start it on this apiserver) it would otherwise scale an idle queue to 0.
            "workers": {
                "minReplicas": 1,
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
            },
            "workflow": WORKFLOW,
        },
    }


def webhook(
    name: str, namespace: str, hmac_secret: str | None = None, routing: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "webhook", "webhook": {"path": "/in"}}
    if routing:
        spec["routing"] = routing
    if hmac_secret:
        spec["webhook"]["auth"] = {"hmacSecretRef": {"name": hmac_secret, "key": "hmac"}}
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def pods_of(kube: ControlPlane, namespace: str, deployment: dict[str, Any]) -> list[Any]:
    labels = deployment["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    found = kubectl_json(kube, "get", "pods", "-n", namespace, "-l", selector)
    return list((found or {}).get("items") or [])


def admitted_pods(kube: ControlPlane, namespace: str, name: str) -> list[Any]:
    """The Pods of Deployment ``name``, once it and they exist (a Pod exists only if the
    ReplicaSet's create passed admission)."""
    deployment = eventually(lambda: get(kube, "deployment", name, namespace), WITHIN, what=name)
    return eventually(lambda: pods_of(kube, namespace, deployment), WITHIN, what=f"{name} pods")


def ready_with_reason(
    kube: ControlPlane, kind: str, name: str, namespace: str, reason: str
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        ready = condition(get(kube, kind, name, namespace), "Ready")
        return ready if ready.get("reason") == reason else None

    return eventually(check, WITHIN, what=f"{kind} {name} Ready {reason}")


def assert_hardened(pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    name = pod["metadata"]["name"]
    assert spec.get("automountServiceAccountToken") is False, name
    volumes = {v["name"]: v for v in spec["volumes"]}
    # The ServiceAccount admission adds this projected token volume unless told not to.
    assert not [v for v in volumes if v.startswith("kube-api-access")], name
    for container in spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, name
        assert not tmp[0].get("readOnly"), name
        assert "emptyDir" in volumes[tmp[0]["name"]], name


def test_a_noncompliant_pod_is_refused_in_the_namespace(kube: ControlPlane, namespace: str) -> None:
    """The namespace really enforces `restricted`: what the next test sees admitted is
    admitted because it complies."""
    enforce_restricted(kube, namespace)
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
    }
    result = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(bare), check=False
    )
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr


def test_worker_and_listener_pods_are_admitted_under_restricted(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    enforce_restricted(kube, namespace)
    queue = f"pss-{uuid.uuid4().hex[:6]}"
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hook", "namespace": namespace},
            "stringData": {"hmac": "shh"},
        },
        definition("pss", namespace, queue),
        webhook("hook", namespace, hmac_secret="hook"),
        # Its namespace's routing table and definitions mounted as well.
        webhook("direct", namespace, routing="direct"),
    )
    for name in (f"tflow-worker-{queue}", "tflow-listener-hook", "tflow-listener-direct"):
        for pod in admitted_pods(kube, namespace, name):
            assert_hardened(pod)
        current = get(kube, "deployment", name, namespace)
        assert condition(current, "ReplicaFailure").get("status") != "True", current


def test_a_deployment_that_cannot_create_pods_shows_in_ready(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": namespace},
        "spec": {"hard": {"pods": "0"}},
    }
    apply(kube, quota)
    # The test control plane runs no resourcequota controller, so the status it would
    # write (what the quota admission compares against) is written here.
    kube.kubectl(
        "patch",
        "resourcequota",
        "no-pods",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}}),
    )
    queue = f"quota-{uuid.uuid4().hex[:6]}"
    apply(kube, definition("blocked", namespace, queue), webhook("blocked", namespace))

    wfd_ready = ready_with_reason(kube, "wfd", "blocked", namespace, "FailedCreate")
    assert wfd_ready["status"] == "False"
    assert wfd_ready["message"].startswith(f"worker Deployment tflow-worker-{queue}: ")
    assert "exceeded quota: no-pods" in wfd_ready["message"]
    lsn_ready = ready_with_reason(kube, "listener", "blocked", namespace, "FailedCreate")
    assert lsn_ready["status"] == "False"
    assert lsn_ready["message"].startswith("Deployment tflow-listener-blocked: ")
    assert "exceeded quota: no-pods" in lsn_ready["message"]

    kube.kubectl("delete", "resourcequota", "no-pods", "-n", namespace)
    # The ReplicaSet controller retries with back-off; once the pods are made, the
    # definition is Ready again and the listener waits for its (never started) pods.
    eventually(
        lambda: condition(get(kube, "wfd", "blocked", namespace), "Ready").get("status") == "True",
        120,
        what="wfd Ready again",
    )
    eventually(
        lambda: (
            condition(get(kube, "listener", "blocked", namespace), "Ready").get("reason")
            == "Progressing"
        ),
        120,
        what="listener past FailedCreate",
    )


def test_a_pod_that_cannot_start_shows_in_ready(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"pull-{uuid.uuid4().hex[:6]}"
    apply(kube, definition("pull", namespace, queue), webhook("pull", namespace))
    eventually(
        lambda: condition(get(kube, "wfd", "pull", namespace), "Ready").get("status") == "True",
        WITHIN,
    )
    for name in (f"tflow-worker-{queue}", "tflow-listener-pull"):
        pod = admitted_pods(kube, namespace, name)[0]
        container = pod["spec"]["containers"][0]["name"]
        # No kubelet runs here: this is the status a kubelet writes for an image it
        # cannot pull.
        status = {
            "containerStatuses": [
                {
                    "name": container,
                    "image": pod["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "registry.example/x"',
                        }
                    },
                }
            ]
        }
        kube.kubectl(
            "patch",
            "pod",
            pod["metadata"]["name"],
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    for kind, name, prefix, container in (
        ("wfd", "pull", f"worker Deployment tflow-worker-{queue}", "worker"),
        ("listener", "pull", "Deployment tflow-listener-pull", "listener"),
    ):
        ready = ready_with_reason(kube, kind, name, namespace, "ImagePullBackOff")
        assert ready["status"] == "False"
        assert ready["message"].startswith(f"{prefix}: pod {prefix.split()[-1]}-")
        assert ready["message"].endswith(
            f", container {container}: ImagePullBackOff: "
            'Back-off pulling image "registry.example/x"'
        )
