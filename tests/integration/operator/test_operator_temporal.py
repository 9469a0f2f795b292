"""The operator and Temporal: a definition with spec.schedule becomes a Temporal Schedule
(kept in sync, removed by the finalizer), and a Temporal outage shows in the status
(reason TemporalUnavailable) while the operator keeps running and recovers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from operator_harness import OperatorProcess, apply, condition, get
from polling import eventually
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer

pytestmark = [pytest.mark.integration]

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "nightly", "version": "2.0.0"},
    "do": [{"report": {"set": {"done": True}}}],
}


def scheduled_definition(
    namespace: str, name: str, queue: str, paused: bool = False
) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "taskQueue": queue,
            "schedule": {
                "cron": ["0 3 * * *"],
                "timezone": "Europe/Paris",
                "overlap": "Skip",
                "paused": paused,
                "input": {"report": "daily"},
            },
            "workflow": WORKFLOW,
        },
    }


def conditions(kube: ControlPlane, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    obj = get(kube, "wfd", name, namespace)
    return {t: condition(obj, t) for t in ("Ready", "Valid", "Scheduled")}


async def test_schedule_is_created_updated_and_deleted(
    operator: OperatorProcess, kube: ControlPlane, namespace: str, temporal_client: Client
) -> None:
    queue = f"cron-{uuid.uuid4().hex[:6]}"
    apply(kube, scheduled_definition(namespace, "nightly", queue))
    eventually(lambda: conditions(kube, namespace, "nightly")["Ready"].get("status") == "True")
    scheduled = conditions(kube, namespace, "nightly")["Scheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("True", "Scheduled")

    handle = temporal_client.get_schedule_handle(f"tflow-{namespace}.nightly")
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.task_queue == queue
    assert described.schedule.spec.time_zone_name == "Europe/Paris"
    assert described.schedule.state.paused is False

    # A scheduled definition carries the finalizer that deletes its schedule.
    current = get(kube, "wfd", "nightly", namespace)
    assert current is not None
    assert current["metadata"]["finalizers"] == ["temporalflow.dev/finalizer"]
    # The resync loop reports when the schedule runs next.
    wfd = eventually(
        lambda: (
            (obj := get(kube, "wfd", "nightly", namespace))
            and obj.get("status", {}).get("nextRun")
            and obj
        )
    )
    assert wfd["status"]["running"] == 0
    row = kube.kubectl("get", "wfd", "nightly", "-n", namespace).stdout.splitlines()[1]
    assert "0 3 * * *" in row

    apply(kube, scheduled_definition(namespace, "nightly", queue, paused=True))
    eventually(
        lambda: conditions(kube, namespace, "nightly")["Scheduled"].get("reason") == "Paused"
    )
    assert (await handle.describe()).schedule.state.paused is True

    # The operator removes its finalizer; on a busy machine that can take a while.
    kube.kubectl("delete", "wfd", "nightly", "-n", namespace, timeout=240)
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


def test_temporal_outage_is_reported_and_recovered(
    operator: OperatorProcess, kube: ControlPlane, namespace: str, temporal: TemporalServer
) -> None:
    queue = f"outage-{uuid.uuid4().hex[:6]}"
    apply(kube, scheduled_definition(namespace, "before", queue))
    eventually(lambda: conditions(kube, namespace, "before")["Ready"].get("status") == "True")

    temporal.stop()
    try:

        def unavailable(name: str) -> dict[str, Any] | None:
            ready = conditions(kube, namespace, name)["Ready"]
            return ready if ready.get("reason") == "TemporalUnavailable" else None

        ready = eventually(lambda: unavailable("before"), timeout=60)
        assert ready["status"] == "False"
        assert temporal.address in ready["message"]

        apply(kube, scheduled_definition(namespace, "during", queue))
        eventually(lambda: unavailable("during"), timeout=60)
        scheduled = conditions(kube, namespace, "during")["Scheduled"]
        assert (scheduled["status"], scheduled["reason"]) == ("False", "TemporalUnavailable")
        # The Kubernetes side does not wait for Temporal.
        deployment = get(kube, "deployment", f"tflow-worker-{queue}", namespace)
        assert deployment is not None
        assert len(deployment["metadata"]["ownerReferences"]) == 2
        assert operator.alive()
    finally:
        temporal.start()

    def recovered(name: str) -> bool:
        return conditions(kube, namespace, name)["Ready"].get("status") == "True"

    eventually(lambda: recovered("before") and recovered("during"), timeout=90)
    assert conditions(kube, namespace, "during")["Scheduled"]["status"] == "True"
    assert operator.alive()
