"""WorkflowDefinitions reconciled by the operator (running under its RBAC role): the
shared worker Deployment and its ScaledObject, the published definitions, status and
printer columns, validation failures with Events, and garbage collection of the workers
with the last definition on a task queue."""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

import pytest
import yaml
from operator_harness import (
    RESYNC_SECONDS,
    OperatorProcess,
    apply,
    condition,
    get,
    kubectl_json,
)
from polling import eventually

from tflow_devstack.controlplane import ControlPlane

pytestmark = [pytest.mark.integration]

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "greet", "version": "1.2.0"},
    "do": [{"hello": {"set": {"greeting": '${ "hello " + .name }'}}}],
}


def definition(
    name: str, task_queue: str, workers: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "taskQueue": task_queue,
        "workflow": copy.deepcopy(WORKFLOW),
        **spec,
    }
    if workers is not None:
        body["workers"] = workers
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name},
        "spec": body,
    }


def applied(kube: ControlPlane, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    apply(kube, *objects)


def ready(kube: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(kube, "workflowdefinition", name, namespace)
    if condition(obj, "Ready").get("status") == "True":
        return obj
    return None


def printed_row(kube: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    """``kubectl get wfd NAME`` as {column: value} (columns cut at the header's offsets)."""
    header, line = kube.kubectl("get", "wfd", name, "-n", namespace).stdout.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    # Column titles may hold one space ("TASK QUEUE"): a start after a single space
    # continues the title.
    starts = [i for i in starts if i == 0 or header[i - 2] == " "]
    bounds = [*starts, max(len(header), len(line)) + 1]
    return {header[a:b].strip(): line[a:b].strip() for a, b in itertools.pairwise(bounds)}


def test_definition_gets_workers_published_and_status(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"orders-{uuid.uuid4().hex[:6]}"
    workers = {
        "minReplicas": 1,
        "maxReplicas": 4,
        "targetBacklog": 7,
        "activationBacklog": 2,
        "image": "registry.example/acme/worker:1.0",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
    }
    applied(kube, namespace, definition("greet", queue, workers))
    wfd = eventually(lambda: ready(kube, namespace, "greet"))

    status = wfd["status"]
    assert status["observedGeneration"] == wfd["metadata"]["generation"]
    assert status["taskQueue"] == queue
    assert status["version"].startswith("1.2.0+")
    assert condition(wfd, "Valid")["status"] == "True"
    scheduled = condition(wfd, "Scheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "NoSchedule")
    for item in status["conditions"]:
        assert item["observedGeneration"] == wfd["metadata"]["generation"]
        assert item["reason"]
        assert "lastTransitionTime" in item

    # Without a schedule nothing needs the operator at deletion: no finalizer; kopf's
    # bookkeeping is in the status (one write), not in annotations.
    assert "finalizers" not in wfd["metadata"]
    assert not any(
        k.startswith("temporalflow.dev/") for k in wfd["metadata"].get("annotations", {})
    )
    assert wfd["status"]["kopf"]["lastHandled"].startswith("sha256:")

    deployment = get(kube, "deployment", f"tflow-worker-{queue}", namespace)
    assert deployment is not None
    owners = deployment["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [
        ("WorkflowDefinition", "greet", wfd["metadata"]["uid"])
    ]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/acme/worker:1.0"
    assert container["command"] == ["tflow-worker", "--task-queue", queue]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TEMPORAL_ADDRESS"] == operator.env["TEMPORAL_ADDRESS"]
    assert env["TEMPORAL_NAMESPACE"] == operator.env["TEMPORAL_NAMESPACE"]
    assert env["TFLOW_TASK_QUEUE"] == queue
    assert env["TFLOW_DEFINITIONS_DIR"] == "/etc/temporal-flow/definitions"
    assert env["LOG_LEVEL"] == "debug"
    mount, tmp_mount = container["volumeMounts"]
    assert mount["mountPath"] == "/etc/temporal-flow/definitions"
    assert tmp_mount["mountPath"] == "/tmp"
    volume, tmp = pod["volumes"]
    assert "emptyDir" in tmp
    sources = [s["configMap"]["name"] for s in volume["projected"]["sources"]]
    assert sources[0] == "tflow-namespace-definitions"
    assert deployment["spec"]["selector"]["matchLabels"]["temporalflow.dev/task-queue"] == queue

    scaled = get(kube, "scaledobject", f"tflow-worker-{queue}", namespace)
    assert scaled is not None
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"tflow-worker-{queue}"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 4)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "temporal"
    assert trigger["metadata"]["taskQueue"] == queue
    assert trigger["metadata"]["endpoint"] == operator.env["TEMPORAL_ADDRESS"]
    assert trigger["metadata"]["targetQueueSize"] == "7"
    assert trigger["metadata"]["activationTargetQueueSize"] == "2"
    # Owned by the Deployment, which the definitions own.
    assert [(o["kind"], o["uid"]) for o in scaled["metadata"]["ownerReferences"]] == [
        ("Deployment", deployment["metadata"]["uid"])
    ]

    key = f"{namespace}.greet.yaml"

    def published(cm_name: str, cm_namespace: str) -> dict[str, Any] | None:
        cm = get(kube, "configmap", cm_name, cm_namespace)
        if cm is None or key not in (cm.get("data") or {}):
            return None
        manifest: dict[str, Any] = yaml.safe_load(cm["data"][key])
        return manifest

    local = eventually(lambda: published("tflow-namespace-definitions", namespace))
    cluster = eventually(lambda: published("tflow-definitions", operator.system_namespace))
    assert local == cluster
    assert local["kind"] == "WorkflowDefinition"
    assert local["metadata"] == {
        "name": "greet",
        "namespace": namespace,
        "generation": wfd["metadata"]["generation"],
    }
    assert local["spec"]["workflow"] == WORKFLOW
    assert local["spec"]["taskQueue"] == queue

    # kubectl get shows task queue, schedule, ready, last run and age at a glance.
    row = printed_row(kube, namespace, "greet")
    assert list(row) == ["NAME", "TASK QUEUE", "SCHEDULE", "READY", "LAST RUN", "AGE"]
    assert (row["NAME"], row["TASK QUEUE"], row["SCHEDULE"], row["READY"]) == (
        "greet",
        queue,
        "",
        "True",
    )
    assert row["AGE"]

    # An update reaches the Deployment; deletion unpublishes the definition.
    changed = definition("greet", queue, {**workers, "image": "registry.example/acme/worker:2.0"})
    applied(kube, namespace, changed)

    def image() -> str:
        deployment = get(kube, "deployment", f"tflow-worker-{queue}", namespace) or {}
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    eventually(lambda: image() == "registry.example/acme/worker:2.0")
    # The operator removes its finalizer; on a busy machine that can take a while.
    kube.kubectl("delete", "wfd", "greet", "-n", namespace, timeout=240)
    eventually(lambda: published("tflow-definitions", operator.system_namespace) is None)
    eventually(lambda: get(kube, "deployment", f"tflow-worker-{queue}", namespace) is None)


def test_invalid_definition_reports_every_problem_and_an_event(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    bad = definition("broken", f"bad-{uuid.uuid4().hex[:6]}")
    bad["spec"]["workflow"]["do"] = [
        {"first": {"set": {"x": "${ .a | bogus( }"}}},
        {"second": {"wait": "not-a-duration"}},
    ]
    applied(kube, namespace, bad)

    def invalid() -> dict[str, Any] | None:
        obj = get(kube, "workflowdefinition", "broken", namespace)
        return obj if condition(obj, "Valid").get("status") == "False" else None

    wfd = eventually(invalid)
    valid = condition(wfd, "Valid")
    assert valid["reason"] == "InvalidDocument"
    assert "2 problems" in valid["message"]
    assert "spec.workflow.do[0].first.set.x" in valid["message"]
    assert "spec.workflow.do[1].second.wait" in valid["message"]
    assert condition(wfd, "Ready")["status"] == "False"
    assert get(kube, "deployment", f"tflow-worker-{bad['spec']['taskQueue']}", namespace) is None

    def event() -> list[dict[str, Any]]:
        events = kubectl_json(
            kube,
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            "involvedObject.name=broken",
        )
        return [e for e in events["items"] if e["reason"] == "InvalidDefinition"]

    (posted,) = eventually(event)
    assert posted["type"] == "Warning"
    assert "spec.workflow.do[0].first.set.x" in posted["message"]


def test_document_level_schedule_is_refused(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    wfd = definition("cron-in-doc", f"cron-{uuid.uuid4().hex[:6]}")
    wfd["spec"]["workflow"]["schedule"] = {"cron": "0 * * * *"}
    applied(kube, namespace, wfd)

    def refused() -> dict[str, Any] | None:
        valid = condition(get(kube, "workflowdefinition", "cron-in-doc", namespace), "Valid")
        return valid if valid.get("status") == "False" else None

    valid = eventually(refused)
    assert "spec.workflow.schedule" in valid["message"]
    assert "spec.schedule" in valid["message"]


def test_task_queue_belongs_to_one_namespace(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"shared-{uuid.uuid4().hex[:6]}"
    applied(kube, namespace, definition("first", queue))
    eventually(lambda: ready(kube, namespace, "first"))
    other = f"{namespace[:50]}-other"
    kube.kubectl("create", "namespace", other)
    try:
        applied(kube, other, definition("second", queue))

        def conflict() -> dict[str, Any] | None:
            valid = condition(get(kube, "workflowdefinition", "second", other), "Valid")
            return valid if valid.get("reason") == "TaskQueueConflict" else None

        valid = eventually(conflict)
        assert namespace in valid["message"]
        assert get(kube, "deployment", f"tflow-worker-{queue}", other) is None
    finally:
        kube.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_shared_workers_are_collected_with_the_last_definition(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"gc-{uuid.uuid4().hex[:6]}"
    deployment_name = f"tflow-worker-{queue}"
    applied(
        kube,
        namespace,
        definition("one", queue, {"maxReplicas": 3, "image": "registry.example/one:1"}),
    )
    eventually(lambda: ready(kube, namespace, "one"))
    applied(kube, namespace, definition("two", queue, {"maxReplicas": 6, "minReplicas": 1}))
    eventually(lambda: ready(kube, namespace, "two"))

    def owners(kind: str) -> list[str]:
        obj = get(kube, kind, deployment_name, namespace)
        return sorted(o["name"] for o in (obj or {}).get("metadata", {}).get("ownerReferences", []))

    eventually(lambda: owners("deployment") == ["one", "two"])
    assert owners("scaledobject") == [deployment_name]
    scaled = get(kube, "scaledobject", deployment_name, namespace)
    assert scaled is not None
    # Merged: the largest bounds; the oldest definition's image.
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 6)
    deployment = get(kube, "deployment", deployment_name, namespace)
    assert deployment is not None
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example/one:1"

    # The operator removes its finalizer; on a busy machine that can take a while.
    kube.kubectl("delete", "wfd", "one", "-n", namespace, timeout=240)
    eventually(lambda: owners("deployment") == ["two"])
    assert get(kube, "deployment", deployment_name, namespace) is not None

    # The operator does not delete the last definition's workers: the GC does.
    # The operator removes its finalizer; on a busy machine that can take a while.
    kube.kubectl("delete", "wfd", "two", "-n", namespace, timeout=240)
    eventually(lambda: get(kube, "deployment", deployment_name, namespace) is None)
    eventually(lambda: get(kube, "scaledobject", deployment_name, namespace) is None)


def test_secrets_the_document_uses_are_mounted_and_a_missing_one_reported(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    operator.allow_secrets(namespace)
    queue = f"pay-{uuid.uuid4().hex[:6]}"
    wfd = definition("pay", queue)
    wfd["spec"]["workflow"]["use"] = {"secrets": ["payment-api"]}
    applied(kube, namespace, wfd)

    def reason() -> str | None:
        reported = condition(get(kube, "workflowdefinition", "pay", namespace), "Ready")
        return reported.get("reason")

    eventually(lambda: reason() == "SecretNotFound")
    message = condition(get(kube, "workflowdefinition", "pay", namespace), "Ready")["message"]
    assert "payment-api" in message
    assert namespace in message
    # The workers mount it anyway (optional), so they pick it up once it exists.
    deployment = eventually(lambda: get(kube, "deployment", f"tflow-worker-{queue}", namespace))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"].endswith("/payment-api"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert (volume["secret"]["secretName"], volume["secret"]["optional"]) == ("payment-api", True)

    kube.kubectl(
        "create", "secret", "generic", "payment-api", "--from-literal=token=t", "-n", namespace
    )
    # The resync loop notices within a period or so.
    eventually(lambda: ready(kube, namespace, "pay"), timeout=3 * RESYNC_SECONDS + 30)
