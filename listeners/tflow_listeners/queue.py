"""One driver for every queue listener: receive a batch, hand each message's events to
Temporal, then acknowledge, retry or dead-letter each message.

A queue is a `QueueSource`: receive, keep a batch held while it is handed off, acknowledge,
give back for a retry, dead-letter, release on shutdown. SQS (`sqs.py`) and Service Bus
(`servicebus.py`) are two; a third queue is one more module implementing it, and
`QueueListener` does the rest:

- a message is acknowledged only after Temporal accepted every event it carries;
- while Temporal refuses, the listener stops receiving (each receive would count towards
  the queue's redelivery limit) and asks again with a growing back-off;
- a message that is not an event is poison: the source dead-letters it (or leaves it to
  the queue's own redrive) and the reason is logged;
- the process's one signal owner (`python -m tflow_listeners`) cancels `run`;
  `drain_on_cancel` turns that cancellation into a graceful stop: no more receives, the
  batches being handed off are settled, messages received meanwhile are released. A
  second cancellation stops at once (the queue redelivers what was held).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tflow_listeners.handoff import DirectHandOff, Outcome
from tflow_listeners.metrics import (
    ListenerMetrics,
    MeteredHandOff,
    Submitter,
    TemporalHealth,
    serve_ops,
)
from tflow_listeners.settlement import PoisonMessage, Settled, Verdict
from tflow_listeners.source import add_flag, connect_temporal, handoff_from
from tflow_workers.cloudevents import CloudEvent
from tflow_workers.connection import TemporalUnavailable

log = logging.getLogger("tflow.listeners.queue")

M = TypeVar("M")


@dataclass
class QueueCounters:
    """What a queue listener did with messages, served on /metrics beside the common
    listener metrics as `tflow_listener_queue_<name>_total{listener=...}` (`in_flight` as
    the gauge `tflow_listener_queue_in_flight`)."""

    received: int = 0
    acknowledged: int = 0  # removed from the queue: SQS delete, Service Bus complete
    nothing_to_route: int = 0
    retried: int = 0  # Temporal did not accept: given back for redelivery
    poison: int = 0
    dead_lettered: int = 0
    lock_extensions: int = 0  # SQS visibility extended while handing off
    errors: int = 0  # calls to the queue that failed
    released: int = 0  # received while stopping, given back unread
    in_flight: int = 0

    def collector(self, listener: str) -> Collector:
        counters = self

        class _Collector(Collector):
            def collect(self) -> Iterable[Metric]:
                for name, value in vars(counters).items():
                    family: CounterMetricFamily | GaugeMetricFamily
                    if name == "in_flight":
                        family = GaugeMetricFamily(
                            "tflow_listener_queue_in_flight",
                            "Messages being handed off right now.",
                            labels=["listener"],
                        )
                    else:
                        family = CounterMetricFamily(
                            f"tflow_listener_queue_{name}",
                            f"Queue messages: {name.replace('_', ' ')}.",
                            labels=["listener"],
                        )
                    family.add_metric([listener], value)
                    yield family

        return _Collector()


class QueueSource(Protocol[M]):
    """One queue, as the driver sees it. Failed calls are the source's to log and count
    (`counters.errors`); a message the queue was not told about is redelivered, and its
    events are then duplicates, so nothing is lost."""

    name: str  # the `listener` label: sqs, servicebus
    counters: QueueCounters
    # Exceptions of a failed receive: counted, logged, retried after a back-off.
    receive_errors: tuple[type[Exception], ...]

    def describe(self) -> str:
        """The queue, for log lines."""
        ...

    def message_id(self, message: M) -> str: ...

    def events(self, message: M) -> list[CloudEvent]:
        """The events a message carries (none: nothing to route). Raises `PoisonMessage`."""
        ...

    async def receive(self) -> list[M]: ...

    def hold(self, messages: Sequence[M]) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep the batch from being delivered elsewhere while it is handed off."""
        ...

    async def acknowledge(self, messages: Sequence[M]) -> set[str]:
        """Remove the messages from the queue; the ids of those removed."""
        ...

    async def retry(self, messages: Sequence[M]) -> None:
        """Give the messages back to be delivered again soon."""
        ...

    async def dead_letter(self, message: M, poison: PoisonMessage) -> bool:
        """Deal with a poison message: True when it left the queue (dead-lettered), False
        when it stays for now (the queue's own redrive, or not yet at the limit); the
        driver then gives it back with `retry`."""
        ...

    async def release(self, messages: Sequence[M]) -> None:
        """Give back messages received while stopping, to be delivered again at once."""
        ...


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class TemporalPause:
    """The pause while Temporal refuses hand-offs.

    After a refusal (`refused`) the pollers stop taking messages and call `wait`, which
    sleeps a growing back-off (1 s, doubling up to `max_backoff_seconds`), then asks the
    probe whether Temporal answers again and resumes if so; several pollers share one
    probe. The same back-off paces retries after a failed receive (`next_backoff`); an
    accepted hand-off resets it (`accepted`).
    """

    max_backoff_seconds: float
    unavailable: bool = False
    backoff: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def next_backoff(self) -> float:
        self.backoff = min(max(self.backoff * 2, 1.0), self.max_backoff_seconds)
        return self.backoff

    def refused(self) -> None:
        self.unavailable = True

    def accepted(self) -> None:
        self.backoff = 0.0

    async def wait(self, stop: asyncio.Event, probe: Callable[[], Awaitable[bool]] | None) -> None:
        async with self._lock:
            if not self.unavailable:
                return  # another poller saw Temporal answer meanwhile
            delay = self.next_backoff()
            log.info("Temporal unavailable: receiving paused, next check in %.1fs", delay)
            await sleep_unless(stop, delay)
            if stop.is_set():
                return
            ready = True
            if probe is not None:
                try:
                    ready = await probe()
                except Exception as err:  # a probe that fails says "not ready"
                    log.debug("Temporal probe failed: %s", err)
                    ready = False
            if ready:
                log.info("Temporal answers again: receiving resumes")
                self.unavailable = False


@dataclass
class QueueListener(Generic[M]):
    """Drives one `QueueSource`: `pollers` receive loops, each handing off one batch at a
    time, its events concurrently."""

    source: QueueSource[M]
    handoff: Submitter
    pollers: int = 1
    handoff_timeout_seconds: float = 30.0
    max_backoff_seconds: float = 30.0
    # Answers whether Temporal accepts calls again after an outage; receiving resumes then.
    temporal_ready: Callable[[], Awaitable[bool]] | None = None
    metrics: ListenerMetrics | None = None
    _pause: TemporalPause = field(init=False)

    def __post_init__(self) -> None:
        self._pause = TemporalPause(self.max_backoff_seconds)

    @property
    def counters(self) -> QueueCounters:
        return self.source.counters

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set; the batches in flight are settled before it
        returns."""
        log.info("listening on %s (%d pollers)", self.source.describe(), self.pollers)
        await asyncio.gather(*(self._poll_loop(stop) for _ in range(self.pollers)))
        log.info("stopped receiving from %s", self.source.describe())

    async def poll_once(self) -> list[Settled]:
        """Receive one batch and settle it (for tests and tools)."""
        return await self.settle(await self._receive())

    async def _receive(self) -> list[M]:
        messages = await self.source.receive()
        self.counters.received += len(messages)
        return messages

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._pause.unavailable:
                await self._pause.wait(stop, self.temporal_ready)
                continue
            try:
                messages = await self._receive()
            except self.source.receive_errors as err:
                self.counters.errors += 1
                delay = self._pause.next_backoff()
                log.warning(
                    "receive from %s failed (%s); retrying in %.1fs",
                    self.source.describe(),
                    err,
                    delay,
                )
                await sleep_unless(stop, delay)
                continue
            if not messages:
                continue
            if stop.is_set():
                # Stopping: give these to another consumer right away, unread.
                self.counters.released += len(messages)
                await self.source.release(messages)
                break
            if self._pause.unavailable:
                # Another poller found Temporal down meanwhile: do not even try.
                await self.source.retry(messages)
                continue
            await self.settle(messages)

    async def settle(self, messages: Sequence[M]) -> list[Settled]:
        """Hand off a batch, held meanwhile, then acknowledge, retry or dead-letter each
        message."""
        if not messages:
            return []
        self.counters.in_flight += len(messages)
        try:
            async with self.source.hold(messages):
                results = list(await asyncio.gather(*(self._hand_off(m) for m in messages)))
        finally:
            self.counters.in_flight -= len(messages)
        by_id = {self.source.message_id(m): m for m in messages}
        done = [by_id[r.message_id] for r in results if r.verdict in _ACKNOWLEDGE]
        retry = [by_id[r.message_id] for r in results if r.verdict is Verdict.RETRY]
        for outcome in results:
            if outcome.verdict is not Verdict.POISON:
                continue
            message = by_id[outcome.message_id]
            assert outcome.poison is not None
            if await self.source.dead_letter(message, outcome.poison):
                outcome.dead_lettered = outcome.acknowledged = True
                self.counters.dead_lettered += 1
            else:
                retry.append(message)
        acknowledged = await self.source.acknowledge(done) if done else set()
        self.counters.acknowledged += len(acknowledged)
        for outcome in results:
            if outcome.message_id in acknowledged:
                outcome.acknowledged = True
        if retry:
            await self.source.retry(retry)
        if any(r.verdict is Verdict.RETRY for r in results):
            self._pause.refused()
        elif any(r.verdict is Verdict.ACCEPTED for r in results):
            self._pause.accepted()
        return results

    async def _hand_off(self, message: M) -> Settled:
        message_id = self.source.message_id(message)
        try:
            events = self.source.events(message)
        except PoisonMessage as poison:
            self.counters.poison += 1
            if self.metrics is not None:
                self.metrics.rejected(poison.kind)
            return Settled(message_id, Verdict.POISON, poison.reason, poison=poison)
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
            return await asyncio.wait_for(self.handoff.submit(event), self.handoff_timeout_seconds)
        except TimeoutError:
            raise TemporalUnavailable(
                f"no answer from Temporal within {self.handoff_timeout_seconds}s"
            ) from None


_ACKNOWLEDGE = (Verdict.ACCEPTED, Verdict.NOTHING)


async def drain_on_cancel(listener: QueueListener[M]) -> None:
    """Run `listener` until cancelled (the process's signal owner cancels on SIGTERM),
    then stop it gracefully: no new receives, in-flight batches settled. A second
    cancellation while draining stops at once."""
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.done():
            raise
        log.info("stopping: settling %d in-flight messages", listener.counters.in_flight)
        stop.set()
        await task  # cancelled again meanwhile: this cancels the task too
        log.info("stopped: %d messages released unread", listener.counters.released)
        raise


async def serve(args: argparse.Namespace, source: QueueSource[M], *, pollers: int = 1) -> None:
    """The process around a queue source: the hand-off to Temporal, /healthz, /readyz and
    /metrics on `--port`, and a graceful stop when cancelled."""
    client = await connect_temporal(args)
    metrics = ListenerMetrics(source.name)
    metrics.registry.register(source.counters.collector(source.name))
    health = TemporalHealth(client)
    handoff = handoff_from(args, client)
    listener = QueueListener(
        source,
        MeteredHandOff(handoff, metrics, health),
        pollers=pollers,
        handoff_timeout_seconds=args.handoff_timeout_seconds,
        temporal_ready=health.ready,
        metrics=metrics,
    )
    routing = handoff if isinstance(handoff, DirectHandOff) else None
    ops = await serve_ops(args.port, metrics, health, routing) if args.port else None
    try:
        await drain_on_cancel(listener)
    finally:
        if ops is not None:
            await ops.cleanup()


def add_queue_arguments(
    parser: argparse.ArgumentParser,
    default_source: str,
    *,
    max_messages: int,
    pollers: int | None = None,
) -> None:
    """The flags every queue listener has besides its queue's own: the batch size (at
    most `max_messages`, the queue's limit, which is also the default), the number of
    receive loops (only when the queue takes concurrent receives: `pollers` is then the
    default), the hand-off timeout, the default event source and the ops port."""
    add_flag(
        parser,
        "--max-messages",
        "TFLOW_LISTENER_MAX_MESSAGES",
        type=int,
        default=10,
        help=f"most messages per receive, 1-{max_messages}",
    )
    if pollers is not None:
        add_flag(
            parser,
            "--pollers",
            "TFLOW_LISTENER_POLLERS",
            type=int,
            default=pollers,
            help="concurrent receive loops",
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
        default=default_source,
        help="CloudEvent source of plain JSON bodies that name none",
    )
    add_flag(
        parser,
        "--port",
        "TFLOW_LISTENER_PORT",
        type=int,
        default=8080,
        help="port of /healthz, /readyz and /metrics; 0 disables them",
    )
