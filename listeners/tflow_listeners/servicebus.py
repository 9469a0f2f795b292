"""The Azure Service Bus listener: receives from a queue, or from a topic's subscription,
in peek-lock mode and hands every event a message carries to Temporal.

The entity's side of `tflow_listeners.queue`: receive (peek-lock), hold (an
AutoLockRenewer keeps the locks of a batch being handed off), acknowledge (complete),
retry and release (abandon: the message comes back at once, its delivery count raised;
the driver stops receiving while Temporal refuses, so an outage does not run a message
up to the entity's max delivery count), dead-letter (a message that is not an event, with
a reason and a description).

Bodies are recognised like any other (`envelopes.parse_events`): Event Grid events (the
usual way blob storage events reach Service Bus), structured CloudEvents, S3
notifications, the seed's plain JSON. A message in the CloudEvents AMQP binding's binary
mode (attributes as `cloudEvents:`-prefixed application properties, the body the data) is
read too.

    python -m tflow_listeners servicebus --queue NAME | --topic T --subscription S
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import ServiceBusError

from tflow_listeners.envelopes import parse_events
from tflow_listeners.queue import QueueCounters, add_queue_arguments, serve
from tflow_listeners.settlement import PoisonMessage
from tflow_listeners.source import add_flag
from tflow_workers.cloudevents import CloudEvent, EventFormatError

log = logging.getLogger("tflow.listeners.servicebus")

DEFAULT_SOURCE = "servicebus"
_CLOUDEVENTS_PREFIXES = ("cloudEvents:", "cloudEvents_")
_MAX_DESCRIPTION = 1024


def events_from_message(
    message: ServiceBusReceivedMessage, default_source: str = DEFAULT_SOURCE
) -> list[CloudEvent]:
    """The events one message carries. Raises `PoisonMessage`."""
    binary = _binary_mode_attributes(message.application_properties)
    document = _body_document(message, as_data=bool(binary))
    try:
        if binary:
            return [_binary_event(binary, document)]
        return parse_events(document, default_source=default_source)
    except EventFormatError as err:
        raise PoisonMessage(str(err)) from None


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
        raise PoisonMessage(f"AMQP {body_type.value} bodies are not read", "unsupported-body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PoisonMessage(f"body is not UTF-8: {err}", "malformed-json") from None
    try:
        return json.loads(text)
    except ValueError as err:
        if as_data:  # binary mode: the data need not be JSON
            return text
        raise PoisonMessage(f"body is not JSON: {err}", "malformed-json") from None


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
    default_source: str = DEFAULT_SOURCE


@dataclass
class ServiceBusEntity:
    """One queue or topic subscription as a `tflow_listeners.queue.QueueSource`."""

    receiver: Receiver
    settings: ServiceBusSettings = field(default_factory=ServiceBusSettings)
    renewer: AutoLockRenewer | None = None
    entity: str = "servicebus"
    counters: QueueCounters = field(default_factory=QueueCounters)
    name: str = "servicebus"
    receive_errors: tuple[type[Exception], ...] = (ServiceBusError,)

    def describe(self) -> str:
        return self.entity

    def message_id(self, message: ServiceBusReceivedMessage) -> str:
        return message.message_id or ""

    def events(self, message: ServiceBusReceivedMessage) -> list[CloudEvent]:
        return events_from_message(message, self.settings.default_source)

    async def receive(self) -> list[ServiceBusReceivedMessage]:
        return await self.receiver.receive_messages(
            max_message_count=self.settings.max_messages,
            max_wait_time=self.settings.max_wait_time_seconds,
        )

    @contextlib.asynccontextmanager
    async def hold(self, messages: Sequence[ServiceBusReceivedMessage]) -> AsyncIterator[None]:
        # A settled message drops out of the renewer by itself.
        if self.renewer is not None:
            for message in messages:
                self.renewer.register(
                    cast(Any, self.receiver),
                    message,
                    max_lock_renewal_duration=self.settings.max_lock_renewal_seconds,
                    on_lock_renew_failure=_lock_lost,
                )
        yield

    async def acknowledge(self, messages: Sequence[ServiceBusReceivedMessage]) -> set[str]:
        done: set[str] = set()
        for message in messages:
            if await self._settle("complete", message, self.receiver.complete_message(message)):
                done.add(self.message_id(message))
        return done

    async def retry(self, messages: Sequence[ServiceBusReceivedMessage]) -> None:
        for message in messages:
            await self._settle("abandon", message, self.receiver.abandon_message(message))

    release = retry  # an abandoned message is delivered again at once

    async def dead_letter(self, message: ServiceBusReceivedMessage, poison: PoisonMessage) -> bool:
        log.warning(
            "message %s (delivery %s) dead-lettered: %s: %s",
            message.message_id,
            message.delivery_count,
            poison.kind,
            poison.reason,
        )
        call = self.receiver.dead_letter_message(
            message, reason=poison.kind, error_description=poison.reason[:_MAX_DESCRIPTION]
        )
        return await self._settle("dead-letter", message, call)

    async def _settle(
        self, what: str, message: ServiceBusReceivedMessage, call: Awaitable[None]
    ) -> bool:
        try:
            await call
        except ServiceBusError as err:
            # Lock lost or link closed: Service Bus delivers the message again, and a
            # redelivered event is a duplicate, so nothing is lost or started twice.
            self.counters.errors += 1
            log.warning("message %s not settled (%s): %s", message.message_id, what, err)
            return False
        return True


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
    # One receive loop: a Service Bus receiver is not meant for concurrent receives.
    add_queue_arguments(parser, DEFAULT_SOURCE, max_messages=100)


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
    """Run the Service Bus listener until cancelled; it stops gracefully (see
    `queue.serve`)."""
    check_entity(args)
    settings = ServiceBusSettings(
        max_messages=args.max_messages,
        max_wait_time_seconds=args.max_wait_time_seconds,
        max_lock_renewal_seconds=args.max_lock_renewal_seconds,
        default_source=args.default_source,
    )
    entity = args.queue or f"{args.topic}/subscriptions/{args.subscription}"
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
            await serve(args, ServiceBusEntity(receiver, settings, renewer, entity))


__all__ = [
    "Receiver",
    "ServiceBusEntity",
    "ServiceBusSettings",
    "add_arguments",
    "events_from_message",
    "run",
]
