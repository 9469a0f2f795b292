"""EventRoutes compiled by the operator into the cluster-wide routing table ConfigMap:
readiness follows the target definition, the table's content and hash, and invalid jq;
a namespace with a direct-routing Listener gets its own part of the table."""

from __future__ import annotations

import copy
import gzip
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from operator_harness import (
    OperatorProcess,
    apply,
    condition,
    decode_binary,
    get,
    kubectl_json,
)
from polling import eventually

from tflow_devstack.controlplane import ControlPlane
from tflow_workers.routing import RoutingTable

pytestmark = [pytest.mark.integration]

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "docs", "version": "1.0.0"},
    "do": [{"keep": {"set": {"uri": "${ .uri }"}}}],
}


def definition(namespace: str, name: str, task_queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"taskQueue": task_queue, "workflow": copy.deepcopy(WORKFLOW)},
    }


def route(namespace: str, name: str, workflow: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "match": {"type": "document-added", "source": "s3"},
            "workflow": workflow,
            "input": "${ {uri: .data.documentUri} }",
            "priority": 10,
            **spec,
        },
    }


def table(kube: ControlPlane, operator: OperatorProcess) -> tuple[RoutingTable, dict[str, Any]]:
    cm = get(kube, "configmap", "tflow-routing", operator.system_namespace)
    assert cm is not None
    routes = []
    # The table's files; the index beside them only names them.
    for key, text in (cm.get("data") or {}).items():
        if key.startswith("routes"):
            routes.extend(RoutingTable.model_validate_json(text).routes)
    for blob in (cm.get("binaryData") or {}).values():
        routes.extend(RoutingTable.model_validate_json(gzip.decompress(decode_binary(blob))).routes)
    return RoutingTable(routes=routes), cm


def route_status(kube: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    obj = get(kube, "eventroute", name, namespace)
    return condition(obj, "Ready") | {
        "hash": ((obj or {}).get("status") or {}).get("routingTableHash")
    }


def test_route_waits_for_its_definition_then_compiles(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    apply(kube, route(namespace, "pdfs", "documents"))

    def not_found() -> dict[str, Any] | None:
        ready = route_status(kube, namespace, "pdfs")
        return ready if ready.get("reason") == "WorkflowNotFound" else None

    ready = eventually(not_found)
    assert ready["status"] == "False"
    assert "documents" in ready["message"]
    assert ready["hash"] is None
    compiled, _ = table(kube, operator)
    assert f"{namespace}/pdfs" not in {r.id for r in compiled.routes}
    events = kubectl_json(
        kube, "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=pdfs"
    )
    assert any(e["reason"] == "WorkflowNotFound" for e in events["items"])

    queue = f"docs-{uuid.uuid4().hex[:6]}"
    apply(kube, definition(namespace, "documents", queue))

    def compiled_ready() -> dict[str, Any] | None:
        ready = route_status(kube, namespace, "pdfs")
        return ready if ready.get("status") == "True" else None

    ready = eventually(compiled_ready)
    assert ready["reason"] == "Compiled"
    obj = get(kube, "eventroute", "pdfs", namespace)
    assert obj is not None
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    def in_table() -> tuple[RoutingTable, dict[str, Any]] | None:
        compiled, cm = table(kube, operator)
        ids = {r.id for r in compiled.routes}
        return (compiled, cm) if f"{namespace}/pdfs" in ids else None

    compiled, cm = eventually(in_table)
    (mine,) = [r for r in compiled.routes if r.id == f"{namespace}/pdfs"]
    assert mine.model_dump(exclude_none=True) == {
        "namespace": namespace,
        "name": "pdfs",
        "priority": 10,
        "type": "document-added",
        "source": "s3",
        "input": "${ {uri: .data.documentUri} }",
        "workflow": "documents",
        "task_queue": queue,
    }
    annotation = cm["metadata"]["annotations"]["temporalflow.dev/routing-hash"]
    assert annotation == compiled.content_hash()
    assert annotation == hashlib.sha256(compiled.to_json().encode()).hexdigest()
    # The route names the table it was compiled into: one the operator published.
    compiled_into = eventually(lambda: route_status(kube, namespace, "pdfs")["hash"])
    assert f"(hash {compiled_into[:12]})" in operator.log_text()

    # The definition becoming invalid takes the route out of the table.
    broken = definition(namespace, "documents", queue)
    broken["spec"]["workflow"]["do"] = [{"bad": {"wait": "soon"}}]
    apply(kube, broken)

    def invalid() -> dict[str, Any] | None:
        ready = route_status(kube, namespace, "pdfs")
        return ready if ready.get("reason") == "WorkflowInvalid" else None

    eventually(invalid)
    eventually(lambda: f"{namespace}/pdfs" not in {r.id for r in table(kube, operator)[0].routes})


def test_route_with_bad_jq_is_not_ready(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    apply(kube, definition(namespace, "target", f"jq-{uuid.uuid4().hex[:6]}"))
    bad = route(namespace, "bad-jq", "target", match={"filter": "${ .data | bogus( }"})
    apply(kube, bad)

    def invalid() -> dict[str, Any] | None:
        ready = route_status(kube, namespace, "bad-jq")
        return ready if ready.get("reason") == "InvalidExpression" else None

    ready = eventually(invalid)
    assert "spec.match.filter" in ready["message"]


def test_many_routes_are_debounced_into_few_writes(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    queue = f"many-{uuid.uuid4().hex[:6]}"
    apply(kube, definition(namespace, "target", queue))
    eventually(lambda: condition(get(kube, "wfd", "target", namespace), "Ready"))
    log_offset = len(operator.log_text())
    count = 60
    apply(kube, *(route(namespace, f"r{i:03d}", "target", priority=i) for i in range(count)))

    def all_ready() -> bool:
        items = kubectl_json(kube, "get", "eventroutes", "-n", namespace)["items"]
        return len(items) == count and all(
            condition(item, "Ready").get("status") == "True" for item in items
        )

    eventually(all_ready, timeout=60)
    compiled, cm = table(kube, operator)
    mine = sorted(r.name for r in compiled.routes if r.namespace == namespace)
    assert mine == [f"r{i:03d}" for i in range(count)]
    # Deterministic: canonical order and JSON, so the same routes give the same hash.
    assert RoutingTable(routes=list(reversed(compiled.routes))).to_json() == compiled.to_json()
    assert cm["metadata"]["annotations"]["temporalflow.dev/routing-hash"] == (
        compiled.content_hash()
    )
    # Debounced: a burst of 60 routes is a handful of table writes, not 60.
    writes = [
        line for line in operator.log_text()[log_offset:].splitlines() if "published:" in line
    ]
    assert 1 <= len(writes) <= 10, writes


@pytest.fixture
def other_namespace(kube: ControlPlane) -> Iterator[str]:
    """A second namespace for the test, deleted after it."""
    name = f"other-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_cross_namespace_route_needs_the_other_sides_consent(
    operator: OperatorProcess, kube: ControlPlane, namespace: str, other_namespace: str
) -> None:
    sender = other_namespace
    queue = f"x-{uuid.uuid4().hex[:6]}"
    apply(
        kube,
        definition(namespace, "documents", queue),
        route(namespace, "theirs", "documents", fromNamespaces=[sender]),
    )

    def reason() -> dict[str, Any]:
        return route_status(kube, namespace, "theirs")

    ready = eventually(lambda: reason() if reason().get("reason") == "NamespaceNotShared" else None)
    assert ready["status"] == "False"
    assert (
        f"spec.fromNamespaces: {sender} does not share events with {namespace}"
        in (ready["message"])
    )
    assert "spec.shareEventsWith" in ready["message"]
    # Compiled all the same: its own namespace's events reach it; the router checks
    # the sender's consent on each event.
    compiled, _ = table(kube, operator)
    (entry,) = [r for r in compiled.routes if r.id == f"{namespace}/theirs"]
    assert entry.from_namespaces == (sender,)

    # A Listener of the sending namespace gives its consent.
    listener: dict[str, Any] = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": "hook", "namespace": sender},
        "spec": {"type": "webhook", "replicas": 0, "shareEventsWith": ["somewhere-else"]},
    }
    apply(kube, listener)
    listener["spec"]["shareEventsWith"] = ["somewhere-else", namespace]
    apply(kube, listener)  # an update, seen through the Listener watch
    eventually(lambda: reason().get("reason") == "Compiled")
    assert reason()["status"] == "True"
    # Consent withdrawn: the route says so again.
    kube.kubectl("delete", "listener", "hook", "-n", sender)
    eventually(lambda: reason().get("reason") == "NamespaceNotShared")


def test_a_direct_listener_gets_its_namespaces_own_routes(
    operator: OperatorProcess, kube: ControlPlane, namespace: str, other_namespace: str
) -> None:
    other = other_namespace
    suffix = uuid.uuid4().hex[:6]
    apply(
        kube,
        definition(namespace, "documents", f"d-{suffix}"),
        route(namespace, "mine", "documents"),
        definition(other, "documents", f"o-{suffix}"),
        route(other, "theirs", "documents"),
    )
    listener: dict[str, Any] = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": "hook", "namespace": namespace},
        "spec": {"type": "webhook", "replicas": 0, "routing": "direct"},
    }
    apply(kube, listener)

    def own_routes() -> list[str] | None:
        cm = get(kube, "configmap", "tflow-namespace-routing", namespace)
        if cm is None:
            return None
        assert "routing-index.json" in cm["data"]
        compiled = RoutingTable.model_validate_json(cm["data"]["routes.json"])
        return [r.id for r in compiled.routes] or None

    assert eventually(own_routes, what="the namespace's table") == [f"{namespace}/mine"]
    assert get(kube, "configmap", "tflow-namespace-routing", other) is None
    deployment = get(kube, "deployment", "tflow-listener-hook", namespace)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TFLOW_LISTENER_ROUTING"] == "direct"

    # Back to the orchestrator: the namespace's table goes.
    listener["spec"]["routing"] = "orchestrator"
    apply(kube, listener)
    eventually(
        lambda: get(kube, "configmap", "tflow-namespace-routing", namespace) is None,
        what="the namespace's table deleted",
    )
