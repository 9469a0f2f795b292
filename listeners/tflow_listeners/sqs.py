"""The SQS listener: long-polls a queue (typically fed by S3 event notifications, directly
or through SNS) and hands every event a message carries to Temporal.

The queue's side of `tflow_listeners.queue`: receive (long poll), hold (while a batch is
handed off, a heartbeat keeps its messages invisible with ChangeMessageVisibility, so a
slow Temporal never lets a second consumer pick them up), acknowledge (DeleteMessageBatch),
retry (visibility cut to a short delay), release (visibility 0).

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
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tflow_listeners.envelopes import parse_events
from tflow_listeners.queue import QueueCounters, add_queue_arguments, serve
from tflow_listeners.settlement import PoisonMessage
from tflow_listeners.source import add_flag
from tflow_workers.cloudevents import CloudEvent, EventFormatError

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
    pollers: int = 2
    default_source: str = DEFAULT_SOURCE

    @property
    def heartbeat_interval(self) -> float:
        """How often in-flight messages get their visibility extended."""
        return max(self.visibility_timeout_seconds / 3, 0.5)


# --------------------------------------------------------------------------- the queue


@dataclass
class SqsQueue:
    """One SQS queue as a `tflow_listeners.queue.QueueSource`. boto3 is synchronous: its
    calls run in a small thread pool (`close` shuts it down)."""

    sqs: SQSClient
    settings: SqsSettings
    executor: ThreadPoolExecutor | None = None
    counters: QueueCounters = field(default_factory=QueueCounters)
    name: str = "sqs"
    receive_errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
    _redrive: tuple[float, dict[str, Any] | None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.executor is None:
            # Long polls block a thread each; heartbeats and deletes need room beside them.
            self.executor = ThreadPoolExecutor(
                max_workers=self.settings.pollers * 2 + 2, thread_name_prefix="sqs"
            )

    def close(self) -> None:
        assert self.executor is not None
        self.executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queue(self) -> str:
        return self.settings.queue_url

    def describe(self) -> str:
        s = self.settings
        return (
            f"{s.queue_url} (wait {s.wait_time_seconds}s, batch {s.max_messages}, "
            f"visibility {s.visibility_timeout_seconds}s)"
        )

    def message_id(self, message: MessageTypeDef) -> str:
        return message["MessageId"]

    def events(self, message: MessageTypeDef) -> list[CloudEvent]:
        return events_from_body(message.get("Body", ""), self.settings.default_source)

    async def receive(self) -> list[MessageTypeDef]:
        response = await self._call(
            self.sqs.receive_message,
            QueueUrl=self.queue,
            MaxNumberOfMessages=self.settings.max_messages,
            WaitTimeSeconds=self.settings.wait_time_seconds,
            VisibilityTimeout=self.settings.visibility_timeout_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    @contextlib.asynccontextmanager
    async def hold(self, messages: Sequence[MessageTypeDef]) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(self._keep_invisible(messages))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def acknowledge(self, messages: Sequence[MessageTypeDef]) -> set[str]:
        return await self._delete(messages)

    async def retry(self, messages: Sequence[MessageTypeDef]) -> None:
        await self._set_visibility(messages, self.settings.retry_delay_seconds)

    async def release(self, messages: Sequence[MessageTypeDef]) -> None:
        await self._set_visibility(messages, 0)

    async def _keep_invisible(self, batch: Sequence[MessageTypeDef]) -> None:
        """Extend the visibility of a batch until it is settled (cancelled then)."""
        if self.settings.visibility_timeout_seconds <= 0:
            return
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            extended = await self._set_visibility(batch, self.settings.visibility_timeout_seconds)
            self.counters.lock_extensions += extended

    # ----------------------------------------------------------------- SQS calls

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(method, **kwargs))

    async def _set_visibility(self, messages: Sequence[MessageTypeDef], seconds: int) -> int:
        """Set the visibility timeout of messages; returns how many were changed."""
        changed = await self._batch(
            "changing visibility",
            self.sqs.change_message_visibility_batch,
            messages,
            VisibilityTimeout=seconds,
        )
        return len(changed)

    async def _delete(self, messages: Sequence[MessageTypeDef]) -> set[str]:
        # A message not deleted comes back and is handed off again: its events are then
        # duplicates, nothing is lost.
        deleted = await self._batch("deleting", self.sqs.delete_message_batch, messages)
        return {m["MessageId"] for m in deleted}

    async def _batch(
        self,
        what: str,
        action: Callable[..., Any],
        messages: Sequence[MessageTypeDef],
        **entry: Any,
    ) -> list[MessageTypeDef]:
        """Call a `*Batch` action on messages, ten at a time (SQS's limit); the messages
        it succeeded for."""
        succeeded: list[MessageTypeDef] = []
        for chunk in _chunks(messages, 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], **entry}
                for i, m in enumerate(chunk)
            ]
            try:
                response = await self._call(action, QueueUrl=self.queue, Entries=entries)
            except (BotoCoreError, ClientError) as err:
                self.counters.errors += 1
                log.warning("%s on %s failed: %s", what, self.queue, err)
                continue
            succeeded += [chunk[int(ok["Id"])] for ok in response.get("Successful", [])]
            for failed in response.get("Failed", []):
                log.warning(
                    "%s message %s failed: %s",
                    what,
                    chunk[int(failed["Id"])]["MessageId"],
                    failed.get("Message", failed.get("Code")),
                )
        return succeeded

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

    async def dead_letter(self, message: MessageTypeDef, poison: PoisonMessage) -> bool:
        """Send a poison message to the dead-letter queue and delete it (True), or leave
        it in the queue for now (False): to the queue's redrive policy, or until it has
        been received `max_receive_count` times."""
        message_id = message["MessageId"]
        reason = poison.reason
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            policy = await self.redrive_policy()
        except (BotoCoreError, ClientError) as err:
            self.counters.errors += 1
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
            self.counters.errors += 1
            log.warning("message %s kept: sending it to %s failed: %s", message_id, dlq, err)
            return False
        log.warning(
            "message %s moved to dead-letter queue %s after %d receives: %s",
            message_id,
            dlq,
            receives,
            reason,
        )
        # Should the delete fail, the message comes back and is dead-lettered again: a
        # copy may repeat in the dead-letter queue, but nothing is lost.
        return bool(await self._delete([message]))


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
    add_queue_arguments(parser, DEFAULT_SOURCE, max_messages=10, pollers=2)


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
    """Run the SQS listener until cancelled; it stops gracefully (see `queue.serve`)."""
    settings = settings_from_args(args)
    queue = SqsQueue(sqs_client(settings, args.credentials_dir), settings)
    try:
        await serve(args, queue, pollers=settings.pollers)
    finally:
        queue.close()
