"""The SQS listener: long-polls a queue (typically fed by S3 event notifications, directly
or through SNS) and hands every event a message carries to Temporal.

A message is deleted only after Temporal accepted all of its events (each one "started",
or "duplicate" for a redelivery). While a batch is being handed off, a heartbeat keeps its
messages invisible (ChangeMessageVisibility), so a slow Temporal never causes a second
consumer to pick them up. When Temporal does not accept a start, the message stays: its
visibility is cut to a short retry delay and the listener stops receiving until Temporal
answers again, so an outage does not burn the queue's receive count.

A message that is not an event (not JSON, no event type, an S3 record that cannot be
mapped) is poison. When the queue has a RedrivePolicy, SQS moves it to its dead-letter
queue after maxReceiveCount receives; the listener leaves it alone. Without one, once it
has been received `--max-receive-count` times, the listener sends it to
`--dead-letter-queue-url` itself and deletes it. Either way a log line names the message
id and the reason.

    python -m tflow_listeners sqs --queue-url URL [--endpoint-url URL] [--region R] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tflow_listeners.envelopes import parse_events
from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.metrics import (
    ListenerMetrics,
    MeteredHandOff,
    Submitter,
    TemporalHealth,
    serve_ops,
)
from tflow_listeners.settlement import Settled, Verdict
from tflow_listeners.source import (
    TemporalPause,
    add_flag,
    add_ops_port,
    connect_temporal,
    sleep_unless,
    stop_on_signals,
)
from tflow_workers.cloudevents import CloudEvent, EventFormatError
from tflow_workers.connection import TemporalUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

log = logging.getLogger("tflow.listeners.sqs")

T = TypeVar("T")

DEFAULT_SOURCE = "sqs"
# Message attributes the listener adds to a message it dead-letters itself.
DLQ_REASON_ATTRIBUTE = "tflow-dead-letter-reason"
DLQ_SOURCE_QUEUE_ATTRIBUTE = "tflow-source-queue"
DLQ_SOURCE_MESSAGE_ATTRIBUTE = "tflow-source-message-id"
_MAX_MESSAGE_ATTRIBUTES = 10  # SQS's limit per message
_REDRIVE_POLICY_TTL = 300.0  # seconds between re-reads of the queue's RedrivePolicy


# --------------------------------------------------------------------------- bodies


class PoisonMessage(Exception):
    """A message body that is not an event and never will be; the reason says why."""

    def __init__(self, reason: str, kind: str = "not-an-event") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # the metrics' rejection reason


def events_from_body(body: str, default_source: str = DEFAULT_SOURCE) -> list[CloudEvent]:
    """The events an SQS message body carries (see `envelopes.parse_events`): one per
    record of an S3 event notification (direct, through SNS or EventBridge), none for S3's
    `s3:TestEvent` or SNS's subscription housekeeping, a structured CloudEvent or the
    seed's plain JSON. Raises `PoisonMessage` when the body is none of these."""
    try:
        document = json.loads(body)
    except ValueError as err:
        raise PoisonMessage(f"body is not JSON: {err}", "malformed-json") from None
    if _is_sns_housekeeping(document):
        return []
    try:
        return parse_events(document, default_source=default_source)
    except EventFormatError as err:
        raise PoisonMessage(str(err)) from None


def _is_sns_housekeeping(document: Any) -> bool:
    """SNS's SubscriptionConfirmation / UnsubscribeConfirmation: nothing to route."""
    return (
        isinstance(document, dict)
        and "TopicArn" in document
        and document.get("Type") in ("SubscriptionConfirmation", "UnsubscribeConfirmation")
    )


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SqsSettings:
    queue_url: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    wait_time_seconds: int = 20
    max_messages: int = 10
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5
    dead_letter_queue_url: str | None = None
    # Visibility given back to a message that could not be handed off (Temporal down) or
    # that is poison but not yet dead-lettered, so it is retried soon.
    retry_delay_seconds: int = 10
    handoff_timeout_seconds: float = 30.0
    pollers: int = 2
    default_source: str = DEFAULT_SOURCE
    max_backoff_seconds: float = 30.0

    @property
    def heartbeat_interval(self) -> float:
        """How often in-flight messages get their visibility extended."""
        return max(self.visibility_timeout_seconds / 3, 0.5)


# --------------------------------------------------------------------------- counters


@dataclass
class SqsCounters:
    """What the listener did with messages. Served on /metrics beside the common listener
    metrics (`SqsCounters.collector`) as `tflow_listener_sqs_<name>_total`, `in_flight` as
    a gauge."""

    received: int = 0
    deleted: int = 0
    nothing_to_route: int = 0
    retried: int = 0
    poison: int = 0
    dead_lettered: int = 0
    visibility_extensions: int = 0
    sqs_errors: int = 0
    in_flight: int = 0

    def collector(self) -> Collector:
        counters = self

        class _Collector(Collector):
            def collect(self) -> Iterable[Metric]:
                for name, value in vars(counters).items():
                    if name == "in_flight":
                        yield GaugeMetricFamily(
                            "tflow_listener_sqs_in_flight",
                            "Messages being handed off right now.",
                            value=value,
                        )
                    else:
                        yield CounterMetricFamily(
                            f"tflow_listener_sqs_{name}",
                            f"SQS messages: {name.replace('_', ' ')}.",
                            value=value,
                        )

        return _Collector()


# --------------------------------------------------------------------------- listener


@dataclass
class SqsListener:
    sqs: SQSClient
    handoff: Submitter
    settings: SqsSettings
    # Answers whether Temporal accepts calls again after an outage; polling resumes then.
    temporal_ready: Callable[[], Awaitable[bool]] | None = None
    counters: SqsCounters = field(default_factory=SqsCounters)
    metrics: ListenerMetrics | None = None
    executor: ThreadPoolExecutor | None = None
    _pause: TemporalPause = field(init=False)
    _redrive: tuple[float, dict[str, Any] | None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._pause = TemporalPause(self.settings.max_backoff_seconds, paused="polling")
        if self.executor is None:
            # Long polls block a thread each; heartbeats and deletes need room beside them.
            self.executor = ThreadPoolExecutor(
                max_workers=self.settings.pollers * 2 + 2, thread_name_prefix="sqs"
            )

    # ----------------------------------------------------------------- running

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; in-flight messages are settled before returning."""
        log.info(
            "listening on %s (wait %ss, batch %s, visibility %ss, %s pollers)",
            self.settings.queue_url,
            self.settings.wait_time_seconds,
            self.settings.max_messages,
            self.settings.visibility_timeout_seconds,
            self.settings.pollers,
        )
        await asyncio.gather(*(self._poll_loop(stop) for _ in range(self.settings.pollers)))
        log.info("stopped polling %s", self.settings.queue_url)

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._pause.unavailable:
                await self._pause.wait(stop, self.temporal_ready)
                continue
            try:
                messages = await self._receive()
            except (BotoCoreError, ClientError) as err:
                self.counters.sqs_errors += 1
                delay = self._pause.next_backoff()
                log.warning(
                    "receive from %s failed (%s); retrying in %.1fs", self.queue, err, delay
                )
                await sleep_unless(stop, delay)
                continue
            if not messages:
                continue
            if self._pause.unavailable:
                # Another poller found Temporal down meanwhile: do not even try.
                await self._set_visibility(messages, self.settings.retry_delay_seconds)
                continue
            if stop.is_set():
                # Shutting down: give these to another consumer right away.
                await self._set_visibility(messages, 0)
                break
            await self.settle(messages)

    async def poll_once(self) -> list[Settled]:
        """Receive one batch and settle it (for tests and tools)."""
        return await self.settle(await self._receive())

    @property
    def queue(self) -> str:
        return self.settings.queue_url

    # ----------------------------------------------------------------- one batch

    async def _receive(self) -> list[MessageTypeDef]:
        response = await self._call(
            self.sqs.receive_message,
            QueueUrl=self.queue,
            MaxNumberOfMessages=self.settings.max_messages,
            WaitTimeSeconds=self.settings.wait_time_seconds,
            VisibilityTimeout=self.settings.visibility_timeout_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        self.counters.received += len(messages)
        return messages

    async def settle(self, messages: Sequence[MessageTypeDef]) -> list[Settled]:
        """Hand off a batch, keeping it invisible meanwhile, then delete, retry or
        dead-letter each message."""
        if not messages:
            return []
        self.counters.in_flight += len(messages)
        heartbeat = asyncio.create_task(self._keep_invisible(messages))
        try:
            results = await asyncio.gather(*(self._hand_off(m) for m in messages))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self.counters.in_flight -= len(messages)
        by_id = {m["MessageId"]: m for m in messages}
        done = [
            by_id[r.message_id] for r in results if r.verdict in (Verdict.ACCEPTED, Verdict.NOTHING)
        ]
        retry = [by_id[r.message_id] for r in results if r.verdict is Verdict.RETRY]
        poison = [r for r in results if r.verdict is Verdict.POISON]
        for outcome in poison:
            message = by_id[outcome.message_id]
            if await self._dead_letter(message, outcome.reason):
                outcome.dead_lettered = True
                done.append(message)
            else:
                retry.append(message)
        deleted = await self._delete(done)
        for outcome in results:
            outcome.acknowledged = outcome.message_id in deleted
        if retry:
            await self._set_visibility(retry, self.settings.retry_delay_seconds)
        if any(r.verdict is Verdict.RETRY for r in results):
            self._pause.refused()
        elif any(r.verdict is Verdict.ACCEPTED for r in results):
            self._pause.accepted()
        return results

    async def _hand_off(self, message: MessageTypeDef) -> Settled:
        message_id = message["MessageId"]
        try:
            events = events_from_body(message.get("Body", ""), self.settings.default_source)
        except PoisonMessage as poison:
            self.counters.poison += 1
            if self.metrics is not None:
                self.metrics.rejected(poison.kind)
            return Settled(message_id, Verdict.POISON, poison.reason)
        if not events:
            self.counters.nothing_to_route += 1
            log.info("message %s carries no event to route (e.g. s3:TestEvent)", message_id)
            return Settled(message_id, Verdict.NOTHING)
        try:
            outcomes = await asyncio.gather(*(self._submit(e) for e in events))
        except TemporalUnavailable as err:
            self.counters.retried += 1
            log.warning("message %s kept: %s", message_id, err)
            return Settled(message_id, Verdict.RETRY, str(err))
        except Exception as err:  # anything unexpected: keep the message, never lose it
            self.counters.retried += 1
            log.exception("message %s kept after an unexpected error", message_id)
            return Settled(message_id, Verdict.RETRY, repr(err))
        return Settled(message_id, Verdict.ACCEPTED, ", ".join(outcomes))

    async def _submit(self, event: CloudEvent) -> Outcome:
        try:
            return await asyncio.wait_for(
                self.handoff.submit(event), self.settings.handoff_timeout_seconds
            )
        except TimeoutError:
            raise TemporalUnavailable(
                f"no answer from Temporal within {self.settings.handoff_timeout_seconds}s"
            ) from None

    async def _keep_invisible(self, batch: Sequence[MessageTypeDef]) -> None:
        """Extend the visibility of a batch until it is settled (cancelled then)."""
        if self.settings.visibility_timeout_seconds <= 0:
            return
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            extended = await self._set_visibility(batch, self.settings.visibility_timeout_seconds)
            self.counters.visibility_extensions += extended

    # ----------------------------------------------------------------- SQS calls

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(method, **kwargs))

    async def _set_visibility(self, messages: Sequence[MessageTypeDef], seconds: int) -> int:
        """Set the visibility timeout of messages; returns how many were changed."""
        changed = 0
        for chunk in _chunks(messages, 10):
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m["ReceiptHandle"],
                    "VisibilityTimeout": seconds,
                }
                for i, m in enumerate(chunk)
            ]
            try:
                response = await self._call(
                    self.sqs.change_message_visibility_batch, QueueUrl=self.queue, Entries=entries
                )
            except (BotoCoreError, ClientError) as err:
                self.counters.sqs_errors += 1
                log.warning("changing visibility on %s failed: %s", self.queue, err)
                continue
            changed += len(response.get("Successful", []))
            for failed in response.get("Failed", []):
                message = chunk[int(failed["Id"])]
                log.warning(
                    "visibility of message %s not changed: %s",
                    message["MessageId"],
                    failed.get("Message", failed.get("Code")),
                )
        return changed

    async def _delete(self, messages: Sequence[MessageTypeDef]) -> set[str]:
        deleted: set[str] = set()
        for chunk in _chunks(messages, 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            try:
                response = await self._call(
                    self.sqs.delete_message_batch, QueueUrl=self.queue, Entries=entries
                )
            except (BotoCoreError, ClientError) as err:
                # The messages come back and are handed off again: duplicates, nothing lost.
                self.counters.sqs_errors += 1
                log.warning("deleting from %s failed: %s", self.queue, err)
                continue
            for ok in response.get("Successful", []):
                deleted.add(chunk[int(ok["Id"])]["MessageId"])
            for failed in response.get("Failed", []):
                log.warning(
                    "message %s not deleted: %s",
                    chunk[int(failed["Id"])]["MessageId"],
                    failed.get("Message", failed.get("Code")),
                )
        self.counters.deleted += len(deleted)
        return deleted

    async def redrive_policy(self) -> dict[str, Any] | None:
        """The queue's RedrivePolicy (re-read every few minutes), or None."""
        now = time.monotonic()
        if self._redrive is not None and now - self._redrive[0] < _REDRIVE_POLICY_TTL:
            return self._redrive[1]
        response = await self._call(
            self.sqs.get_queue_attributes, QueueUrl=self.queue, AttributeNames=["RedrivePolicy"]
        )
        raw = response.get("Attributes", {}).get("RedrivePolicy")
        policy = json.loads(raw) if raw else None
        self._redrive = (now, policy)
        return policy

    async def _dead_letter(self, message: MessageTypeDef, reason: str) -> bool:
        """Deal with a poison message; True when it went to the dead-letter queue and may be
        deleted, False when it stays in the queue for now."""
        message_id = message["MessageId"]
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            policy = await self.redrive_policy()
        except (BotoCoreError, ClientError) as err:
            self.counters.sqs_errors += 1
            log.warning("message %s kept: cannot read the redrive policy: %s", message_id, err)
            return False
        if policy is not None:
            log.warning(
                "poison message %s (receive %d): %s; left to the queue's redrive policy "
                "(dead-letter queue %s after %s receives)",
                message_id,
                receives,
                reason,
                policy.get("deadLetterTargetArn"),
                policy.get("maxReceiveCount"),
            )
            return False
        if receives < self.settings.max_receive_count:
            log.warning(
                "poison message %s (receive %d of %d): %s",
                message_id,
                receives,
                self.settings.max_receive_count,
                reason,
            )
            return False
        dlq = self.settings.dead_letter_queue_url
        if dlq is None:
            log.error(
                "poison message %s received %d times: %s; no redrive policy and no "
                "--dead-letter-queue-url, so it stays in the queue",
                message_id,
                receives,
                reason,
            )
            return False
        try:
            await self._call(
                self.sqs.send_message, **_dead_letter_request(message, dlq, self.queue, reason)
            )
        except (BotoCoreError, ClientError) as err:
            self.counters.sqs_errors += 1
            log.warning("message %s kept: sending it to %s failed: %s", message_id, dlq, err)
            return False
        self.counters.dead_lettered += 1
        log.warning(
            "message %s moved to dead-letter queue %s after %d receives: %s",
            message_id,
            dlq,
            receives,
            reason,
        )
        return True


def _dead_letter_request(
    message: MessageTypeDef, dlq_url: str, source_queue: str, reason: str
) -> dict[str, Any]:
    attributes: dict[str, Any] = dict(message.get("MessageAttributes", {}))
    ours: dict[str, MessageAttributeValueTypeDef] = {
        DLQ_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1024]},
        DLQ_SOURCE_QUEUE_ATTRIBUTE: {"DataType": "String", "StringValue": source_queue},
        DLQ_SOURCE_MESSAGE_ATTRIBUTE: {"DataType": "String", "StringValue": message["MessageId"]},
    }
    for name, value in ours.items():
        if len(attributes) < _MAX_MESSAGE_ATTRIBUTES:
            attributes[name] = value
    request: dict[str, Any] = {
        "QueueUrl": dlq_url,
        "MessageBody": message.get("Body", "") or "(empty)",
    }
    if attributes:
        request["MessageAttributes"] = attributes
    if dlq_url.endswith(".fifo"):
        request["MessageGroupId"] = message.get("Attributes", {}).get(
            "MessageGroupId", "dead-letter"
        )
        request["MessageDeduplicationId"] = message["MessageId"]
    return request


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------- process


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The SQS listener's flags; they mirror the Listener resource's `spec.sqs`. (The
    Temporal flags are added by `python -m tflow_listeners`.)"""
    add_flag(parser, "--queue-url", "TFLOW_LISTENER_QUEUE_URL", required=True, help="queue URL")
    add_flag(
        parser,
        "--region",
        "TFLOW_LISTENER_REGION",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="AWS region of the queue (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1)",
    )
    add_flag(
        parser,
        "--endpoint-url",
        "TFLOW_LISTENER_ENDPOINT_URL",
        help="a custom SQS endpoint (a local or compatible server); AWS's when unset",
    )
    add_flag(
        parser,
        "--credentials-dir",
        "TFLOW_LISTENER_CREDENTIALS_DIR",
        type=Path,
        help="a mounted Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally "
        "AWS_SESSION_TOKEN files; boto3's usual chain (AWS_* variables, shared files, the "
        "pod's role) when unset",
    )
    add_flag(
        parser,
        "--wait-time-seconds",
        "TFLOW_LISTENER_WAIT_TIME_SECONDS",
        type=int,
        default=20,
        help="long-poll wait of each receive, 0-20",
    )
    add_flag(
        parser,
        "--max-messages",
        "TFLOW_LISTENER_MAX_MESSAGES",
        type=int,
        default=10,
        help="most messages per receive, 1-10",
    )
    add_flag(
        parser,
        "--visibility-timeout-seconds",
        "TFLOW_LISTENER_VISIBILITY_TIMEOUT_SECONDS",
        type=int,
        default=60,
        help="how long a received message stays hidden; extended while it is handed off",
    )
    add_flag(
        parser,
        "--max-receive-count",
        "TFLOW_LISTENER_MAX_RECEIVE_COUNT",
        type=int,
        default=5,
        help="receives after which a poison message goes to --dead-letter-queue-url (when "
        "the queue has no redrive policy of its own)",
    )
    add_flag(
        parser,
        "--dead-letter-queue-url",
        "TFLOW_LISTENER_DEAD_LETTER_QUEUE_URL",
        help="where poison messages go when the queue has no redrive policy",
    )
    add_flag(
        parser,
        "--retry-delay-seconds",
        "TFLOW_LISTENER_RETRY_DELAY_SECONDS",
        type=int,
        default=10,
        help="visibility given back to a message Temporal did not accept",
    )
    add_flag(
        parser,
        "--handoff-timeout-seconds",
        "TFLOW_LISTENER_HANDOFF_TIMEOUT_SECONDS",
        type=float,
        default=30.0,
        help="a start Temporal has not answered by then counts as not accepted",
    )
    add_flag(
        parser,
        "--pollers",
        "TFLOW_LISTENER_POLLERS",
        type=int,
        default=2,
        help="concurrent receive loops",
    )
    add_flag(
        parser,
        "--default-source",
        "TFLOW_LISTENER_DEFAULT_SOURCE",
        default=DEFAULT_SOURCE,
        help="CloudEvent source of plain JSON bodies that name none",
    )
    add_ops_port(parser)


def settings_from_args(args: argparse.Namespace) -> SqsSettings:
    problems = []
    if not 0 <= args.wait_time_seconds <= 20:
        problems.append("--wait-time-seconds must be within 0-20")
    if not 1 <= args.max_messages <= 10:
        problems.append("--max-messages must be within 1-10")
    if not 0 <= args.visibility_timeout_seconds <= 43200:
        problems.append("--visibility-timeout-seconds must be within 0-43200")
    if args.max_receive_count < 1:
        problems.append("--max-receive-count must be at least 1")
    if args.pollers < 1:
        problems.append("--pollers must be at least 1")
    if problems:
        raise ValueError("; ".join(problems))
    return SqsSettings(
        queue_url=args.queue_url,
        region=args.region,
        endpoint_url=args.endpoint_url,
        wait_time_seconds=args.wait_time_seconds,
        max_messages=args.max_messages,
        visibility_timeout_seconds=args.visibility_timeout_seconds,
        max_receive_count=args.max_receive_count,
        dead_letter_queue_url=args.dead_letter_queue_url,
        retry_delay_seconds=args.retry_delay_seconds,
        handoff_timeout_seconds=args.handoff_timeout_seconds,
        pollers=args.pollers,
        default_source=args.default_source,
    )


def sqs_client(settings: SqsSettings, credentials_dir: Path | None = None) -> SQSClient:
    """A boto3 SQS client; credentials from files in `credentials_dir` when given, else
    boto3's usual chain (environment, shared files, the pod's role)."""
    keys: dict[str, str] = {}
    if credentials_dir is not None:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            path = credentials_dir / name
            if path.is_file():
                keys[name] = path.read_text().strip()
    config = Config(
        retries={"mode": "standard"},
        max_pool_connections=settings.pollers * 2 + 4,
        # A long poll holds the connection for up to 20 s.
        read_timeout=settings.wait_time_seconds + 30,
    )
    session = boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=keys.get("AWS_SESSION_TOKEN"),
    )
    return session.client("sqs", endpoint_url=settings.endpoint_url, config=config)


async def run(args: argparse.Namespace) -> None:
    """Run the SQS listener until SIGTERM or SIGINT (or cancellation)."""
    settings = settings_from_args(args)
    client = await connect_temporal(args)
    metrics = ListenerMetrics("sqs")
    health = TemporalHealth(client)
    listener = SqsListener(
        sqs_client(settings, args.credentials_dir),
        MeteredHandOff(
            HandOff(client, args.task_queue, args.kube_namespace, args.share_with), metrics, health
        ),
        settings,
        temporal_ready=health.ready,
        metrics=metrics,
    )
    metrics.registry.register(listener.counters.collector())
    stop = asyncio.Event()
    stop_on_signals(stop)
    ops = await serve_ops(args.port, metrics, health) if args.port else None
    try:
        await listener.run(stop)
    finally:
        if ops is not None:
            await ops.cleanup()
        assert listener.executor is not None
        listener.executor.shutdown(wait=False, cancel_futures=True)
