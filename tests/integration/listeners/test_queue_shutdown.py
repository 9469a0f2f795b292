"""SIGTERM while the SQS listener hands off a batch: the process (`python -m tflow_listeners
sqs`, whose `__main__` is the one owner of the signal) finishes the batch in flight,
deletes what Temporal accepted, gives back what it had not started, and exits 0. Nothing
is left invisible and nothing is lost: every event has its run, or its message is back in
moto's queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.cloudevents import event_workflow_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MESSAGES = 20
# A batch of 10 messages is 250 starts: long enough for the signal to land in it.
EVENTS_PER_MESSAGE = 25
SOURCE = "shutdown-test"


def metric(port: int, name: str) -> float:
    """The sum of a metric's series on the listener's /metrics (0 before any)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


async def test_sigterm_during_a_batch_settles_it(
    moto: MotoServer,
    queue: str,
    temporal: TemporalServer,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    cleanup_runs: list[str],
) -> None:
    sqs = moto.client("sqs")
    events: dict[str, list[str]] = {}  # message body's first id -> its event ids
    for start in range(0, MESSAGES, 10):
        entries = []
        for i in range(start, start + 10):
            ids = [f"m{i:02d}-e{j:02d}-{uuid.uuid4().hex[:6]}" for j in range(EVENTS_PER_MESSAGE)]
            events[ids[0]] = ids
            body = [{"eventType": "shutdown", "source": SOURCE, "id": e} for e in ids]
            entries.append({"Id": str(i), "MessageBody": json.dumps(body)})
        assert not sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed")

    port = free_port()
    process = ManagedProcess(
        "sqs-listener",
        [
            *(sys.executable, "-m", "tflow_listeners", "sqs"),
            *("--queue-url", queue, "--endpoint-url", moto.endpoint_url, "--region", REGION),
            *("--wait-time-seconds", "1", "--max-messages", "10", "--pollers", "1"),
            *("--visibility-timeout-seconds", "60", "--port", str(port)),
            *("--address", temporal.address, "--namespace", temporal.namespace),
            *("--task-queue", task_queue, "--log-format", "text"),
        ],
        tmp_path / "sqs-listener.log",
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        },
        cwd=REPO_ROOT,
    ).start()
    try:
        process.wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success, 60
        )
        # Wait until a batch is being handed off, some of its events already started.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            in_flight = metric(port, "tflow_listener_queue_in_flight")
            started = metric(port, "tflow_listener_events_total")
            if in_flight > 0 and started > 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no batch in flight within 60s:\n" + process.log_tail())
        acknowledged = metric(port, "tflow_listener_queue_acknowledged_total")
        assert process.proc is not None
        os.killpg(process.proc.pid, signal.SIGTERM)
        assert process.proc.wait(timeout=60) == 0, process.log_tail()
    finally:
        process.stop()
    log = (tmp_path / "sqs-listener.log").read_text()
    assert "stopping: settling" in log, log[-2000:]

    # Settled: no message is left invisible (held by the stopped process).
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", attributes
    left: dict[str, list[str]] = {}
    while len(left) < int(attributes["ApproximateNumberOfMessages"]):
        response = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            ids = [e["id"] for e in json.loads(message["Body"])]
            left[ids[0]] = ids
    # The batch in flight at the signal was finished and deleted, not dropped or given back.
    assert MESSAGES - len(left) >= acknowledged + in_flight

    # None lost: every event of a deleted message has its run; the rest are in the queue.
    for first, ids in events.items():
        if first in left:
            continue
        for event_id in ids:
            workflow_id = event_workflow_id(SOURCE, event_id)
            cleanup_runs.append(workflow_id)
            described = await temporal_client.get_workflow_handle(workflow_id).describe()
            assert described.task_queue == task_queue
