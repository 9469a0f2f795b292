"""The operator logging in through a kubeconfig whose user is an exec plugin (as EKS, GKE
and AKS kubeconfigs are): no credential in the file, a program that prints one. Both kopf
and the operator's own client must run it, and run it again when its credential expires."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import yaml
from operator_harness import (
    OperatorProcess,
    apply,
    condition,
    get,
    kubectl_json,
    start_operator,
)
from polling import eventually

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer

pytestmark = [pytest.mark.integration]

# The client asks for a new credential 5 minutes before the old one expires: this one is
# due for renewal 4 seconds after it was issued, while the test runs.
RENEW_AFTER = 4.0
LIFETIME = 300 + RENEW_AFTER


@pytest.fixture(scope="module")
def exec_operator(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        tmp_path_factory.mktemp("exec-operator"),
        temporal.address,
        temporal.namespace,
        exec_lifetime=LIFETIME,
    )
    try:
        yield process
    finally:
        process.stop()


def plugin_calls(operator: OperatorProcess) -> int:
    calls = operator.workdir / "credential-plugin.calls"
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_operator_with_an_exec_credential_plugin_reconciles(
    exec_operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    user = yaml.safe_load((exec_operator.workdir / "operator.kubeconfig").read_text())["users"]
    assert set(user[0]["user"]) == {"exec"}
    # kopf's login and the operator's client each ran it to get this far (healthy and
    # publishing the routing table).
    assert plugin_calls(exec_operator) >= 2

    queue = f"exec-{uuid.uuid4().hex[:6]}"
    apply(
        kube,
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "WorkflowDefinition",
            "metadata": {"name": "greet", "namespace": namespace},
            "spec": {
                "taskQueue": queue,
                "workflow": {
                    "document": {"dsl": "1.0.0", "namespace": "t", "name": "g", "version": "1.0.0"},
                    "do": [{"hello": {"set": {"greeting": "hi"}}}],
                },
            },
        },
    )

    def ready() -> bool:
        wfd = get(kube, "workflowdefinition", "greet", namespace)
        return condition(wfd, "Ready").get("status") == "True"

    eventually(ready, timeout=60, what="the definition Ready")
    deployment = kubectl_json(
        kube, "get", "deployment", f"tflow-worker-{queue}", "-n", namespace,
        "--show-managed-fields",
    )  # fmt: skip
    managers = {f["manager"] for f in deployment["metadata"]["managedFields"]}
    assert "temporal-flow-operator" in managers

    # Its log is kopf's JSON lines (not a terminal): the handler's lines name the object.
    records = [
        json.loads(line) for line in exec_operator.log_text().splitlines() if line.startswith("{")
    ]
    about = [r for r in records if (r.get("object") or {}).get("name") == "greet"]
    assert any(r["object"].get("namespace") == namespace for r in about), records[-5:]

    # The token is due for renewal every few seconds: the client asks the plugin again
    # rather than sending a credential about to expire.
    before = plugin_calls(exec_operator)
    eventually(
        lambda: plugin_calls(exec_operator) > before,
        timeout=4 * RENEW_AFTER + 10,
        what="the plugin called again after its credential expired",
    )
    assert exec_operator.alive()
