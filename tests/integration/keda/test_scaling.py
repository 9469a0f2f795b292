"""The real KEDA operator scales Deployments from zero and back: a worker Deployment on its
Temporal task queue's backlog, and a queue listener's Deployment on its SQS queue.

KEDA (built from its Go module by `make keda`) runs out of cluster against the test
apiserver and polls the session's Temporal dev server through the ``temporal`` trigger
of the ScaledObject `scaled_object_for_workers` builds. The control plane has no kubelet:
the Deployment's pods never run, but its ``spec.replicas`` is exactly what KEDA decided.

- no backlog: the Deployment stays at zero;
- workflows started on the queue with no worker: their workflow tasks are the backlog,
  and KEDA activates the Deployment (0 -> 1);
- an in-process worker drains the backlog by completing the runs; after the cooldown
  KEDA deactivates the Deployment (1 -> 0).

The SQS listener's ScaledObject reads moto's queue with the credentials of the Listener's
Secret, through the TriggerAuthentication `trigger_authentication_for_listener` builds.

A Temporal that demands mutual TLS (a TLS relay in front of the dev server) is read through
the TriggerAuthentication the operator builds from its Temporal client Secret.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from tls_relay import TestPki, TlsRelay

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.keda import KedaOperator
from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.temporal import TemporalServer
from tflow_operator.api.listener import ListenerSpec
from tflow_operator.config import Config
from tflow_operator.keda import (
    Timing,
    scaled_object_for_listener,
    scaled_object_for_workers,
    trigger_authentication_for_listener,
)
from tflow_operator.kube import KubeClient
from tflow_operator.workers import (
    WorkerSettings,
    worker_scaled_object,
    worker_trigger_authentication,
)
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

# Small enough for a test; production defaults are 10 s and 300 s.
FAST = Timing(polling_interval=1, cooldown_period=3)

DOCUMENT: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "scale-me", "version": "1.0.0"},
    "do": [{"hello": {"set": {"greeting": "hi"}}}],
}


def deployment(name: str, namespace: str, command: list[str]) -> dict[str, Any]:
    """A Deployment at zero replicas (its pods would never run here anyway)."""
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "ghcr.io/temporal-flow/test:0",
                            "command": command,
                        }
                    ]
                },
            },
        },
    }


async def replicas(kube: KubeClient, namespace: str, name: str) -> int:
    deployment = await kube.get("apps/v1", "Deployment", namespace, name)
    assert deployment is not None
    return int(deployment["spec"].get("replicas", 1))


async def wait_replicas(
    kube: KubeClient, namespace: str, name: str, want: int, within: float, keda: KedaOperator
) -> float:
    """Seconds until the Deployment has `want` replicas; fails with KEDA's log tail."""
    start = time.monotonic()
    seen: list[int] = []
    while time.monotonic() - start < within:
        current = await replicas(kube, namespace, name)
        if not seen or seen[-1] != current:
            seen.append(current)
        if current == want:
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    assert keda.process is not None
    pytest.fail(
        f"{namespace}/{name} did not reach {want} replicas in {within:.0f}s "
        f"(seen {seen}); KEDA log:\n{keda.process.log_tail(30)}"
    )


async def scaled_object_ready(kube: KubeClient, namespace: str, name: str, within: float) -> None:
    deadline = time.monotonic() + within
    so: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        so = await kube.get("keda.sh/v1alpha1", "ScaledObject", namespace, name)
        conditions = ((so or {}).get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"ScaledObject {namespace}/{name} never became Ready: {so}")


async def test_worker_deployment_scales_from_zero_on_backlog_and_back(
    keda_operator: KedaOperator,
    kube: ControlPlane,
    kube_client: KubeClient,
    namespace: str,
    temporal: TemporalServer,
    temporal_client: Client,
    task_queue: str,
) -> None:
    name = "tflow-worker-scale"
    await kube_client.apply(
        deployment(name, namespace, ["tflow-worker", "--task-queue", task_queue])
    )
    scaled_object = scaled_object_for_workers(
        name=name,
        namespace=namespace,
        deployment=name,
        temporal_address=temporal.address,
        temporal_namespace=temporal.namespace,
        task_queue=task_queue,
        min_replicas=0,
        max_replicas=3,
        target_backlog=5,
        activation_backlog=0,
        owner_references=[],
        timing=FAST,
    )
    await kube_client.apply(scaled_object)
    await scaled_object_ready(kube_client, namespace, name, within=60)

    # KEDA created the HPA that would scale from 1 to N on the same metric.
    hpas = json.loads(kube.kubectl("get", "hpa", "-n", namespace, "-o", "json").stdout)
    assert [h["metadata"]["name"] for h in hpas["items"]] == [f"keda-hpa-{name}"]

    # Idle queue: several polls later the Deployment is still at zero.
    await asyncio.sleep(FAST.polling_interval * 3)
    assert await replicas(kube_client, namespace, name) == 0

    # Runs with no worker: their first workflow tasks wait in the queue (the backlog).
    ids = [f"keda-{uuid.uuid4()}" for _ in range(3)]
    handles = [
        await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=DOCUMENT),
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=5),
        )
        for workflow_id in ids
    ]
    up = await wait_replicas(kube_client, namespace, name, 1, 60, keda_operator)

    # A worker drains the queue; once the backlog is gone KEDA waits for the cooldown and
    # goes back to zero.
    async with build_worker(temporal_client, task_queue):
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=60)
        assert all(r == {"greeting": "hi"} for r in results), results
        down = await wait_replicas(kube_client, namespace, name, 0, 60, keda_operator)
    print(f"0 -> 1 after {up:.1f}s of backlog; 1 -> 0 {down:.1f}s after the drain")


async def test_sqs_listener_scales_from_zero_on_messages_and_back(
    keda_operator: KedaOperator,
    kube_client: KubeClient,
    namespace: str,
    moto: MotoServer,
) -> None:
    sqs = moto.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"keda-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    await kube_client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "aws", "namespace": namespace},
            "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        }
    )
    spec = ListenerSpec.model_validate(
        {
            "type": "sqs",
            "sqs": {
                "queueUrl": queue_url,
                "region": REGION,
                "endpointUrl": moto.endpoint_url,
                "credentialsSecretRef": {"name": "aws"},
            },
            "scaling": {"minReplicas": 0, "maxReplicas": 2},
        }
    )
    name = "tflow-listener-sqs"
    await kube_client.apply(deployment(name, namespace, ["python", "-m", "tflow_listeners", "sqs"]))
    await kube_client.apply(trigger_authentication_for_listener(name, namespace, spec, []))
    await kube_client.apply(
        scaled_object_for_listener(
            name, namespace, name, spec, [], target_queue_length=5, timing=FAST
        )
    )
    await scaled_object_ready(kube_client, namespace, name, within=60)
    await asyncio.sleep(FAST.polling_interval * 3)
    assert await replicas(kube_client, namespace, name) == 0

    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"n": i}))
    await wait_replicas(kube_client, namespace, name, 1, 60, keda_operator)

    sqs.purge_queue(QueueUrl=queue_url)
    await wait_replicas(kube_client, namespace, name, 0, 60, keda_operator)


async def test_worker_scaling_reads_the_backlog_through_mutual_tls(
    keda_operator: KedaOperator,
    kube_client: KubeClient,
    namespace: str,
    temporal: TemporalServer,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    pki = TestPki(tmp_path)
    keda_cert = pki.issue("keda", server=False)
    # KEDA checks the server's certificate against the endpoint's host name.
    server = pki.issue("localhost", server=True)
    async with TlsRelay(temporal.address, server, client_ca=pki.ca) as relay:
        port = relay.address.rsplit(":", 1)[1]
        config = Config(
            worker_temporal_address=f"localhost:{port}",
            temporal_namespace=temporal.namespace,
            temporal_client_secret="temporal-client",
            worker_polling_seconds=FAST.polling_interval,
            worker_cooldown_seconds=FAST.cooldown_period,
        )
        # The Secret the workers of this namespace load with envFrom.
        await kube_client.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "temporal-client", "namespace": namespace},
                "stringData": {
                    "TEMPORAL_TLS_CLIENT_CERT_DATA": keda_cert.cert.read_text(),
                    "TEMPORAL_TLS_CLIENT_KEY_DATA": keda_cert.key.read_text(),
                    "TEMPORAL_TLS_SERVER_CA_CERT_DATA": pki.ca.read_text(),
                },
            }
        )
        settings = WorkerSettings(
            image="ghcr.io/temporal-flow/test:0",
            resources=None,
            env=(),
            min_replicas=0,
            max_replicas=3,
            target_backlog=5,
            activation_backlog=0,
        )
        auth = worker_trigger_authentication(namespace, task_queue, config)
        assert auth is not None
        scaled = worker_scaled_object(namespace, task_queue, settings, config)
        name = scaled["metadata"]["name"]
        await kube_client.apply(
            deployment(name, namespace, ["tflow-worker", "--task-queue", task_queue])
        )
        await kube_client.apply(auth)
        await kube_client.apply(scaled)
        await scaled_object_ready(kube_client, namespace, name, within=60)
        await asyncio.sleep(FAST.polling_interval * 3)
        assert await replicas(kube_client, namespace, name) == 0

        # The backlog is only visible through the relay, which admits nobody without a
        # client certificate of its CA: activation proves KEDA presented the Secret's.
        handles = [
            await temporal_client.start_workflow(
                WORKFLOW_TYPE,
                RunInput(document=DOCUMENT),
                id=f"keda-mtls-{uuid.uuid4()}",
                task_queue=task_queue,
                execution_timeout=timedelta(minutes=5),
            )
            for _ in range(2)
        ]
        try:
            await wait_replicas(kube_client, namespace, name, 1, 60, keda_operator)
        finally:
            for handle in handles:
                await handle.terminate()
