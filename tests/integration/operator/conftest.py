"""Fixtures for the operator's integration tests: KEDA's CRDs in the control plane, and
the operator itself running as a subprocess under the RBAC role it ships with
(``manifests/rbac/operator.yaml``), its own system namespace, a 2-second resync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from operator_harness import RESYNC_SECONDS, OperatorProcess, install_keda_crds, start_operator

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer


@pytest.fixture(scope="session")
def keda_crds(kube: ControlPlane) -> None:
    """KEDA's CRDs (ScaledObject, TriggerAuthentication, ...) so ScaledObjects are accepted."""
    install_keda_crds(kube)


# One operator per test module: it watches every namespace, so it must be gone before
# tests elsewhere set the status of custom resources by hand.
@pytest.fixture(scope="module")
def operator(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        tmp_path_factory.mktemp("operator"),
        temporal.address,
        temporal.namespace,
        resync_seconds=RESYNC_SECONDS,
    )
    try:
        yield process
    finally:
        process.stop()
