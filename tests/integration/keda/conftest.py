"""Session fixtures for KEDA: its CRDs in the test apiserver, and the KEDA operator
(built by `make keda`) running out of cluster against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.keda import KedaOperator


@pytest.fixture(scope="session")
def keda_operator(
    kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KedaOperator]:
    operator = KedaOperator(tmp_path_factory.mktemp("keda"), kube.kubeconfig)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture(scope="session")
def keda_crds(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Only KEDA's CRDs (ScaledObject, TriggerAuthentication, ...), no operator."""
    KedaOperator(tmp_path_factory.mktemp("keda-crds"), kube.kubeconfig).install_crds()
