"""The real servers the rest of the suite stands on: each one does real work here."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

import psycopg
import pytest
from greeting import GreetingWorkflow, greet
from polling import eventually
from temporalio.client import Client
from temporalio.worker import Worker

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.moto import MotoServer
from tflow_devstack.postgres import PostgresServer

pytestmark = pytest.mark.integration


async def test_temporal_runs_a_workflow(temporal_client: Client, task_queue: str) -> None:
    async with Worker(
        temporal_client, task_queue=task_queue, workflows=[GreetingWorkflow], activities=[greet]
    ):
        result = await temporal_client.execute_workflow(
            GreetingWorkflow.run,
            "temporal flow",
            id=f"greet-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert result == "hello, temporal flow"


def test_bucket_notification_reaches_sqs(moto: MotoServer, bucket: str) -> None:
    sqs = moto.client("sqs")
    s3 = moto.client("s3")
    queue_url = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    s3.put_object(Bucket=bucket, Key="uploads/invoice.pdf", Body=b"%PDF-1.7")

    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not records:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            # S3 first sends an s3:TestEvent when the configuration is set.
            records += body.get("Records", [])
    # Keys in S3 notifications are URL-encoded, as AWS sends them.
    assert [unquote_plus(r["s3"]["object"]["key"]) for r in records] == ["uploads/invoice.pdf"]
    assert records[0]["eventName"].startswith("ObjectCreated:")
    assert records[0]["s3"]["bucket"]["name"] == bucket


def test_postgres_answers(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("CREATE TEMP TABLE payments (id text PRIMARY KEY, cents int)")
        conn.execute("INSERT INTO payments VALUES ('pay-1', 1250)")
        conn.execute("INSERT INTO payments VALUES ('pay-1', 1250) ON CONFLICT DO NOTHING")
        row = conn.execute("SELECT count(*), sum(cents) FROM payments").fetchone()
    assert row == (1, 1250)


def test_controllers_run_deployments_and_collect_garbage(
    kube: ControlPlane, namespace: str
) -> None:
    kube.kubectl(
        "create",
        "deployment",
        "web",
        "--image=example.invalid/web:1",
        "--replicas=2",
        "-n",
        namespace,
    )

    def pods() -> list[str]:
        out = kube.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout
        return out.split()

    # deployment controller -> ReplicaSet; replicaset controller -> Pods (never scheduled:
    # there is no kubelet).
    eventually(lambda: len(pods()) == 2)
    rs = kube.kubectl("get", "replicasets", "-n", namespace, "-o", "name").stdout.split()
    assert len(rs) == 1

    kube.kubectl("delete", "deployment", "web", "-n", namespace, "--cascade=background")
    # The garbage collector removes the ReplicaSet and its Pods through owner references.
    eventually(
        lambda: (
            not kube.kubectl(
                "get", "replicasets,pods", "-n", namespace, "-o", "name"
            ).stdout.split()
        )
    )


def test_rbac_is_enforced(kube: ControlPlane, namespace: str) -> None:
    kube.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    who = f"--as=system:serviceaccount:{namespace}:nobody"
    denied = kube.kubectl("get", "pods", "-n", namespace, who, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr
    kube.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace
    )
    kube.kubectl(
        "create",
        "rolebinding",
        "nobody-reads",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:nobody",
        "-n",
        namespace,
    )
    eventually(
        lambda: kube.kubectl("get", "pods", "-n", namespace, who, check=False).returncode == 0
    )
