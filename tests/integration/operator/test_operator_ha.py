"""Two operator replicas against the real apiserver: exactly one leads (holds the Lease
and reconciles), the other stays a live standby; killed without a chance to hand over,
the leader is replaced within a lease period, and the new leader reconciles objects
created after the kill; a leader stopped cleanly gives the Lease back."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from operator_harness import RESYNC_SECONDS, OperatorProcess, apply, get, start_operator
from polling import eventually

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_operator.leader import LEASE_NAME
from tflow_operator.naming import worker_deployment_name

pytestmark = [pytest.mark.integration]

DURATION, RENEW_DEADLINE, RETRY = 8.0, 5.0, 1.0
ELECTION = {
    "TFLOW_LEADER_ELECTION": "true",
    "TFLOW_LEASE_DURATION_SECONDS": str(DURATION),
    "TFLOW_LEASE_RENEW_DEADLINE_SECONDS": str(RENEW_DEADLINE),
    "TFLOW_LEASE_RETRY_SECONDS": str(RETRY),
}
# Logged by the operator's startup handler, which runs only once kopf runs.
STARTED = "Temporal Flow operator: Temporal"


def definition(namespace: str, name: str, queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "taskQueue": queue,
            "workflow": {
                "document": {"dsl": "1.0.0", "namespace": "t", "name": name, "version": "1.0.0"},
                "do": [{"noop": {"set": {"ok": True}}}],
            },
        },
    }


def holder(kube: ControlPlane, namespace: str) -> str | None:
    result = kube.kubectl("get", "lease", LEASE_NAME, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    spec = json.loads(result.stdout).get("spec") or {}
    return spec.get("holderIdentity")


def test_one_of_two_replicas_leads_and_the_other_takes_over_when_it_dies(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    temporal: TemporalServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    first = start_operator(
        kube,
        tmp_path / "a",
        temporal.address,
        temporal.namespace,
        resync_seconds=RESYNC_SECONDS,
        extra_env={**ELECTION, "POD_NAME": "operator-a"},
    )
    second: OperatorProcess | None = None
    try:
        system = first.system_namespace
        assert holder(kube, system) == "operator-a"
        port = free_port()
        (tmp_path / "b").mkdir()
        env = {**first.env, "POD_NAME": "operator-b", "TFLOW_HEALTH_PORT": str(port)}
        # start() waits for /healthz: a standby answers its liveness probe.
        second = OperatorProcess(kube, tmp_path / "b", system, env, port).start()
        eventually(lambda: "Standby" in second.log_text(), timeout=30)

        apply(kube, definition(namespace, "before", "ha-before"))
        eventually(
            lambda: get(kube, "deployment", worker_deployment_name("ha-before"), namespace),
            timeout=60,
        )
        assert STARTED in first.log_text()
        # The standby never started kopf: no watch, no handler, no resync, no publisher.
        assert STARTED not in second.log_text()
        assert holder(kube, system) == "operator-a"

        # No graceful shutdown, so no hand-over: the Lease has to run out.
        assert first.pid is not None
        os.killpg(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        eventually(lambda: holder(kube, system) == "operator-b", timeout=DURATION * 4)
        took = time.monotonic() - killed
        # A lease period from the last renewal it saw, plus at most one look of the
        # standby (and a little for a busy machine).
        assert took <= DURATION + 2 * RETRY + 2, f"took over after {took:.1f}s"

        apply(kube, definition(namespace, "after", "ha-after"))
        eventually(
            lambda: get(kube, "deployment", worker_deployment_name("ha-after"), namespace),
            timeout=60,
        )
        assert STARTED in second.log_text()
        print(f"operator-b took over {took:.1f}s after operator-a was killed")

        # A leader that stops cleanly (SIGTERM) hands the Lease back at once.
        second.stop()
        assert holder(kube, system) is None
    finally:
        if second is not None:
            second.stop()
        first.stop()
