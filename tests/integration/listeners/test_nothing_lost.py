"""Nothing lost, nothing doubled: events sent through the webhook and through SQS while the
SQS listener is killed (SIGKILL) once mid-way and the Temporal server is restarted once
(the dev server keeps its state in a SQLite file, so a restart loses nothing). Afterwards
every event has exactly one RootOrchestratorWorkflow run: none missing, none duplicated.

Both listeners run as real processes (`python -m tflow_listeners sqs|webhook`) against
moto's SQS server and a Temporal dev server of this test's own (so restarting it disturbs
no other test). A webhook event counts as sent only once it was answered 202; the sender
retries on 503 and on connection errors, as a real one would.

Size: `TFLOW_NOTHING_LOST_EVENTS` events per channel (default 200); `make
test-nothing-lost` runs 1000 + 1000.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.cloudevents import event_workflow_id
from tflow_workers.connection import connect

EVENTS = int(os.environ.get("TFLOW_NOTHING_LOST_EVENTS", "200"))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240 + EVENTS)]
TASK_QUEUE = "nothing-lost-router"
LISTENER = [sys.executable, "-m", "tflow_listeners"]
SQS_SOURCE = "nothing-lost/sqs"
WEBHOOK_SOURCE = "nothing-lost/webhook"
# Sending is paced so the kill and the restart land while events are in flight.
SEND_SECONDS = max(12.0, EVENTS / 25)


@pytest.fixture
def own_temporal(tmp_path: Path) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path / "temporal", headless=True).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Listener:
    name: str
    argv: list[str]
    port: int
    log_dir: Path
    env: dict[str, str]
    process: ManagedProcess | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        self.process = ManagedProcess(
            self.name,
            self.argv,
            self.log_dir / f"{self.name}-{self.starts}.log",
            env=self.env,
            cwd=REPO_ROOT,
        ).start()
        self.process.wait_until(self.ready, 60, "ready")

    def ready(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200

    def kill(self) -> None:
        assert self.process is not None
        assert self.process.proc is not None
        os.killpg(self.process.proc.pid, signal.SIGKILL)
        self.process.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Progress:
    began: float = field(default_factory=time.monotonic)
    sqs_sent: int = 0
    webhook_sent: int = 0
    webhook_retries: int = 0
    webhook_latencies: list[float] = field(default_factory=list)
    chaos: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.chaos.append(f"{time.monotonic() - self.began:.1f}s {what}")


async def send_sqs(moto: MotoServer, queue_url: str, ids: list[str], progress: Progress) -> None:
    sqs = moto.client("sqs")
    batches = [ids[i : i + 10] for i in range(0, len(ids), 10)]
    pace = SEND_SECONDS / max(len(batches), 1)
    for batch in batches:
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    {"eventType": "nothing-lost", "source": SQS_SOURCE, "id": event_id}
                ),
            }
            for i, event_id in enumerate(batch)
        ]
        response = await asyncio.to_thread(
            sqs.send_message_batch, QueueUrl=queue_url, Entries=entries
        )
        assert not response.get("Failed"), response
        progress.sqs_sent += len(batch)
        await asyncio.sleep(pace)


async def send_webhook(url: str, ids: list[str], progress: Progress) -> None:
    pace = SEND_SECONDS / max(len(ids), 1)
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as http:

        async def post(event_id: str) -> None:
            body = {"eventType": "nothing-lost", "source": WEBHOOK_SOURCE, "id": event_id}
            async with limit:
                delay = 0.2
                first = time.monotonic()
                while True:
                    try:
                        response = await http.post(url, json=body)
                        if response.status_code == 202:
                            progress.webhook_sent += 1
                            progress.webhook_latencies.append(time.monotonic() - first)
                            return
                        assert response.status_code in (502, 503, 504), response.text
                    except httpx.TransportError:
                        pass
                    progress.webhook_retries += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)

        tasks = []
        for event_id in ids:
            tasks.append(asyncio.create_task(post(event_id)))
            await asyncio.sleep(pace)
        await asyncio.gather(*tasks)


async def kill_sqs_listener(listener: Listener, progress: Progress) -> None:
    """SIGKILL the SQS listener a fifth of the way through the sending, then start it
    again."""
    await asyncio.sleep(SEND_SECONDS * 0.2)
    listener.kill()
    progress.note(f"SQS listener killed ({progress.sqs_sent} SQS events sent)")
    await asyncio.sleep(0.5)
    await asyncio.to_thread(listener.start)
    progress.note(f"SQS listener restarted ({progress.sqs_sent} SQS events sent)")


async def restart_temporal(temporal: TemporalServer, progress: Progress) -> None:
    """Stop and start the Temporal server 60% of the way through the sending."""
    await asyncio.sleep(SEND_SECONDS * 0.6)
    progress.note(f"Temporal stopping ({progress.webhook_sent} webhook events sent)")
    await asyncio.to_thread(temporal.restart)
    progress.note(f"Temporal restarted ({progress.webhook_sent} webhook events sent)")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


async def queue_drained(moto: MotoServer, queue_url: str, within: float) -> None:
    sqs = moto.client("sqs")
    deadline = time.monotonic() + within
    left = -1
    while time.monotonic() < deadline:
        attributes = (
            await asyncio.to_thread(
                sqs.get_queue_attributes,
                QueueUrl=queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        )["Attributes"]
        left = sum(int(v) for v in attributes.values())
        if left == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{left} messages still in the queue after {within}s")


async def runs_by_id(client: Client, expected: int, within: float) -> dict[str, int]:
    """Workflow id -> number of RootOrchestratorWorkflow runs, once visibility has caught
    up with `expected` runs (or the time is up)."""
    deadline = time.monotonic() + within
    while True:
        counts: dict[str, int] = {}
        async for run in client.list_workflows(
            "WorkflowType = 'RootOrchestratorWorkflow'", page_size=1000
        ):
            counts[run.id] = counts.get(run.id, 0) + 1
        if sum(counts.values()) >= expected or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.5)


async def test_nothing_lost_through_kill_and_restart(
    moto: MotoServer, own_temporal: TemporalServer, tmp_path: Path
) -> None:
    began = time.monotonic()
    sqs = moto.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"nothing-lost-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    common = ["--address", own_temporal.address, "--task-queue", TASK_QUEUE]
    sqs_port, webhook_port = free_port(), free_port()
    sqs_listener = Listener(
        "sqs-listener",
        [
            *LISTENER,
            "sqs",
            "--queue-url",
            queue_url,
            "--endpoint-url",
            moto.endpoint_url,
            "--region",
            REGION,
            "--wait-time-seconds",
            "1",
            # Short, so the messages the killed listener held come back soon.
            "--visibility-timeout-seconds",
            "5",
            "--retry-delay-seconds",
            "1",
            "--port",
            str(sqs_port),
            *common,
        ],
        sqs_port,
        tmp_path,
        env,
    )
    webhook = Listener(
        "webhook-listener",
        [
            *LISTENER,
            "webhook",
            "--port",
            str(webhook_port),
            "--retry-after",
            "1",
            *common,
        ],
        webhook_port,
        tmp_path,
        env,
    )
    sqs_ids = [f"sqs-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(EVENTS)]
    webhook_ids = [f"web-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(EVENTS)]
    sqs_listener.start()
    webhook.start()
    progress = Progress()
    try:
        await asyncio.gather(
            send_sqs(moto, queue_url, sqs_ids, progress),
            send_webhook(f"http://127.0.0.1:{webhook_port}/events", webhook_ids, progress),
            kill_sqs_listener(sqs_listener, progress),
            restart_temporal(own_temporal, progress),
        )
        sent_at = time.monotonic() - began
        assert progress.webhook_sent == EVENTS
        await queue_drained(moto, queue_url, within=120 + EVENTS / 5)
        drained_at = time.monotonic() - began
    finally:
        sqs_listener.stop()
        webhook.stop()
    # SIGTERM is a graceful stop: in-flight messages settled, exit code 0.
    for listener in (sqs_listener, webhook):
        assert listener.process is not None
        assert listener.process.proc is not None
        assert listener.process.proc.returncode == 0, listener.process.log_tail()

    client = await connect(own_temporal.address, own_temporal.namespace)
    expected = {event_workflow_id(SQS_SOURCE, i) for i in sqs_ids} | {
        event_workflow_id(WEBHOOK_SOURCE, i) for i in webhook_ids
    }
    counts = await runs_by_id(client, len(expected), within=30)
    missing = expected - counts.keys()
    doubled = {wid: n for wid, n in counts.items() if n > 1}
    unexpected = counts.keys() - expected
    # And each expected run is there when asked directly, not only in visibility.
    for workflow_id in sorted(missing)[:5]:
        with pytest.raises(RPCError):
            await client.get_workflow_handle(workflow_id).describe()
    summary = {
        "events_per_channel": EVENTS,
        "runs": sum(counts.values()),
        "missing": len(missing),
        "duplicated": len(doubled),
        "unexpected": len(unexpected),
        "webhook_retries": progress.webhook_retries,
        "webhook_p50_s": round(percentile(progress.webhook_latencies, 0.5), 3),
        "webhook_max_s": round(max(progress.webhook_latencies), 3),
        "chaos": progress.chaos,
        "sent_s": round(sent_at, 1),
        "drained_s": round(drained_at, 1),
        "total_s": round(time.monotonic() - began, 1),
    }
    print("nothing-lost:", json.dumps(summary))
    assert len(progress.chaos) == 4, progress.chaos
    assert not missing, f"{len(missing)} events have no run, e.g. {sorted(missing)[:3]}"
    assert not doubled, f"{len(doubled)} events have several runs: {list(doubled.items())[:3]}"
    assert not unexpected
    assert sum(counts.values()) == 2 * EVENTS
    sqs.delete_queue(QueueUrl=queue_url)
