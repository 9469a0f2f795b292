"""Drift and restarts: what the operator made comes back within a timer period when it is
deleted or edited by hand, and a restarted operator that finds everything in order
writes nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from operator_harness import (
    RESYNC_SECONDS,
    OperatorProcess,
    apply,
    condition,
    get,
    quiesce,
)
from polling import eventually

from tflow_devstack.controlplane import ControlPlane

pytestmark = [pytest.mark.integration]

# One timer period, plus the slack of a busy 2-core machine.
RESTORED_WITHIN = 3 * RESYNC_SECONDS + 10

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "drift", "version": "1.0.0"},
    "do": [{"noop": {"set": {"ok": True}}}],
}


def setup_objects(kube: ControlPlane, namespace: str, queue: str) -> None:
    apply(
        kube,
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "WorkflowDefinition",
            "metadata": {"name": "drift", "namespace": namespace},
            "spec": {
                "taskQueue": queue,
                "workers": {"image": "registry.example/drift:1"},
                "workflow": WORKFLOW,
            },
        },
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "EventRoute",
            "metadata": {"name": "drift", "namespace": namespace},
            "spec": {"match": {"type": "drift"}, "workflow": "drift"},
        },
    )

    def settled() -> bool:
        wfd = get(kube, "wfd", "drift", namespace)
        route = get(kube, "eventroute", "drift", namespace)
        return (
            condition(wfd, "Ready").get("status") == "True"
            and condition(route, "Ready").get("status") == "True"
        )

    eventually(settled)


def image(kube: ControlPlane, namespace: str, name: str) -> str | None:
    deployment = get(kube, "deployment", name, namespace)
    if deployment is None:
        return None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_deleted_or_edited_children_come_back(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"drift-{uuid.uuid4().hex[:6]}"
    name = f"tflow-worker-{queue}"
    setup_objects(kube, namespace, queue)

    deployment = get(kube, "deployment", name, namespace)
    assert deployment is not None
    kube.kubectl("delete", "deployment", name, "-n", namespace)
    restored = eventually(lambda: get(kube, "deployment", name, namespace), timeout=RESTORED_WITHIN)
    assert restored["metadata"]["uid"] != deployment["metadata"]["uid"]

    kube.kubectl(
        "set",
        "image",
        f"deployment/{name}",
        "worker=registry.example/hand-edited:9",
        "-n",
        namespace,
    )
    assert image(kube, namespace, name) == "registry.example/hand-edited:9"
    eventually(
        lambda: image(kube, namespace, name) == "registry.example/drift:1",
        timeout=RESTORED_WITHIN,
    )

    kube.kubectl("delete", "scaledobject", name, "-n", namespace)
    eventually(lambda: get(kube, "scaledobject", name, namespace), timeout=RESTORED_WITHIN)

    system = operator.system_namespace
    kube.kubectl("delete", "configmap", "tflow-routing", "-n", system)
    routing = eventually(
        lambda: get(kube, "configmap", "tflow-routing", system), timeout=RESTORED_WITHIN
    )
    assert f'"name":"drift","namespace":"{namespace}"' in json.dumps(
        json.loads(routing["data"]["routes.json"]), sort_keys=True, separators=(",", ":")
    )
    kube.kubectl("delete", "configmap", "tflow-namespace-definitions", "-n", namespace)
    eventually(
        lambda: get(kube, "configmap", "tflow-namespace-definitions", namespace),
        timeout=RESTORED_WITHIN,
    )


def _versions(kube: ControlPlane, namespace: str, system: str, name: str) -> dict[str, str]:
    objects = {
        "routing": get(kube, "configmap", "tflow-routing", system),
        "definitions": get(kube, "configmap", "tflow-definitions", system),
        "local": get(kube, "configmap", "tflow-namespace-definitions", namespace),
        "deployment": get(kube, "deployment", name, namespace),
        "scaledobject": get(kube, "scaledobject", name, namespace),
        "route": get(kube, "eventroute", "drift", namespace),
        "definition": get(kube, "wfd", "drift", namespace),
    }
    return {k: (v or {}).get("metadata", {}).get("resourceVersion", "") for k, v in objects.items()}


def test_restart_does_no_duplicate_work(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"restart-{uuid.uuid4().hex[:6]}"
    name = f"tflow-worker-{queue}"
    setup_objects(kube, namespace, queue)
    system = operator.system_namespace
    # Other tests' namespaces being deleted would change the cluster-wide ConfigMaps:
    # wait for them to go, and for the status and the timers to settle.
    quiesce(kube)
    time.sleep(2 * RESYNC_SECONDS + 1)
    before = _versions(kube, namespace, system, name)
    assert all(before.values()), before
    route_before = get(kube, "eventroute", "drift", namespace)

    operator.restart()
    # Resume handlers, the first publish and a couple of timer periods.
    time.sleep(3 * RESYNC_SECONDS + 2)
    after = _versions(kube, namespace, system, name)
    if after != before:
        route_after = get(kube, "eventroute", "drift", namespace)
        restarted = operator.log_text().rsplit("===== start", 1)[-1]
        raise AssertionError(
            f"{after} != {before}\nroute before: {json.dumps(route_before)}\n"
            f"route after: {json.dumps(route_after)}\noperator log since the restart:\n"
            f"{restarted[-6000:]}"
        )
    assert operator.alive()
