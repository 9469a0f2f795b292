"""End to end in real pods: one cluster per session (cluster.py: the control plane on the
node's address, a real kubelet with containerd and runc, the images built here, Temporal,
KEDA with its metrics apiserver) and the chart installed with the built image into a
namespace that enforces the `restricted` Pod Security Standard, as every namespace the
tests make for workloads does."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tflow_devstack.cluster import SYSTEM_NAMESPACE, Cluster
from tflow_workers.connection import connect

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
# Small enough for a test; the chart's defaults are 10 s and 300 s.
POLLING_SECONDS = 2
COOLDOWN_SECONDS = 15
_WITH_KEDA = True


def restricted_namespace(cluster: Cluster, name: str) -> None:
    cluster.cp.kubectl("create", "namespace", name, check=False)
    cluster.cp.kubectl(
        "label", "--overwrite", "namespace", name, *(f"{k}={v}" for k, v in RESTRICTED.items())
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), with_keda=_WITH_KEDA).start()
    try:
        restricted_namespace(c, SYSTEM_NAMESPACE)
        c.install_chart(
            "listener.sample.enabled=true",
            "operator.resyncSeconds=5",
            f"workers.scaling.pollingInterval={POLLING_SECONDS}",
            f"workers.scaling.cooldownPeriod={COOLDOWN_SECONDS}",
        )
        yield c
    except BaseException:
        _dump_state(c, Path(tmp_path_factory.getbasetemp()))
        raise
    finally:
        c.stop()


def _dump_state(c: Cluster, base: Path) -> None:
    """What a failed start leaves for a person to read: pods, events, logs."""
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
