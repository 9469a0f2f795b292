"""The Azure Service Bus listener: receives from a queue, or from a topic's subscription,
in peek-lock mode and hands every event a message carries to Temporal.

A message is completed only after Temporal accepted all of its events ("started", or
"duplicate" for a redelivery). While it is handed off, an AutoLockRenewer keeps its lock.
When Temporal does not accept, the message is abandoned (it comes back at once) and the
listener stops receiving until Temporal answers again, so an outage does not run the
message up to the entity's max delivery count. A message that is not an event (not JSON,
no event type) is dead-lettered with a reason and a description.

Bodies are recognised like any other (`envelopes.parse_events`): Event Grid events (the
usual way blob storage events reach Service Bus), structured CloudEvents, S3
notifications, the seed's plain JSON. A message in the CloudEvents AMQP binding's binary
mode (attributes as `cloudEvents:`-prefixed application properties, the body the data) is
read too.

    python -m tflow_listeners servicebus --queue NAME | --topic T --subscription S
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import ServiceBusError

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

log = logging.getLogger("tflow.listeners.servicebus")

DEFAULT_SOURCE = "servicebus"
_CLOUDEVENTS_PREFIXES = ("cloudEvents:", "cloudEvents_")
_MAX_DESCRIPTION = 1024


class InvalidMessage(Exception):
    """A message that is not an event and never will be: dead-letter it."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason  # short, a dead-letter reason and a metrics label
        self.description = description


def events_from_message(
    message: ServiceBusReceivedMessage, default_source: str = DEFAULT_SOURCE
) -> list[CloudEvent]:
    """The events one message carries. Raises `InvalidMessage`."""
    binary = _binary_mode_attributes(message.application_properties)
    document = _body_document(message, as_data=bool(binary))
    try:
        if binary:
            return [_binary_event(binary, document)]
        return parse_events(document, default_source=default_source)
    except EventFormatError as err:
        raise InvalidMessage("not-an-event", str(err)) from None


def _body_document(message: ServiceBusReceivedMessage, as_data: bool) -> Any:
    body_type = message.body_type
    if body_type == AmqpMessageBodyType.VALUE:
        value = message.body
        if not isinstance(value, bytes | str):
            return _decode_keys(value)  # an AMQP map or list is JSON-like already
        raw = value.encode() if isinstance(value, str) else value
    elif body_type == AmqpMessageBodyType.DATA:
        body = message.body
        raw = body if isinstance(body, bytes) else b"".join(body)
    else:
        raise InvalidMessage("unsupported-body", f"AMQP {body_type.value} bodies are not read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidMessage("malformed-json", f"body is not UTF-8: {err}") from None
    try:
        return json.loads(text)
    except ValueError as err:
        if as_data:  # binary mode: the data need not be JSON
            return text
        raise InvalidMessage("malformed-json", f"body is not JSON: {err}") from None


def _decode_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_text(k): _decode_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_keys(v) for v in value]
    return _text(value) if isinstance(value, bytes) else value


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _binary_mode_attributes(properties: Mapping[Any, Any] | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, value in (properties or {}).items():
        name = _text(key)
        for prefix in _CLOUDEVENTS_PREFIXES:
            if isinstance(name, str) and name.startswith(prefix):
                attributes[name.removeprefix(prefix)] = _text(value)
    return attributes if "specversion" in attributes else {}


def _binary_event(attributes: dict[str, Any], data: Any) -> CloudEvent:
    try:
        return CloudEvent.model_validate({**attributes, "data": data})
    except ValueError as err:
        raise EventFormatError(f"CloudEvents application properties: {err}") from None


# --------------------------------------------------------------------------- listener


class Receiver(Protocol):
    """The part of `azure.servicebus.aio.ServiceBusReceiver` the listener uses."""

    async def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]: ...

    async def complete_message(self, message: ServiceBusReceivedMessage) -> None: ...

    async def abandon_message(self, message: ServiceBusReceivedMessage) -> None: ...

    async def dead_letter_message(
        self,
        message: ServiceBusReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class ServiceBusSettings:
    max_messages: int = 10
    max_wait_time_seconds: float = 5.0
    # How long a message's lock is kept renewed while it is handed off.
    max_lock_renewal_seconds: float = 300.0
    handoff_timeout_seconds: float = 30.0
    default_source: str = DEFAULT_SOURCE
    max_backoff_seconds: float = 30.0


@dataclass
class ServiceBusCounters:
    received: int = 0
    completed: int = 0
    abandoned: int = 0
    dead_lettered: int = 0
    settle_errors: int = 0
    receive_errors: int = 0


@dataclass
class ServiceBusListener:
    receiver: Receiver
    handoff: Submitter
    settings: ServiceBusSettings = field(default_factory=ServiceBusSettings)
    renewer: AutoLockRenewer | None = None
    temporal_ready: Callable[[], Awaitable[bool]] | None = None
    metrics: ListenerMetrics | None = None
    counters: ServiceBusCounters = field(default_factory=ServiceBusCounters)
    _pause: TemporalPause = field(init=False)

    def __post_init__(self) -> None:
        self._pause = TemporalPause(self.settings.max_backoff_seconds, paused="receiving")

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set; a batch being handed off is settled first."""
        while not stop.is_set():
            if self._pause.unavailable:
                await self._pause.wait(stop, self.temporal_ready)
                continue
            try:
                messages = await self.receiver.receive_messages(
                    max_message_count=self.settings.max_messages,
                    max_wait_time=self.settings.max_wait_time_seconds,
                )
            except ServiceBusError as err:
                self.counters.receive_errors += 1
                delay = self._pause.next_backoff()
                log.warning("receive failed (%s); retrying in %.1fs", err, delay)
                await sleep_unless(stop, delay)
                continue
            await self.settle(messages)

    async def poll_once(self) -> list[Settled]:
        """Receive one batch and settle it (for tests and tools)."""
        return await self.settle(
            await self.receiver.receive_messages(
                max_message_count=self.settings.max_messages,
                max_wait_time=self.settings.max_wait_time_seconds,
            )
        )

    async def settle(self, messages: list[ServiceBusReceivedMessage]) -> list[Settled]:
        if not messages:
            return []
        self.counters.received += len(messages)
        if self.renewer is not None:
            for message in messages:
                self.renewer.register(
                    cast(Any, self.receiver),
                    message,
                    max_lock_renewal_duration=self.settings.max_lock_renewal_seconds,
                    on_lock_renew_failure=_lock_lost,
                )
        results = list(await asyncio.gather(*(self._handle(m) for m in messages)))
        if any(r.verdict is Verdict.RETRY for r in results):
            self._pause.refused()
        elif any(r.verdict is Verdict.ACCEPTED for r in results):
            self._pause.accepted()
        return results

    async def _handle(self, message: ServiceBusReceivedMessage) -> Settled:
        message_id = message.message_id
        try:
            events = events_from_message(message, self.settings.default_source)
        except InvalidMessage as invalid:
            if self.metrics is not None:
                self.metrics.rejected(invalid.reason)
            log.warning(
                "message %s (delivery %s) dead-lettered: %s: %s",
                message_id,
                message.delivery_count,
                invalid.reason,
                invalid.description,
            )
            return await self._settle(
                message,
                Verdict.POISON,
                invalid.reason,
                self.receiver.dead_letter_message(
                    message,
                    reason=invalid.reason,
                    error_description=invalid.description[:_MAX_DESCRIPTION],
                ),
            )
        try:
            await asyncio.gather(*(self._submit(e) for e in events))
        except Exception as err:  # TemporalUnavailable, or anything unexpected: keep it
            if not isinstance(err, TemporalUnavailable):
                log.exception("message %s abandoned after an unexpected error", message_id)
            else:
                log.warning("message %s abandoned: %s", message_id, err)
            return await self._settle(
                message, Verdict.RETRY, str(err), self.receiver.abandon_message(message)
            )
        verdict = Verdict.ACCEPTED
        if not events:
            log.info("message %s carries no event to route", message_id)
            verdict = Verdict.NOTHING
        return await self._settle(message, verdict, "", self.receiver.complete_message(message))

    async def _settle(
        self,
        message: ServiceBusReceivedMessage,
        verdict: Verdict,
        reason: str,
        call: Awaitable[None],
    ) -> Settled:
        try:
            await call
        except ServiceBusError as err:
            # Lock lost or link closed: Service Bus delivers the message again, and a
            # redelivered event is a duplicate, so nothing is lost or started twice.
            self.counters.settle_errors += 1
            log.warning("message %s (%s) not settled: %s", message.message_id, verdict.value, err)
            return Settled(message.message_id or "", verdict, reason)
        counter = {
            Verdict.ACCEPTED: "completed",
            Verdict.NOTHING: "completed",
            Verdict.RETRY: "abandoned",
            Verdict.POISON: "dead_lettered",
        }[verdict]
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        return Settled(
            message.message_id or "",
            verdict,
            reason,
            acknowledged=verdict in (Verdict.ACCEPTED, Verdict.NOTHING),
            dead_lettered=verdict is Verdict.POISON,
        )

    async def _submit(self, event: CloudEvent) -> Outcome:
        try:
            return await asyncio.wait_for(
                self.handoff.submit(event), self.settings.handoff_timeout_seconds
            )
        except TimeoutError:
            raise TemporalUnavailable(
                f"no answer from Temporal within {self.settings.handoff_timeout_seconds}s"
            ) from None


async def _lock_lost(renewable: Any, error: Exception | None) -> None:
    message_id = getattr(renewable, "message_id", None)
    log.warning("lock of message %s not renewed: %s", message_id, error)


# --------------------------------------------------------------------------- process


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Service Bus listener's flags; they mirror `spec.azureServiceBus`. (The Temporal
    flags are added by `python -m tflow_listeners`.)"""
    add_flag(
        parser,
        "--connection-string",
        "TFLOW_LISTENER_CONNECTION_STRING",
        help="the namespace connection string (`Endpoint=sb://...`)",
    )
    add_flag(
        parser,
        "--connection-string-file",
        "TFLOW_LISTENER_CONNECTION_STRING_FILE",
        type=Path,
        help="a file holding the connection string (a mounted Secret key); read when "
        "--connection-string is unset",
    )
    add_flag(parser, "--queue", "TFLOW_LISTENER_QUEUE", help="queue to receive from")
    add_flag(parser, "--topic", "TFLOW_LISTENER_TOPIC", help="topic (with --subscription)")
    add_flag(
        parser,
        "--subscription",
        "TFLOW_LISTENER_SUBSCRIPTION",
        help="subscription of --topic to receive from",
    )
    add_flag(
        parser,
        "--max-messages",
        "TFLOW_LISTENER_MAX_MESSAGES",
        type=int,
        default=10,
        help="most messages per receive, 1-100",
    )
    add_flag(
        parser,
        "--max-wait-time-seconds",
        "TFLOW_LISTENER_MAX_WAIT_TIME_SECONDS",
        type=float,
        default=5.0,
        help="how long one receive waits for a first message",
    )
    add_flag(
        parser,
        "--max-lock-renewal-seconds",
        "TFLOW_LISTENER_MAX_LOCK_RENEWAL_SECONDS",
        type=float,
        default=300.0,
        help="how long a message's lock is kept renewed while it is handed off",
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
        "--default-source",
        "TFLOW_LISTENER_DEFAULT_SOURCE",
        default=DEFAULT_SOURCE,
        help="CloudEvent source of plain JSON bodies that name none",
    )
    add_ops_port(parser)


def connection_string(args: argparse.Namespace) -> str:
    if args.connection_string:
        return str(args.connection_string)
    if args.connection_string_file:
        return Path(args.connection_string_file).read_text().strip()
    raise ValueError("set --connection-string or --connection-string-file")


def check_entity(args: argparse.Namespace) -> None:
    if args.queue and args.topic:
        raise ValueError("--queue and --topic are exclusive")
    if not args.queue and not (args.topic and args.subscription):
        raise ValueError("set --queue, or --topic and --subscription")
    if not 1 <= args.max_messages <= 100:
        raise ValueError("--max-messages must be within 1-100")


async def run(args: argparse.Namespace) -> None:
    """Run the Service Bus listener until SIGTERM or SIGINT (or cancellation)."""
    check_entity(args)
    settings = ServiceBusSettings(
        max_messages=args.max_messages,
        max_wait_time_seconds=args.max_wait_time_seconds,
        max_lock_renewal_seconds=args.max_lock_renewal_seconds,
        handoff_timeout_seconds=args.handoff_timeout_seconds,
        default_source=args.default_source,
    )
    client = await connect_temporal(args)
    metrics = ListenerMetrics("servicebus")
    health = TemporalHealth(client)
    handoff = MeteredHandOff(
        HandOff(client, args.task_queue, args.kube_namespace, args.share_with), metrics, health
    )
    stop = asyncio.Event()
    stop_on_signals(stop)
    ops = await serve_ops(args.port, metrics, health) if args.port else None
    entity = args.queue or f"{args.topic}/subscriptions/{args.subscription}"
    try:
        async with ServiceBusClient.from_connection_string(connection_string(args)) as bus:
            if args.queue:
                receiver = bus.get_queue_receiver(
                    args.queue, receive_mode=ServiceBusReceiveMode.PEEK_LOCK
                )
            else:
                receiver = bus.get_subscription_receiver(
                    args.topic, args.subscription, receive_mode=ServiceBusReceiveMode.PEEK_LOCK
                )
            async with receiver, AutoLockRenewer() as renewer:
                listener = ServiceBusListener(
                    receiver,
                    handoff,
                    settings,
                    renewer=renewer,
                    temporal_ready=health.ready,
                    metrics=metrics,
                )
                log.info("listening on %s", entity)
                await listener.run(stop)
                log.info("stopped receiving from %s", entity)
    finally:
        if ops is not None:
            await ops.cleanup()


__all__ = [
    "InvalidMessage",
    "Receiver",
    "ServiceBusListener",
    "ServiceBusSettings",
    "Settled",
    "Verdict",
    "add_arguments",
    "events_from_message",
    "run",
]
