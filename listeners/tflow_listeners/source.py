"""The one interface every listener source implements, and the flags they share.

A source is a module (`tflow_listeners.webhook`, `.sqs`, `.servicebus`) with two functions:

    def add_arguments(parser: argparse.ArgumentParser) -> None   # its own flags
    async def run(args: argparse.Namespace) -> None              # serve until cancelled

`python -m tflow_listeners <source>` adds the Temporal flags below to the source's parser,
then awaits its `run`. Every flag can also come from an environment variable (the
operator's Deployments set those and mount Secrets as files), named in the flag's help.
The queue sources (SQS, Service Bus) also share their process plumbing from here: the
ops port flag, stopping on SIGTERM, and sleeping until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio.client import Client

from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE
from tflow_workers.connection import connect

log = logging.getLogger("tflow.listener")


class ListenerSource(Protocol):
    """What `python -m tflow_listeners` needs from a source module."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    async def run(self, args: argparse.Namespace) -> None: ...


def add_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str,
    *,
    help: str,
    default: Any = None,
    required: bool = False,
    **kwargs: Any,
) -> None:
    """`--flag`, defaulting to the environment variable `env` and then to `default`;
    `required` only bites when neither the flag nor the variable is set."""
    from_env = os.environ.get(env)
    value = from_env if from_env not in (None, "") else default
    parser.add_argument(
        flag,
        default=value,
        required=required and value is None,
        help=f"{help} [env {env}]",
        **kwargs,
    )


def add_temporal_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the events go: the Temporal frontend, namespace and the router's task queue."""
    add_flag(
        parser,
        "--address",
        "TEMPORAL_ADDRESS",
        default="localhost:7233",
        help="Temporal frontend host:port",
    )
    add_flag(
        parser, "--namespace", "TEMPORAL_NAMESPACE", default="default", help="Temporal namespace"
    )
    add_flag(
        parser,
        "--task-queue",
        "TFLOW_LISTENER_TASK_QUEUE",
        default=DEFAULT_ROUTER_TASK_QUEUE,
        help="task queue of the RootOrchestrator workers",
    )
    add_flag(
        parser,
        "--kube-namespace",
        "TFLOW_LISTENER_KUBE_NAMESPACE",
        help="Kubernetes namespace of the Listener: its events are routed within it, and "
        "the run-control API reaches only its runs",
    )
    add_flag(
        parser,
        "--share-with",
        "TFLOW_LISTENER_SHARE_WITH",
        type=namespace_list,
        default="",
        help="comma-separated namespaces whose EventRoutes may also see this listener's "
        "events, if they accept events from --kube-namespace",
    )


def namespace_list(text: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"); each must be a Kubernetes namespace name."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
            raise argparse.ArgumentTypeError(f"{name!r} is not a Kubernetes namespace name")
    return names


async def connect_temporal(args: argparse.Namespace) -> Client:
    """A lazy client: the listener starts (and reports not ready) while Temporal is down,
    and connects on first use; every Temporal Flow process uses the pydantic converter."""
    return await connect(args.address, args.namespace, lazy=True)


def add_ops_port(parser: argparse.ArgumentParser) -> None:
    """`--port`: where a queue listener serves /healthz, /readyz and /metrics."""
    add_flag(
        parser,
        "--port",
        "TFLOW_LISTENER_PORT",
        type=int,
        default=8080,
        help="port of /healthz, /readyz and /metrics; 0 disables them",
    )


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM / SIGINT: stop polling, finish what is in flight."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class TemporalPause:
    """A queue source's pause while Temporal refuses hand-offs.

    After a refusal (`refused`) the source stops taking messages and calls `wait`, which
    sleeps a growing back-off (1 s, doubling up to `max_backoff_seconds`), then asks the
    source's probe whether Temporal answers again and resumes if so; several pollers share
    one probe. The same back-off paces retries after a failed receive (`next_backoff`); an
    accepted hand-off resets it (`accepted`).
    """

    max_backoff_seconds: float
    paused: str  # what pauses, for the log: "polling", "receiving"
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
            log.info("Temporal unavailable: %s paused, next check in %.1fs", self.paused, delay)
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
                log.info("Temporal answers again: %s resumes", self.paused)
                self.unavailable = False
