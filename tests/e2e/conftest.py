"""End to end in real pods: one cluster per session, started as `make dev` starts it
(stack.start: the control plane on the node's address, a real kubelet with containerd and
runc, the images built here, Temporal, KEDA with its metrics apiserver, the chart installed
with the built image and the incident sample applied), with short KEDA timings. Its
namespaces, and every namespace the tests make for workloads, enforce the `restricted`
Pod Security Standard."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tflow_devstack import stack
from tflow_devstack.cluster import Cluster
from tflow_workers.connection import connect

# Small enough for a test; the chart's defaults are 10 s and 300 s.
POLLING_SECONDS = 2
COOLDOWN_SECONDS = 15


def restricted_namespace(cluster: Cluster, name: str) -> None:
    cluster.cp.kubectl("create", "namespace", name, check=False)
    cluster.cp.kubectl("label", "--overwrite", "namespace", name, *stack.RESTRICTED_LABELS)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = stack.start(
        tmp_path_factory.mktemp("cluster"),
        temporal_ui=False,
        settings=(
            f"workers.scaling.pollingInterval={POLLING_SECONDS}",
            f"workers.scaling.cooldownPeriod={COOLDOWN_SECONDS}",
            # The optional front ends run in pods too (test_chart_in_pods.py).
            "runApi.enabled=true",
            "ui.enabled=true",
            "ui.namespaces={*}",
        ),
    )
    try:
        yield c
    finally:
        _dump_state(c, Path(tmp_path_factory.getbasetemp()))
        c.stop()


def _dump_state(c: Cluster, base: Path) -> None:
    """The cluster's last state, for a person reading a failure: objects, events, pods."""
    if c.control_plane is None:
        return
    out = base / "cluster-state.txt"
    parts = [
        c.cp.kubectl("get", "all,events", "-A", "-o", "wide", check=False).stdout,
        c.cp.kubectl("describe", "pods", "-A", check=False).stdout,
    ]
    out.write_text("\n".join(parts))


@pytest.fixture
def workload_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    restricted_namespace(cluster, name)
    try:
        yield name
    finally:
        cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
async def cluster_temporal(cluster: Cluster) -> Client:
    assert cluster.temporal is not None
    return await connect(cluster.temporal.address, cluster.temporal.namespace)


@pytest.fixture
def cooldown_seconds() -> int:
    """How long KEDA waits, idle, before it scales workers back to zero here."""
    return COOLDOWN_SECONDS
