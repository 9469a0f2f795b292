"""The Azure Service Bus listener's logic: complete after Temporal accepted, abandon when
Temporal is down, dead-letter invalid messages, renew locks during slow hand-offs.

No Service Bus emulator can run here; this fakes only the receiver. `FakeReceiver`
implements the receiver methods the listener calls (receive_messages, complete_message,
abandon_message, dead_letter_message, and renew_message_lock for the SDK's own
AutoLockRenewer) with Service Bus's settlement rules: a message settles once, and only
while its lock is held; an abandoned or lock-expired message is delivered again with its
delivery count raised. The messages are the SDK's real `ServiceBusReceivedMessage`
objects built from AMQP messages, and the hand-off goes to the REAL Temporal dev server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus._pyamqp.message import Header  # the SDK's AMQP message model
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from azure.servicebus.aio import AutoLockRenewer
from azure.servicebus.amqp import AmqpAnnotatedMessage
from azure.servicebus.exceptions import MessageAlreadySettled, MessageLockLostError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.process import free_port
from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.metrics import Submitter, TemporalHealth
from tflow_listeners.queue import QueueListener
from tflow_listeners.servicebus import (
    ServiceBusEntity,
    ServiceBusSettings,
    add_arguments,
    check_entity,
    connection_string,
    events_from_message,
)
from tflow_listeners.settlement import Verdict
from tflow_workers.cloudevents import CloudEvent, event_workflow_id

pytestmark = pytest.mark.integration


@dataclass
class _Stored:
    message: ServiceBusMessage | AmqpAnnotatedMessage
    delivery_count: int = 0
    sequence_number: int = 0


@dataclass
class FakeReceiver:
    """A peek-lock receiver over an in-memory entity."""

    lock_seconds: float = 30.0
    available: list[_Stored] = field(default_factory=list)
    locked: dict[str, tuple[_Stored, ServiceBusReceivedMessage]] = field(default_factory=dict)
    completed: list[ServiceBusReceivedMessage] = field(default_factory=list)
    abandoned: list[ServiceBusReceivedMessage] = field(default_factory=list)
    dead_lettered: list[tuple[ServiceBusReceivedMessage, str | None, str | None]] = field(
        default_factory=list
    )
    renewals: int = 0
    # What the SDK's AutoLockRenewer looks at on a message's receiver.
    _running: bool = True
    session: None = None
    _sequence: int = 0

    def send(self, body: Any, **properties: Any) -> None:
        message: ServiceBusMessage | AmqpAnnotatedMessage
        if isinstance(body, AmqpAnnotatedMessage):
            message = body
        else:
            message = ServiceBusMessage(body, **properties)
        self._sequence += 1
        self.available.append(_Stored(message, sequence_number=self._sequence))

    async def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        self._expire_locks()
        deadline = time.monotonic() + (max_wait_time or 0)
        while not self.available and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self._expire_locks()
        batch, self.available = (
            self.available[: max_message_count or 1],
            self.available[max_message_count or 1 :],
        )
        return [self._deliver(stored) for stored in batch]

    def _deliver(self, stored: _Stored) -> ServiceBusReceivedMessage:
        stored.delivery_count += 1
        raw = stored.message if isinstance(stored.message, AmqpAnnotatedMessage) else None
        annotated = raw or stored.message.raw_amqp_message  # type: ignore[union-attr]
        amqp = PyamqpTransport.to_outgoing_amqp_message(annotated)
        locked_until_ms = int((time.time() + self.lock_seconds) * 1000)
        amqp = amqp._replace(
            header=Header(delivery_count=stored.delivery_count - 1),
            message_annotations={
                b"x-opt-locked-until": locked_until_ms,
                b"x-opt-sequence-number": stored.sequence_number,
            },
        )
        token = uuid.uuid4()
        received = ServiceBusReceivedMessage(amqp, receiver=self, lock_token=token)
        self.locked[str(token)] = (stored, received)
        return received

    def _expire_locks(self) -> None:
        now = datetime.now(UTC)
        for token, (stored, message) in list(self.locked.items()):
            until = message.locked_until_utc
            if until is not None and until <= now:
                del self.locked[token]
                self.available.append(stored)

    def _take(self, message: ServiceBusReceivedMessage) -> _Stored:
        self._expire_locks()
        if message._settled:
            raise MessageAlreadySettled(action="settle")
        entry = self.locked.pop(str(message.lock_token), None)
        if entry is None:
            raise MessageLockLostError(message="the message's lock expired")
        message._settled = True
        return entry[0]

    async def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        self._take(message)
        self.completed.append(message)

    async def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        self.available.append(self._take(message))
        self.abandoned.append(message)

    async def dead_letter_message(
        self,
        message: ServiceBusReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None:
        self._take(message)
        self.dead_lettered.append((message, reason, error_description))

    async def renew_message_lock(self, message: ServiceBusReceivedMessage, **_: Any) -> datetime:
        if str(message.lock_token) not in self.locked:
            raise MessageLockLostError(message="the message's lock expired")
        self.renewals += 1
        message._expiry = datetime.now(UTC) + timedelta(seconds=self.lock_seconds)
        return message._expiry


def listener(
    receiver: FakeReceiver,
    handoff: Submitter,
    settings: ServiceBusSettings | None = None,
    renewer: AutoLockRenewer | None = None,
    temporal_ready: Callable[[], Awaitable[bool]] | None = None,
) -> QueueListener[ServiceBusReceivedMessage]:
    """The queue driver over the fake receiver, as `servicebus.run` builds it."""
    entity = ServiceBusEntity(receiver, settings or ServiceBusSettings(), renewer)
    return QueueListener(entity, handoff, temporal_ready=temporal_ready)


@dataclass
class Slow:
    inner: HandOff
    delay: float
    seen: list[tuple[CloudEvent, Outcome]] = field(default_factory=list)

    async def submit(self, event: CloudEvent) -> Outcome:
        await asyncio.sleep(self.delay)
        outcome = await self.inner.submit(event)
        self.seen.append((event, outcome))
        return outcome


def blob_created(blob: str) -> dict[str, Any]:
    """A blob-created event in the Event Grid schema, as Event Grid forwards it to a
    Service Bus topic (the seed's Azure blob listener)."""
    return {
        "id": uuid.uuid4().hex,
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/"
        "storageAccounts/docs",
        "subject": f"/blobServices/default/containers/uploads/blobs/{blob}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2025-01-01T00:00:00Z",
        "dataVersion": "",
        "metadataVersion": "1",
        "data": {
            "api": "PutBlob",
            "contentType": "application/pdf",
            "contentLength": 8,
            "url": f"https://docs.blob.core.windows.net/uploads/{blob}",
        },
    }


async def test_event_grid_blob_event_is_completed_after_start(
    temporal_client: Client, task_queue: str, cleanup_runs: list[str]
) -> None:
    receiver = FakeReceiver()
    receiver.send(json.dumps(blob_created("a.pdf")), message_id="m-1")
    sb = listener(receiver, HandOff(temporal_client, task_queue))

    [settled] = await sb.poll_once()

    assert settled.verdict is Verdict.ACCEPTED
    assert [m.message_id for m in receiver.completed] == ["m-1"]
    [event] = events_from_message(receiver.completed[0])
    assert (event.source, event.type) == ("azure-blob", "document-added")
    workflow_id = event_workflow_id(event.source, event.id)
    cleanup_runs.append(workflow_id)
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.workflow_type == "RootOrchestratorWorkflow"
    assert described.task_queue == task_queue


async def test_redelivery_is_a_duplicate_and_completed(
    temporal_client: Client, task_queue: str, cleanup_runs: list[str]
) -> None:
    receiver = FakeReceiver()
    body = json.dumps({"eventType": "incident", "source": "monitoring", "id": uuid.uuid4().hex})
    receiver.send(body, message_id="m-1")
    receiver.send(body, message_id="m-1")  # the same message sent again
    handoff = Slow(HandOff(temporal_client, task_queue), delay=0)
    sb = listener(receiver, handoff, ServiceBusSettings(max_messages=1))

    await sb.poll_once()
    await sb.poll_once()

    assert [outcome for _, outcome in handoff.seen] == ["started", "duplicate"]
    assert len(receiver.completed) == 2
    event = handoff.seen[0][0]
    cleanup_runs.append(event_workflow_id(event.source, event.id))


async def test_temporal_down_abandons_and_pauses() -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    receiver = FakeReceiver()
    receiver.send(json.dumps({"eventType": "incident", "id": "1"}), message_id="m-1")
    sb = listener(
        receiver,
        HandOff(dead, "q"),
        ServiceBusSettings(max_wait_time_seconds=0.2),
        temporal_ready=TemporalHealth(dead, ttl=0).ready,
    )

    [settled] = await sb.poll_once()
    assert settled.verdict is Verdict.RETRY
    assert receiver.completed == []
    assert [m.message_id for m in receiver.abandoned] == ["m-1"]
    # Back in the entity, delivery count raised, and not received again while Temporal
    # stays down.
    assert len(receiver.available) == 1
    assert receiver.available[0].delivery_count == 1
    stop = asyncio.Event()
    task = asyncio.create_task(sb.run(stop))
    await asyncio.sleep(2.5)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert receiver.available[0].delivery_count == 1
    assert sb.counters.received == 1


async def test_invalid_messages_are_dead_lettered(
    temporal_client: Client, task_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = FakeReceiver()
    receiver.send(b"{ not json", message_id="bad-json")
    receiver.send(json.dumps({"source": "monitoring", "message": "no type"}), message_id="no-type")
    receiver.send(json.dumps([1, 2]), message_id="not-object")
    handoff = Slow(HandOff(temporal_client, task_queue), delay=0)
    sb = listener(receiver, handoff)

    caplog.set_level(logging.WARNING, logger="tflow.listeners.servicebus")
    results = await sb.poll_once()

    assert {r.verdict for r in results} == {Verdict.POISON}
    assert handoff.seen == []
    dead = {
        m.message_id: (reason, description) for m, reason, description in receiver.dead_lettered
    }
    assert dead["bad-json"][0] == "malformed-json"
    assert "not JSON" in (dead["bad-json"][1] or "")
    assert dead["no-type"] == ("not-an-event", "missing event type: set `type` or `eventType`")
    assert dead["not-object"][0] == "not-an-event"
    assert receiver.available == []
    assert any("no-type" in r.getMessage() for r in caplog.records)


async def test_slow_handoff_keeps_the_lock(
    temporal_client: Client, task_queue: str, cleanup_runs: list[str]
) -> None:
    # The SDK's renewer checks once a second and renews when under 3/4 of the lock's
    # duration is left: a 3 s lock over a 5 s hand-off needs two renewals.
    receiver = FakeReceiver(lock_seconds=3.0)
    receiver.send(json.dumps({"eventType": "incident", "id": uuid.uuid4().hex}), message_id="m")
    handoff = Slow(HandOff(temporal_client, task_queue), delay=5.0)
    async with AutoLockRenewer() as renewer:
        sb = listener(receiver, handoff, renewer=renewer)
        [settled] = await sb.poll_once()
    assert settled.verdict is Verdict.ACCEPTED
    assert settled.acknowledged
    assert receiver.renewals >= 2
    assert [m.message_id for m in receiver.completed] == ["m"]
    [(event, outcome)] = handoff.seen
    assert outcome == "started"
    cleanup_runs.append(event_workflow_id(event.source, event.id))


async def test_without_renewal_a_slow_handoff_loses_the_lock(
    temporal_client: Client, task_queue: str, cleanup_runs: list[str]
) -> None:
    """The fake enforces locks: the test above proves renewal, not a lenient fake."""
    receiver = FakeReceiver(lock_seconds=1.0)
    receiver.send(json.dumps({"eventType": "incident", "id": uuid.uuid4().hex}), message_id="m")
    handoff = Slow(HandOff(temporal_client, task_queue), delay=2.0)
    sb = listener(receiver, handoff)
    [settled] = await sb.poll_once()
    assert settled.verdict is Verdict.ACCEPTED
    assert not settled.acknowledged
    assert sb.counters.errors == 1
    assert receiver.completed == []
    assert len(receiver.available) == 1  # delivered again: then a duplicate, not lost
    [(event, _)] = handoff.seen
    cleanup_runs.append(event_workflow_id(event.source, event.id))


async def test_cloudevents_binary_mode_and_amqp_value_bodies() -> None:
    receiver = FakeReceiver()
    receiver.send(
        json.dumps({"orderId": 7}),
        message_id="bin",
        application_properties={
            "cloudEvents:specversion": "1.0",
            "cloudEvents:id": "e-1",
            "cloudEvents:source": "shop",
            "cloudEvents:type": "order-placed",
        },
    )
    receiver.send(
        AmqpAnnotatedMessage(
            value_body={b"eventType": b"incident", b"id": b"v-1"},
            properties={"message_id": "val"},
        )
    )
    first, second = await receiver.receive_messages(max_message_count=2)
    [binary] = events_from_message(first)
    assert (binary.id, binary.source, binary.type, binary.data) == (
        "e-1",
        "shop",
        "order-placed",
        {"orderId": 7},
    )
    [value] = events_from_message(second)
    assert (value.id, value.type, value.source) == ("v-1", "incident", "servicebus")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_entity_and_connection_string_flags(tmp_path: Path) -> None:
    secret = tmp_path / "connection-string"
    secret.write_text("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k\n")
    args = parse("--connection-string-file", str(secret), "--topic", "t", "--subscription", "s")
    check_entity(args)
    assert connection_string(args).startswith("Endpoint=sb://ns.servicebus.windows.net/")
    with pytest.raises(ValueError, match="--queue, or --topic and --subscription"):
        check_entity(parse("--topic", "t"))
    with pytest.raises(ValueError, match="exclusive"):
        check_entity(parse("--queue", "q", "--topic", "t", "--subscription", "s"))
    with pytest.raises(ValueError, match="--connection-string"):
        connection_string(parse("--queue", "q"))
