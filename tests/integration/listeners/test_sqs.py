"""The SQS listener against moto's real SQS server and the real Temporal dev server: an S3
upload reaches a RootOrchestratorWorkflow, messages are deleted only after Temporal
accepted, redeliveries are duplicates, Temporal outages keep messages, poison messages
reach a dead-letter queue, and slow hand-offs keep their messages invisible."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import free_port
from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.metrics import Submitter, TemporalHealth
from tflow_listeners.queue import QueueListener
from tflow_listeners.settlement import Settled, Verdict
from tflow_listeners.sqs import (
    DLQ_REASON_ATTRIBUTE,
    SqsQueue,
    SqsSettings,
    sqs_client,
)
from tflow_workers.cloudevents import CloudEvent, event_workflow_id

pytestmark = pytest.mark.integration


@dataclass
class Recorder:
    """Wraps a submitter: records every event and outcome, optionally slowly."""

    inner: Submitter
    delay: float = 0.0
    seen: list[tuple[CloudEvent, Outcome]] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)

    async def submit(self, event: CloudEvent) -> Outcome:
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = await self.inner.submit(event)
        self.seen.append((event, outcome))
        self.timeline.append(f"submitted {event.id}")
        return outcome


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    """A mounted-Secret-like directory of AWS credential files."""
    directory = tmp_path / "aws"
    directory.mkdir()
    (directory / "AWS_ACCESS_KEY_ID").write_text(ACCESS_KEY + "\n")
    (directory / "AWS_SECRET_ACCESS_KEY").write_text(SECRET_KEY)
    return directory


SqsListener = QueueListener[Any]
ListenerFactory = Callable[..., SqsListener]


def sqs_of(listener: SqsListener) -> SqsQueue:
    assert isinstance(listener.source, SqsQueue)
    return listener.source


@pytest.fixture
def make_listener(moto: MotoServer, credentials_dir: Path) -> Iterator[ListenerFactory]:
    made: list[SqsQueue] = []

    def make(queue_url: str, submitter: Submitter, **settings: Any) -> SqsListener:
        config = SqsSettings(
            queue_url=queue_url,
            region=REGION,
            endpoint_url=moto.endpoint_url,
            wait_time_seconds=settings.pop("wait_time_seconds", 1),
            **settings,
        )
        queue = SqsQueue(sqs_client(config, credentials_dir), config)
        made.append(queue)
        return QueueListener(queue, submitter, pollers=config.pollers)

    yield make
    for queue in made:
        queue.close()


def queue_counts(moto: MotoServer, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = moto.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


async def poll_until(
    listener: SqsListener, done: Callable[[list[Settled]], bool], within: float = 20.0
) -> list[Settled]:
    settled: list[Settled] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        settled += await listener.poll_once()
        if done(settled):
            return settled
    raise AssertionError(f"not done within {within}s: {settled}")


def plain_event(**extra: Any) -> str:
    return json.dumps(
        {"eventType": "incident", "source": "monitoring", "id": uuid.uuid4().hex, **extra}
    )


async def test_s3_upload_starts_one_root_orchestrator(
    moto: MotoServer,
    bucket: str,
    queue: str,
    make_listener: ListenerFactory,
    temporal_client: Client,
    task_queue: str,
    cleanup_runs: list[str],
) -> None:
    sqs, s3 = moto.client("sqs"), moto.client("s3")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    s3.put_object(Bucket=bucket, Key="uploads/annual report.pdf", Body=b"%PDF-1.7")

    recorder = Recorder(HandOff(temporal_client, task_queue))
    listener = make_listener(queue, recorder)
    sqs_of(listener).sqs.meta.events.register(
        "before-call.sqs.DeleteMessageBatch", lambda **_: recorder.timeline.append("delete")
    )
    settled = await poll_until(listener, lambda s: any(r.verdict is Verdict.ACCEPTED for r in s))

    # S3's s3:TestEvent (sent when the configuration is set) is deleted, routing nothing.
    verdicts = sorted(r.verdict.value for r in settled)
    assert verdicts == ["accepted", "nothing"]
    assert all(r.acknowledged for r in settled)
    [(event, outcome)] = recorder.seen
    assert outcome == "started"
    cleanup_runs.append(event_workflow_id(event.source, event.id))
    assert "annual report.pdf" in json.dumps(event.data)
    # The accepted message was deleted only after its event was handed off.
    assert recorder.timeline.index(f"submitted {event.id}") < recorder.timeline.index("delete")

    described = await temporal_client.get_workflow_handle(
        event_workflow_id(event.source, event.id)
    ).describe()
    assert described.workflow_type == "RootOrchestratorWorkflow"
    assert described.task_queue == task_queue
    assert queue_counts(moto, queue) == (0, 0)


async def test_redelivered_body_is_a_duplicate(
    moto: MotoServer,
    queue: str,
    make_listener: ListenerFactory,
    temporal_client: Client,
    task_queue: str,
    cleanup_runs: list[str],
) -> None:
    sqs = moto.client("sqs")
    # An S3 notification as SNS delivers it (not raw), sent twice.
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "docs", "arn": "arn:aws:s3:::docs"},
            "object": {"key": f"in/{uuid.uuid4().hex}.pdf", "size": 8, "sequencer": "0A1B2C"},
        },
    }
    body = json.dumps(
        {
            "Type": "Notification",
            "MessageId": uuid.uuid4().hex,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads",
            "Message": json.dumps({"Records": [record]}),
        }
    )
    recorder = Recorder(HandOff(temporal_client, task_queue))
    listener = make_listener(queue, recorder)
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        await poll_until(listener, lambda s: len(s) == 1)

    assert [outcome for _, outcome in recorder.seen] == ["started", "duplicate"]
    first, second = (event for event, _ in recorder.seen)
    assert (first.source, first.id) == (second.source, second.id)
    workflow_id = event_workflow_id(first.source, first.id)
    cleanup_runs.append(workflow_id)
    runs = [
        run
        async for run in temporal_client.list_workflows(
            f"WorkflowType = 'RootOrchestratorWorkflow' AND TaskQueue = '{task_queue}'"
        )
    ]
    assert [run.id for run in runs] == [workflow_id]
    assert queue_counts(moto, queue) == (0, 0)


async def test_test_event_is_deleted_without_a_workflow(
    moto: MotoServer, queue: str, make_listener: ListenerFactory, temporal_client: Client
) -> None:
    sqs = moto.client("sqs")
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps(
            {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Time": "2025-01-01T00:00:00.000Z",
                "Bucket": "docs",
                "RequestId": "R",
                "HostId": "H",
            }
        ),
    )
    recorder = Recorder(HandOff(temporal_client, "unused"))
    listener = make_listener(queue, recorder)
    [settled] = await poll_until(listener, lambda s: len(s) == 1)
    assert settled.verdict is Verdict.NOTHING
    assert settled.acknowledged
    assert recorder.seen == []
    assert queue_counts(moto, queue) == (0, 0)


async def test_temporal_down_keeps_the_message(
    moto: MotoServer, queue: str, make_listener: ListenerFactory
) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    sqs = moto.client("sqs")
    sent = sqs.send_message(QueueUrl=queue, MessageBody=plain_event())["MessageId"]
    listener = make_listener(queue, HandOff(dead, "q"), retry_delay_seconds=1)

    [settled] = await poll_until(listener, lambda s: len(s) == 1)
    assert settled.verdict is Verdict.RETRY
    assert not settled.acknowledged
    assert listener.counters.retried == 1
    # ...and the message becomes visible again after the short retry delay.
    again: list[Any] = []
    deadline = time.monotonic() + 10
    while not again and time.monotonic() < deadline:
        again = sqs.receive_message(
            QueueUrl=queue, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
    [message] = again
    assert message["MessageId"] == sent
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_polling_pauses_while_temporal_is_down(
    moto: MotoServer, queue: str, make_listener: ListenerFactory
) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    sqs = moto.client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody=plain_event())
    listener = make_listener(queue, HandOff(dead, "q"), retry_delay_seconds=0, pollers=1)
    listener.temporal_ready = TemporalHealth(dead, ttl=0).ready
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await asyncio.sleep(4)
    stop.set()
    await asyncio.wait_for(task, 10)
    # Received once, then no more receives while Temporal stays down: an outage does not
    # burn the message's receive count (which a redrive policy would dead-letter).
    assert listener.counters.received == 1
    assert listener.counters.retried == 1


async def test_poison_left_to_the_queue_redrive_policy(
    moto: MotoServer,
    make_listener: ListenerFactory,
    temporal_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = moto.client("sqs")
    name = f"q-{uuid.uuid4().hex[:12]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    main = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
        },
    )["QueueUrl"]
    sent = sqs.send_message(QueueUrl=main, MessageBody="this is { not json")["MessageId"]
    listener = make_listener(
        main, Recorder(HandOff(temporal_client, "unused")), retry_delay_seconds=0
    )

    caplog.set_level(logging.WARNING, logger="tflow.listeners.sqs")
    settled = await poll_until(listener, lambda s: len(s) == 2)
    assert [r.verdict for r in settled] == [Verdict.POISON, Verdict.POISON]
    assert not any(r.acknowledged for r in settled)
    # The third receive finds it gone: SQS moved it to the dead-letter queue.
    assert await listener.poll_once() == []
    [moved] = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"]
    assert moved["Body"] == "this is { not json"
    assert queue_counts(moto, main) == (0, 0)
    lines = [r.getMessage() for r in caplog.records if sent in r.getMessage()]
    assert lines
    assert "body is not JSON" in lines[-1]
    assert "redrive policy" in lines[-1]
    for url in (main, dlq):
        sqs.delete_queue(QueueUrl=url)


async def test_poison_sent_to_the_listener_dead_letter_queue(
    moto: MotoServer,
    queue: str,
    make_listener: ListenerFactory,
    temporal_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = moto.client("sqs")
    dlq = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    body = json.dumps({"no": "event type here"})
    sent = sqs.send_message(
        QueueUrl=queue,
        MessageBody=body,
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "unit"}},
    )["MessageId"]
    listener = make_listener(
        queue,
        Recorder(HandOff(temporal_client, "unused")),
        retry_delay_seconds=0,
        max_receive_count=3,
        dead_letter_queue_url=dlq,
    )

    caplog.set_level(logging.WARNING, logger="tflow.listeners.sqs")
    settled = await poll_until(listener, lambda s: len(s) == 3)
    assert [(r.dead_lettered, r.acknowledged) for r in settled] == [
        (False, False),
        (False, False),
        (True, True),
    ]
    assert queue_counts(moto, queue) == (0, 0)
    [moved] = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert moved["Body"] == body
    assert moved["MessageAttributes"]["origin"]["StringValue"] == "unit"
    assert "missing event type" in moved["MessageAttributes"][DLQ_REASON_ATTRIBUTE]["StringValue"]
    [line] = [
        r.getMessage() for r in caplog.records if "moved to dead-letter queue" in r.getMessage()
    ]
    assert sent in line
    assert "after 3 receives" in line
    assert "missing event type" in line
    sqs.delete_queue(QueueUrl=dlq)


async def test_slow_handoff_keeps_the_message_invisible(
    moto: MotoServer,
    queue: str,
    make_listener: ListenerFactory,
    temporal_client: Client,
    task_queue: str,
    cleanup_runs: list[str],
) -> None:
    sqs = moto.client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody=plain_event())
    recorder = Recorder(HandOff(temporal_client, task_queue), delay=5.0)
    # Visibility 2 s, a 5 s hand-off: without the heartbeat the message would reappear.
    listener = make_listener(queue, recorder, visibility_timeout_seconds=2)
    extensions: list[float] = []
    sqs_of(listener).sqs.meta.events.register(
        "before-call.sqs.ChangeMessageVisibilityBatch",
        lambda **_: extensions.append(time.monotonic()),
    )

    async def other_consumer() -> int:
        """Another replica polling meanwhile: it must never get the message."""
        while listener.counters.in_flight == 0:  # noqa: ASYNC110 (polling a counter)
            await asyncio.sleep(0.05)
        got = 0
        for _ in range(4):
            response = await asyncio.to_thread(
                sqs.receive_message, QueueUrl=queue, WaitTimeSeconds=1, VisibilityTimeout=0
            )
            got += len(response.get("Messages", []))
        return got

    settled, stolen = await asyncio.gather(
        poll_until(listener, lambda s: len(s) == 1), other_consumer()
    )
    [result] = settled
    assert result.verdict is Verdict.ACCEPTED
    assert result.acknowledged
    assert stolen == 0
    assert len(extensions) >= 3
    assert listener.counters.lock_extensions >= 3
    [(event, outcome)] = recorder.seen
    assert outcome == "started"
    cleanup_runs.append(event_workflow_id(event.source, event.id))
    assert queue_counts(moto, queue) == (0, 0)


async def test_run_settles_everything_then_stops_on_request(
    moto: MotoServer,
    queue: str,
    make_listener: ListenerFactory,
    temporal_client: Client,
    task_queue: str,
    cleanup_runs: list[str],
) -> None:
    sqs = moto.client("sqs")
    bodies = [plain_event(n=n) for n in range(25)]
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
            ],
        )
    recorder = Recorder(HandOff(temporal_client, task_queue))
    listener = make_listener(queue, recorder, pollers=2)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    deadline = time.monotonic() + 30
    while len(recorder.seen) < len(bodies) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 10)
    started = sorted(e.id for e, outcome in recorder.seen if outcome == "started")
    cleanup_runs.extend(event_workflow_id(e.source, e.id) for e, _ in recorder.seen)
    assert started == sorted(json.loads(b)["id"] for b in bodies), recorder.seen
    assert listener.counters.acknowledged >= len(bodies)
    assert queue_counts(moto, queue) == (0, 0)
