"""What the operator's pods run with (the `restricted` profile, a writable /tmp, no token)
and how a Deployment's or its pods' status becomes the reason in an owner's Ready."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tflow_operator.config import Config
from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.model import definition_info
from tflow_operator.pods import (
    PodTrouble,
    deployment_trouble,
    pod_trouble,
    selector_string,
    short_of_replicas,
    workload_trouble,
)
from tflow_operator.workers import merge_settings, worker_deployment

CONFIG = Config(worker_image="registry.example/worker:1")
WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
    "do": [{"a": {"set": {"x": 1}}}],
}


def worker_pod(config: Config = CONFIG, workers: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "uid": "u-a",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"taskQueue": "q", "workers": workers or {}, "workflow": WORKFLOW},
    }
    members = [definition_info(body)]
    settings = merge_settings(members, config.worker_image)
    deployment = worker_deployment("ns", "q", members, settings, config)
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_worker_pods_pass_restricted_with_a_writable_tmp_and_no_token() -> None:
    pod = worker_pod(workers={"resources": {"limits": {"memory": "1Gi"}}})
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"] == {"limits": {"memory": "1Gi"}}  # the spec's, kept
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    # Rendering twice gives the same object: the operator compares digests of it.
    assert worker_pod() == worker_pod()


def test_a_chosen_worker_service_account_decides_about_its_token() -> None:
    pod = worker_pod(dataclasses.replace(CONFIG, worker_service_account="workers"))
    assert pod["serviceAccountName"] == "workers"
    assert "automountServiceAccountToken" not in pod


def condition(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_replica_failure_is_the_deployments_trouble() -> None:
    message = 'pods "w-5d9-" is forbidden: exceeded quota: none, requested: pods=1'
    deployment = {
        "status": {
            "conditions": [
                condition("Available", "False", "MinimumReplicasUnavailable", "x"),
                condition("ReplicaFailure", "True", "FailedCreate", message),
            ]
        }
    }
    assert deployment_trouble(deployment) == PodTrouble("FailedCreate", message)
    deployment["status"]["conditions"][1]["status"] = "False"
    assert deployment_trouble(deployment) is None
    stuck = {
        "status": {
            "conditions": [condition("Progressing", "False", "ProgressDeadlineExceeded", "slow")]
        }
    }
    assert deployment_trouble(stuck) == PodTrouble("ProgressDeadlineExceeded", "slow")


@pytest.mark.parametrize(
    ("spec", "status", "short"),
    [
        ({}, {}, False),  # not looked at by the controller yet
        ({}, {"observedGeneration": 1, "availableReplicas": 1}, False),  # default 1 replica
        ({"replicas": 0}, {"observedGeneration": 1}, False),  # scaled to zero
        ({"replicas": 2}, {"observedGeneration": 1, "availableReplicas": 1}, True),
        ({"replicas": 1}, {"observedGeneration": 1, "availableReplicas": 1,
                           "unavailableReplicas": 1}, True),  # a rollout's new pod
    ],
)  # fmt: skip
def test_short_of_replicas(spec: dict[str, Any], status: dict[str, Any], short: bool) -> None:
    assert short_of_replicas({"spec": spec, "status": status}) is short


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def waiting(container: str, reason: str, message: str = "", **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"name": container, "state": {"waiting": state}, **extra}


def test_pod_trouble_names_the_first_failing_container() -> None:
    starting = pod("w-a", containerStatuses=[waiting("worker", "ContainerCreating")])
    assert pod_trouble([starting]) is None
    pulling = pod(
        "w-c",
        containerStatuses=[waiting("worker", "ImagePullBackOff", 'Back-off pulling image "x"')],
    )
    crashing = pod(
        "w-b",
        containerStatuses=[
            waiting(
                "worker",
                "CrashLoopBackOff",
                "back-off 10s",
                lastState={"terminated": {"exitCode": 2, "reason": "Error"}},
            )
        ],
    )
    assert pod_trouble([pulling, starting, crashing]) == PodTrouble(
        "CrashLoopBackOff",
        "pod w-b, container worker: CrashLoopBackOff: back-off 10s; last exit code 2 (Error)",
    )
    assert pod_trouble([pulling]) == PodTrouble(
        "ImagePullBackOff",
        'pod w-c, container worker: ImagePullBackOff: Back-off pulling image "x"',
    )
    init = pod("w-d", initContainerStatuses=[waiting("setup", "CreateContainerConfigError")])
    assert pod_trouble([init]) == PodTrouble(
        "CreateContainerConfigError", "pod w-d, container setup: CreateContainerConfigError"
    )
    going = {**pulling, "metadata": {"name": "w-c", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert pod_trouble([going]) is None


def test_an_unschedulable_pod_is_trouble_when_no_container_says_more() -> None:
    stuck = pod(
        "w-a",
        conditions=[condition("PodScheduled", "False", "Unschedulable", "0/1 nodes are available")],
    )
    assert pod_trouble([stuck]) == PodTrouble("Unschedulable", "pod w-a: 0/1 nodes are available")
    # Pending without a scheduler's verdict is just pending.
    assert pod_trouble([pod("w-b", phase="Pending")]) is None


def test_selector_string_is_sorted() -> None:
    deployment = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}
    assert selector_string(deployment) == "a=1,b=2"


class PodLister(KubeClient):
    """Answers pod lists from memory (or with an HTTP error), and counts them."""

    def __init__(self, pods: list[dict[str, Any]], status: int = 0) -> None:
        self.pods, self.status, self.calls = pods, status, 0

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        self.calls += 1
        assert (kind, namespace, label_selector) == ("Pod", "ns", "app=w")
        if self.status:
            raise KubeError(self.status, "pods is forbidden")
        return self.pods


def short_deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "w"}}},
        "status": {"observedGeneration": 1, **status},
    }


async def test_workload_trouble_lists_pods_only_when_short() -> None:
    crashing = pod("w-a", containerStatuses=[waiting("worker", "CrashLoopBackOff")])
    kube = PodLister([crashing])
    healthy = short_deployment(availableReplicas=1)
    assert await workload_trouble(kube, healthy) is None
    assert kube.calls == 0
    found = await workload_trouble(kube, short_deployment())
    assert found == PodTrouble("CrashLoopBackOff", "pod w-a, container worker: CrashLoopBackOff")
    assert kube.calls == 1
    # A role without `list` on pods costs the detail, not the reconcile.
    assert await workload_trouble(PodLister([], status=403), short_deployment()) is None
    with pytest.raises(KubeError):
        await workload_trouble(PodLister([], status=500), short_deployment())


def test_a_woken_worker_pod_is_ready_within_seconds_of_its_worker() -> None:
    container = worker_pod()["containers"][0]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "health"},
        "periodSeconds": 2,
    }
    assert container["livenessProbe"]["periodSeconds"] == 20
