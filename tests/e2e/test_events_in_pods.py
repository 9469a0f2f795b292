"""Events in, runs out, all in real pods: an event posted to the webhook Listener through its
Service (kube-proxy's rules on the node) is routed by the root orchestrator's mounted table,
KEDA wakes the definition's worker Deployment from zero, a worker pod runs the flow to the
end, and the workers go back to zero after the cooldown. A changed EventRoute reaches the
root orchestrator through the kubelet's update of the mounted ConfigMap, without a restart.
A Listener with `routing: direct` routes in its own pod, with its namespace's table as the
operator publishes and the kubelet mounts it: the event's run starts with no root run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tflow_devstack.cluster import SYSTEM_NAMESPACE, Cluster
from tflow_workers.cloudevents import event_workflow_id
from workloads import (
    apply,
    definition,
    post_until_run,
    replicas,
    route,
    runs_of,
    wait_for,
    webhook,
)

# Pods start, KEDA polls, cooldowns pass: minutes, not the suite's default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


async def test_event_through_the_service_wakes_workers_runs_and_scales_back(
    cluster: Cluster, workload_namespace: str, cluster_temporal: Client, cooldown_seconds: int
) -> None:
    ns = workload_namespace
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    event_type = f"e2e.greeting.{uuid.uuid4().hex[:6]}"
    apply(
        cluster,
        ns,
        definition(
            "greet", task_queue, [{"greet": {"set": {"greeting": '${ "hello " + .name }'}}}]
        ),
        route("greetings", "greet", event_type, "${ {name: .data.name} }"),
        webhook(),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/greet", "--for=condition=Ready", "--timeout=120s")

    def next_run() -> bool:
        got = json.loads(cluster.cp.kubectl("get", "-n", ns, "wfd/greet", "-o", "json").stdout)
        return bool(got["status"].get("nextRun"))

    # The operator made the Temporal Schedule; its next run shows after a statistics pass.
    await wait_for(next_run, 120, "the schedule's next run in the status")
    assert replicas(cluster, ns, task_queue) == 0

    url = cluster.listener_url(ns, "events")
    workflow_id = await post_until_run(
        cluster_temporal,
        url,
        {"eventType": event_type, "source": "e2e", "name": "pods"},
        ns,
        "greet",
    )
    handle = cluster_temporal.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), timeout=180)
    assert result == {"greeting": "hello pods"}
    # KEDA woke the Deployment from zero; a real worker pod ran the flow.
    worker_pods = json.loads(
        cluster.cp.kubectl(
            "get", "pods", "-n", ns, "-l", "temporalflow.dev/component=worker", "-o", "json"
        ).stdout
    )["items"]
    assert worker_pods, "no worker pod ran"
    assert all(p["spec"]["nodeName"] for p in worker_pods)

    # Idle for the cooldown: back to zero pods.
    await wait_for(
        lambda: (
            replicas(cluster, ns, task_queue) == 0
            and not json.loads(
                cluster.cp.kubectl(
                    "get", "pods", "-n", ns, "-l", "temporalflow.dev/component=worker", "-o", "json"
                ).stdout
            )["items"]
        ),
        cooldown_seconds + 120,
        "the workers to go back to zero",
    )


async def test_changed_route_reaches_the_running_root_orchestrator(
    cluster: Cluster, workload_namespace: str, cluster_temporal: Client
) -> None:
    ns = workload_namespace
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    first, second = (f"e2e.route.{uuid.uuid4().hex[:6]}" for _ in range(2))
    apply(
        cluster,
        ns,
        definition("echo", task_queue, [{"echo": {"set": {"seen": "${ .kind }"}}}], minReplicas=1),
        route("echo", "echo", first, '${ {kind: "first"} }'),
        webhook(),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/echo", "--for=condition=Ready", "--timeout=120s")
    orchestrator = json.loads(
        cluster.cp.kubectl(
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            "app.kubernetes.io/component=root-orchestrator",
            "-o",
            "json",
        ).stdout
    )["items"]
    before = {
        (p["metadata"]["uid"], p["status"]["containerStatuses"][0]["restartCount"])
        for p in orchestrator
    }

    url = cluster.listener_url(ns, "events")
    first_id = await post_until_run(
        cluster_temporal, url, {"eventType": first, "source": "e2e"}, ns, "echo"
    )
    assert await cluster_temporal.get_workflow_handle(first_id).result() == {"seen": "first"}

    # The route now matches another type and maps another input.
    apply(cluster, ns, route("echo", "echo", second, '${ {kind: "second"} }'))
    deadline = time.monotonic() + 120
    seen: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            response = await http.post(
                url, json={"eventType": second, "source": "e2e", "id": uuid.uuid4().hex}
            )
            assert response.status_code < 300, response.text
            await asyncio.sleep(3)
            for run in await runs_of(cluster_temporal, ns, "echo"):
                if run.id in seen or run.id == first_id:
                    continue
                seen.add(run.id)
                result = await cluster_temporal.get_workflow_handle(run.id).result()
                if result == {"seen": "second"}:
                    deadline = 0
                    break
    assert deadline == 0, "the changed route never routed an event"

    after = json.loads(
        cluster.cp.kubectl(
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            "app.kubernetes.io/component=root-orchestrator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert {
        (p["metadata"]["uid"], p["status"]["containerStatuses"][0]["restartCount"]) for p in after
    } == before, "the root orchestrator was restarted"


async def test_a_direct_listener_routes_in_its_own_pod(
    cluster: Cluster, workload_namespace: str, cluster_temporal: Client
) -> None:
    ns = workload_namespace
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    event_type = f"e2e.direct.{uuid.uuid4().hex[:6]}"
    apply(
        cluster,
        ns,
        definition("echo", task_queue, [{"echo": {"set": {"got": "${ .n }"}}}], minReplicas=1),
        route("echo", "echo", event_type, "${ {n: .data.n} }"),
        webhook("direct", routing="direct"),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/echo", "--for=condition=Ready", "--timeout=120s")

    # The namespace's own table, where its Listener's pod can mount it (the publisher
    # writes it on its next pass after the Listener appeared).
    def table_published() -> bool:
        got = cluster.cp.kubectl(
            "get", "configmap", "-n", ns, "tflow-namespace-routing", "-o", "json", check=False
        )
        return got.returncode == 0 and "routing-index.json" in json.loads(got.stdout)["data"]

    await wait_for(table_published, 60, "the namespace's routing table")
    url = cluster.listener_url(ns, "direct")
    deadline = time.monotonic() + 180
    answers: list[str] = []
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            event_id = uuid.uuid4().hex
            response = await http.post(
                url, json={"eventType": event_type, "source": "e2e", "id": event_id, "n": 7}
            )
            # 503 until the kubelet mounted the table; unroutable until it holds the route.
            answers.append(f"{response.status_code} {response.text[:200]}")
            if response.status_code == 202 and response.json()["events"][0]["outcome"] == (
                "started"
            ):
                break
            assert response.status_code in (202, 503), response.text
            await asyncio.sleep(3)
        else:
            raise AssertionError(f"the direct Listener never started a run: {answers[-3:]}")
    base = event_workflow_id("e2e", event_id, ns)
    assert response.json()["events"][0]["workflowId"] == base
    run = cluster_temporal.get_workflow_handle(f"{base}/{ns}/echo")
    assert await asyncio.wait_for(run.result(), timeout=180) == {"got": 7}
    # No root orchestrator run for the event.
    with pytest.raises(RPCError) as missing:
        await cluster_temporal.get_workflow_handle(base).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
