"""The operator's Prometheus metrics, scraped from its /metrics endpoint while it reconciles
against the real apiserver: reconciles by kind and outcome and their latency, objects not
Ready, the routing table's size and publishing, and Temporal errors when Temporal is gone."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_harness import OperatorProcess, apply, condition, get, start_operator
from polling import eventually
from prometheus_client.parser import text_string_to_metric_families

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port, port_open
from tflow_devstack.temporal import TemporalServer

pytestmark = [pytest.mark.integration]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of the endpoint, parsed as Prometheus parses the text format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def definition(name: str, namespace: str, queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "taskQueue": queue,
            "workflow": {
                "document": {"dsl": "1.0.0", "namespace": "t", "name": name, "version": "1.0.0"},
                "do": [{"hello": {"set": {"greeting": "hi"}}}],
            },
        },
    }


def route(name: str, namespace: str, workflow: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"match": {"type": f"{name}.happened"}, "workflow": workflow},
    }


def metered_operator(
    kube: ControlPlane, workdir: Path, temporal_address: str, temporal_namespace: str
) -> tuple[OperatorProcess, int]:
    port = free_port()
    process = start_operator(
        kube,
        workdir,
        temporal_address,
        temporal_namespace,
        extra_env={"TFLOW_METRICS_PORT": str(port)},
    )
    return process, port


@pytest.fixture
def metered(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    temporal: TemporalServer,
    tmp_path: Path,
) -> Iterator[tuple[OperatorProcess, int]]:
    process, port = metered_operator(kube, tmp_path, temporal.address, temporal.namespace)
    try:
        yield process, port
    finally:
        process.stop()


def test_counters_move_as_the_operator_reconciles(
    metered: tuple[OperatorProcess, int], kube: ControlPlane, namespace: str
) -> None:
    operator, port = metered
    before = scrape(port)
    # Every series is there from the start, at zero or more.
    assert ("tflow_operator_reconciles_total", frozenset(
        {("kind", "WorkflowDefinition"), ("outcome", "retry")}
    )) in before  # fmt: skip
    assert ("tflow_operator_temporal_errors_total", frozenset({("operation", "connect")})) in before
    assert sample(before, "process_resident_memory_bytes") > 0

    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    apply(
        kube,
        definition("greet", namespace, queue),
        route("greeted", namespace, "greet"),
        route("orphan", namespace, "nowhere"),  # no such definition: never Ready
    )

    def definition_ready() -> bool:
        return condition(get(kube, "wfd", "greet", namespace), "Ready").get("status") == "True"

    eventually(definition_ready, timeout=60, what="the definition Ready")

    def moved() -> Samples | None:
        now = scrape(port)
        ok = ("WorkflowDefinition", "ok")
        reconciled = sample(now, "tflow_operator_reconciles_total", kind=ok[0], outcome=ok[1])
        timed = sample(
            now, "tflow_operator_reconcile_duration_seconds_count", kind="WorkflowDefinition"
        )
        published = sample(now, "tflow_operator_routing_publishes_total", outcome="ok")
        if (
            reconciled
            > sample(before, "tflow_operator_reconciles_total", kind=ok[0], outcome=ok[1])
            and timed
            > sample(before, "tflow_operator_reconcile_duration_seconds_count", kind=ok[0])
            and published > sample(before, "tflow_operator_routing_publishes_total", outcome="ok")
            and sample(now, "tflow_operator_objects_not_ready", kind="EventRoute") >= 1
            and sample(now, "tflow_operator_routing_table_routes") >= 1
        ):
            return now
        return None

    now = eventually(moved, timeout=60, what="the reconcile and publishing metrics to move")
    assert sample(now, "tflow_operator_routing_table_bytes") > 0
    assert sample(now, "tflow_operator_routing_publish_duration_seconds_count") >= sample(
        now, "tflow_operator_routing_publishes_total", outcome="ok"
    )
    # Listeners reconcile under their own kind.
    apply(
        kube,
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "Listener",
            "metadata": {"name": "hooks", "namespace": namespace},
            "spec": {"type": "webhook", "webhook": {"path": "/events"}},
        },
    )
    eventually(
        lambda: (
            sample(scrape(port), "tflow_operator_reconciles_total", kind="Listener", outcome="ok")
            > sample(before, "tflow_operator_reconciles_total", kind="Listener", outcome="ok")
        ),
        timeout=60,
        what="a Listener reconcile counted",
    )

    # A definition whose document does not compile is not Ready: a resync pass counts it.
    broken = definition("broken", namespace, f"broken-{uuid.uuid4().hex[:6]}")
    broken["spec"]["workflow"]["do"] = [{"first": {"set": {"x": "${ .a | bogus( }"}}}]
    apply(kube, broken)
    eventually(
        lambda: condition(get(kube, "wfd", "broken", namespace), "Ready").get("status") == "False",
        timeout=60,
        what="the broken definition not Ready",
    )
    eventually(
        lambda: (
            sample(scrape(port), "tflow_operator_objects_not_ready", kind="WorkflowDefinition") >= 1
        ),
        timeout=60,
        what="the not-Ready definition counted by a resync pass",
    )
    assert operator.alive()

    # SIGTERM stops kopf and the metrics server with it, and the process exits cleanly.
    managed = operator.process
    assert managed is not None
    assert managed.proc is not None
    operator.stop()
    assert managed.proc.returncode == 0, operator.log_text()[-3000:]
    assert not port_open(port)


def test_temporal_errors_and_retries_are_counted_when_temporal_is_gone(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    temporal: TemporalServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    # Nothing listens there: every connection attempt is refused.
    operator, port = metered_operator(
        kube, tmp_path, f"127.0.0.1:{free_port()}", temporal.namespace
    )
    try:
        apply(kube, definition("stranded", namespace, f"gone-{uuid.uuid4().hex[:6]}"))

        def counted() -> Samples | None:
            now = scrape(port)
            retried = sample(
                now, "tflow_operator_reconciles_total", kind="WorkflowDefinition", outcome="retry"
            )
            errors = sample(now, "tflow_operator_temporal_errors_total", operation="connect")
            return now if retried >= 1 and errors >= 1 else None

        eventually(counted, timeout=60, what="Temporal errors and retried reconciles")
        # The reconcile is counted when the handler returns; kopf writes its status
        # patch just after, so the condition may lag the metric by a moment.
        ready = eventually(
            lambda: condition(get(kube, "wfd", "stranded", namespace), "Ready") or None,
            timeout=30,
            what="the definition's Ready condition",
        )
        assert ready.get("reason") == "TemporalUnavailable", ready
    finally:
        operator.stop()
