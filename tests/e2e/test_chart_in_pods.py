"""The chart, installed with `helm install` and the image built here, runs as real pods on
the node: the operator, the root orchestrator and the sample webhook Listener pass their
real probes in a namespace that enforces the `restricted` Pod Security Standard, with
read-only root file systems, and `helm test` passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tflow_devstack.cluster import RELEASE, SYSTEM_NAMESPACE, Cluster
from tflow_devstack.node import NODE_NAME

pytestmark = pytest.mark.integration


def pods(cluster: Cluster, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    argv = ["get", "pods", "-n", namespace, "-o", "json"]
    if selector:
        argv += ["-l", selector]
    items: list[dict[str, Any]] = json.loads(cluster.cp.kubectl(*argv).stdout)["items"]
    return items


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True"


def test_chart_components_run_in_ready_pods_on_the_node(cluster: Cluster) -> None:
    # The chart's own Deployments (the sample Listener's comes after, from the operator).
    running = pods(cluster, SYSTEM_NAMESPACE, "app.kubernetes.io/managed-by=Helm")
    components = {
        p["metadata"]["labels"].get("app.kubernetes.io/component")
        or p["metadata"]["labels"].get("temporalflow.dev/component")
        for p in running
    }
    assert {"operator", "root-orchestrator"} <= components, components
    for pod in running:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == NODE_NAME, name
        assert pod["status"]["phase"] == "Running", (name, pod["status"])
        assert ready(pod), (name, pod["status"])
        assert pod["status"]["podIP"].startswith("10.244.0."), name
        for container, status in zip(
            pod["spec"]["containers"], pod["status"]["containerStatuses"], strict=True
        ):
            assert container["image"] in (cluster.image, cluster.samples_image), name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            # The runtime really started it from the imported image.
            assert status["imageID"], name
    # Containers the runtime runs, seen from the node itself.
    listed = cluster.node.crictl("ps", "-o", "json").stdout if cluster.node else "{}"
    names = {c["metadata"]["name"] for c in json.loads(listed)["containers"]}
    assert {"operator", "root-orchestrator"} <= names, names


def test_sample_webhook_listener_becomes_ready(cluster: Cluster) -> None:
    listener = f"{RELEASE}-webhook"
    cluster.cp.kubectl(
        "wait",
        "-n",
        SYSTEM_NAMESPACE,
        f"listener/{listener}",
        "--for=condition=Ready",
        "--timeout=180s",
    )
    webhook = [
        p
        for p in pods(cluster, SYSTEM_NAMESPACE)
        if p["metadata"]["labels"].get("temporalflow.dev/component") == "listener"
    ]
    assert webhook, "no listener pod"
    assert all(ready(p) for p in webhook)


def test_helm_test_passes(cluster: Cluster) -> None:
    result = cluster.helm("test", RELEASE, "--namespace", SYSTEM_NAMESPACE, "--timeout=3m")
    assert "Phase:          Succeeded" in result.stdout, result.stdout
