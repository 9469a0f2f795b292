"""Workloads in real pods under load and failure: a backlog of many runs scales the worker
Deployment past one pod (KEDA's metrics apiserver feeding the HorizontalPodAutoscaler); a
worker pod deleted mid-run (SIGTERM with its grace period) loses nothing; the operator pod
deleted mid-reconcile comes back and converges; an SQS Listener in a pod drains moto's
queue into runs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tflow_devstack.cluster import SYSTEM_NAMESPACE, Cluster
from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import free_port
from workloads import (
    apply,
    definition,
    post_until_run,
    replicas,
    route,
    runs_of,
    stuck_runs,
    wait_for,
    webhook,
)

# Pods start, KEDA polls, cooldowns pass: minutes, not the suite's default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SLOW_SECONDS = 4


class SlowService:
    """An HTTP endpoint on this machine that answers after a few seconds, so calls queue up
    behind workers that run one at a time; reached from pods at the node's address."""

    def __init__(self, cluster: Cluster) -> None:
        self.hits = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.hits += 1
                time.sleep(SLOW_SECONDS)
                body = json.dumps({"slow": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        assert cluster.node is not None
        self.url = f"http://{cluster.node.expose(port)}/slow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def slow_service(cluster: Cluster) -> Iterator[SlowService]:
    service = SlowService(cluster)
    try:
        yield service
    finally:
        service.close()


def slow_flow(url: str) -> list[dict[str, Any]]:
    return [
        {"wait-for-it": {"call": "http", "with": {"method": "get", "endpoint": url}}},
        {"done": {"set": {"done": True}}},
    ]


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        cluster.cp.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    )["items"]
    return items


async def test_a_backlog_of_many_runs_scales_workers_past_one_pod(
    cluster: Cluster, workload_namespace: str, cluster_temporal: Client, slow_service: SlowService
) -> None:
    ns = workload_namespace
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    event_type = f"e2e.slow.{uuid.uuid4().hex[:6]}"
    apply(
        cluster,
        ns,
        definition(
            "slow",
            task_queue,
            slow_flow(slow_service.url),
            maxReplicas=3,
            env=[{"name": "TFLOW_MAX_CONCURRENT_ACTIVITIES", "value": "1"}],
        ),
        route("slow", "slow", event_type, "${ {} }"),
        webhook(),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/slow", "--for=condition=Ready", "--timeout=120s")
    url = cluster.listener_url(ns, "events")
    event = {"eventType": event_type, "source": "e2e"}
    await post_until_run(cluster_temporal, url, event, ns, "slow")
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(17):
            answer = await http.post(url, json={**event, "id": uuid.uuid4().hex})
            assert answer.status_code < 300, answer.text

    most = 0

    def scaled_out() -> bool:
        nonlocal most
        most = max(most, replicas(cluster, ns, task_queue))
        return most >= 2

    await wait_for(scaled_out, 180, "a second ready worker pod under the backlog")
    # The HPA KEDA made is what asked for more than one.
    hpa = json.loads(cluster.cp.kubectl("get", "hpa", "-n", ns, "-o", "json").stdout)["items"]
    assert hpa
    assert hpa[0]["status"].get("desiredReplicas", 0) >= 2, hpa

    async def all_done() -> bool:
        runs = await runs_of(cluster_temporal, ns, "slow")
        return len(runs) >= 18 and all(r.status == WorkflowExecutionStatus.COMPLETED for r in runs)

    deadline = time.monotonic() + 300
    while not await all_done():
        if time.monotonic() > deadline:
            pytest.fail(
                "the runs under the backlog did not all complete:\n"
                + await stuck_runs(cluster_temporal, ns, "slow")
                + "\nworker pods:\n"
                + cluster.cp.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout
            )
        await asyncio.sleep(2)
    assert slow_service.hits >= 18


async def test_a_worker_pod_deleted_mid_run_loses_nothing(
    cluster: Cluster, workload_namespace: str, cluster_temporal: Client, slow_service: SlowService
) -> None:
    ns = workload_namespace
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    event_type = f"e2e.kill.{uuid.uuid4().hex[:6]}"
    apply(
        cluster,
        ns,
        definition("killed", task_queue, slow_flow(slow_service.url), minReplicas=1),
        route("killed", "killed", event_type, "${ {} }"),
        webhook(),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/killed", "--for=condition=Ready", "--timeout=120s")
    selector = "temporalflow.dev/component=worker"
    await wait_for(lambda: replicas(cluster, ns, task_queue) >= 1, 120, "a ready worker pod")
    before = {p["metadata"]["name"] for p in pods(cluster, ns, selector)}
    url = cluster.listener_url(ns, "events")
    workflow_id = await post_until_run(
        cluster_temporal, url, {"eventType": event_type, "source": "e2e"}, ns, "killed"
    )
    await wait_for(lambda: slow_service.hits >= 1, 120, "the run's call in flight")
    # SIGTERM with the pod's grace period, while the call is in flight.
    cluster.cp.kubectl("delete", "pods", "-n", ns, "-l", selector, "--wait=false")
    result = await asyncio.wait_for(
        cluster_temporal.get_workflow_handle(workflow_id).result(), timeout=240
    )
    assert result == {"done": True}
    await wait_for(
        lambda: bool({p["metadata"]["name"] for p in pods(cluster, ns, selector)} - before),
        120,
        "a replacement worker pod",
    )


async def test_the_operator_pod_deleted_mid_reconcile_comes_back_and_converges(
    cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    selector = "app.kubernetes.io/component=operator"
    before = {p["metadata"]["name"] for p in pods(cluster, SYSTEM_NAMESPACE, selector)}

    def batch(first: int, count: int) -> list[dict[str, Any]]:
        return [
            definition(
                f"restart-{i}",
                f"e2e-restart-{i}-{uuid.uuid4().hex[:6]}",
                [{"noop": {"set": {"i": i}}}],
            )
            for i in range(first, first + count)
        ]

    apply(cluster, ns, *batch(0, 5))
    # Killed at once (no grace), while it works through the batch.
    cluster.cp.kubectl(
        "delete", "pods", "-n", SYSTEM_NAMESPACE, "-l", selector, "--grace-period=0", "--force"
    )
    # Created while no operator runs: only the replacement can reconcile these.
    apply(cluster, ns, *batch(5, 3))
    await wait_for(
        lambda: any(
            p["metadata"]["name"] not in before
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
            for p in pods(cluster, SYSTEM_NAMESPACE, selector)
        ),
        180,
        "a replacement operator pod, Ready",
    )
    for i in range(8):
        cluster.cp.kubectl(
            "wait", "-n", ns, f"wfd/restart-{i}", "--for=condition=Ready", "--timeout=240s"
        )
    after = pods(cluster, SYSTEM_NAMESPACE, selector)
    assert after
    assert {p["metadata"]["name"] for p in after}.isdisjoint(before)


@pytest.fixture
def moto_on_node(cluster: Cluster, tmp_path: Any) -> Iterator[tuple[MotoServer, str]]:
    server = MotoServer(tmp_path / "moto").start()
    assert cluster.node is not None
    try:
        yield server, f"http://{cluster.node.expose(server.port)}"
    finally:
        server.stop()


async def test_an_sqs_listener_pod_drains_the_queue_into_runs(
    cluster: Cluster,
    workload_namespace: str,
    cluster_temporal: Client,
    moto_on_node: tuple[MotoServer, str],
) -> None:
    ns = workload_namespace
    _, endpoint = moto_on_node
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    queue_url = sqs.create_queue(QueueName=f"e2e-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    event_type = f"e2e.sqs.{uuid.uuid4().hex[:6]}"
    apply(
        cluster,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sqs-credentials"},
            "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        },
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "Listener",
            "metadata": {"name": "queue"},
            "spec": {
                "type": "sqs",
                "sqs": {
                    "queueUrl": queue_url,
                    "region": REGION,
                    "endpointUrl": endpoint,
                    "credentialsSecretRef": {"name": "sqs-credentials"},
                    "waitTimeSeconds": 1,
                },
            },
        },
        definition("queued", task_queue, [{"keep": {"set": {"n": "${ .n }"}}}], minReplicas=1),
        route("queued", "queued", event_type, "${ {n: .data.n} }"),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/queued", "--for=condition=Ready", "--timeout=120s")
    cluster.cp.kubectl("wait", "-n", ns, "lsn/queue", "--for=condition=Ready", "--timeout=180s")
    listener_pods = pods(cluster, ns, "temporalflow.dev/listener=queue")
    assert listener_pods
    assert all(p["spec"]["nodeName"] for p in listener_pods)

    # Routed once the table reaches the root orchestrator; send until the first run shows.
    deadline = time.monotonic() + 120
    sent = 0
    while not await runs_of(cluster_temporal, ns, "queued"):
        assert time.monotonic() < deadline, "no run from the SQS listener"
        body = {"eventType": event_type, "source": "e2e", "n": sent}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
        sent += 1
        await asyncio.sleep(3)
    for n in range(sent, sent + 10):
        body = {"eventType": event_type, "source": "e2e", "n": n}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    total = sent + 10

    async def drained() -> bool:
        runs = await runs_of(cluster_temporal, ns, "queued")
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        left = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        return len(runs) >= total - (sent - 1) and left == 0

    deadline = time.monotonic() + 180
    while not await drained():
        assert time.monotonic() < deadline, "the SQS listener did not drain the queue into runs"
        await asyncio.sleep(2)


def test_a_worker_image_that_cannot_be_pulled_shows_in_the_definition_status(
    cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    apply(
        cluster,
        ns,
        definition(
            "unpullable",
            f"e2e-{uuid.uuid4().hex[:8]}",
            [{"noop": {"set": {"ok": True}}}],
            minReplicas=1,
            # Nothing serves a registry here, so the kubelet's pull fails at once.
            image="localhost/temporal-flow-missing:0",
        ),
    )

    def reason() -> str:
        got = json.loads(cluster.cp.kubectl("get", "-n", ns, "wfd/unpullable", "-o", "json").stdout)
        ready = [c for c in got.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return f"{ready[0]['status']}:{ready[0].get('reason', '')}" if ready else ""

    deadline = time.monotonic() + 180
    while reason() not in ("False:ErrImagePull", "False:ImagePullBackOff"):
        assert time.monotonic() < deadline, f"Ready never named the pull failure: {reason()}"
        time.sleep(2)
