"""The chart, installed with `helm install` and the image built here, runs as real pods on
the node: the operator, the root orchestrator, the run API, the web UI and the sample
webhook Listener pass their real probes in a namespace that enforces the `restricted` Pod
Security Standard, with read-only root file systems; the run API and the web UI check
callers' tokens with the real apiserver from their pods, and `helm test` passes."""

from __future__ import annotations

import json
from typing import Any

import httpx
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
    assert {"operator", "root-orchestrator", "run-api", "ui"} <= components, components
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
    assert {"operator", "root-orchestrator", "run-api", "ui"} <= names, names


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


def reader_token(cluster: Cluster, namespace: str) -> str:
    """A token of a service account bound to the chart's run API reader role in
    ``namespace`` (made if missing: the tests may run again on a kept cluster)."""
    kubectl = cluster.cp.kubectl
    kubectl("create", "namespace", namespace, check=False)
    kubectl("create", "serviceaccount", "reader", "-n", namespace, check=False)
    kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        f"--clusterrole={RELEASE}-run-api-reader",
        f"--serviceaccount={namespace}:reader",
        check=False,
    )
    return kubectl("create", "token", "reader", "-n", namespace).stdout.strip()


def test_run_api_in_its_pod_authenticates_callers_with_the_apiserver(cluster: Cluster) -> None:
    """TokenReview and SubjectAccessReview from inside the pod, with the chart's RBAC."""
    ns = "e2e-run-api"
    token = reader_token(cluster, ns)
    base = cluster.service_url(SYSTEM_NAMESPACE, f"{RELEASE}-run-api")
    run = f"{base}/v1/namespaces/{ns}/runs/no-such-run"
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{base}/readyz").status_code == 200
        assert http.get(run).status_code == 401
        signed = {"Authorization": f"Bearer {token}"}
        assert http.get(run, headers=signed).status_code == 404
        elsewhere = f"{base}/v1/namespaces/default/runs/no-such-run"
        assert http.get(elsewhere, headers=signed).status_code == 403
        bogus = {"Authorization": "Bearer not-a-token"}
        assert http.get(run, headers=bogus).status_code == 401


def test_web_ui_in_its_pod_serves_the_page_and_the_definitions(cluster: Cluster) -> None:
    """The UI reviews callers' tokens and grants with the real apiserver from its pod."""
    ns = "e2e-ui"
    token = reader_token(cluster, ns)
    signed = {"Authorization": f"Bearer {token}"}
    base = cluster.service_url(SYSTEM_NAMESPACE, f"{RELEASE}-ui")
    with httpx.Client(timeout=30) as http:
        page = http.get(f"{base}/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert http.get(f"{base}/api/definitions").status_code == 401
        definitions = http.get(f"{base}/api/definitions", params={"namespace": ns}, headers=signed)
        assert definitions.status_code == 200, definitions.text
        elsewhere = http.get(
            f"{base}/api/definitions", params={"namespace": "default"}, headers=signed
        )
        assert elsewhere.status_code == 403, elsewhere.text
        # An action names a run the caller can read; an unknown one is 404, as for reads.
        action = http.post(f"{base}/api/run/cancel", params={"id": "x"}, headers=signed)
        assert action.status_code == 404, action.text
