"""The one interface every listener source implements, and the flags they share.

A source is a module (`tflow_listeners.webhook`, `.sqs`, `.servicebus`) with two functions:

    def add_arguments(parser: argparse.ArgumentParser) -> None   # its own flags
    async def run(args: argparse.Namespace) -> None              # serve until cancelled

`python -m tflow_listeners <source>` adds the Temporal flags below to the source's parser,
then awaits its `run`. Every flag can also come from an environment variable (the
operator's Deployments set those and mount Secrets as files), named in the flag's help.

`python -m tflow_listeners` owns the process's signals: SIGTERM or SIGINT cancels `run`,
and a source cleans up (a queue source settles what it holds, see `tflow_listeners.queue`)
on its way out. A source installs no signal handler of its own.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import Client

from tflow_listeners.handoff import DirectHandOff, HandOff
from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE
from tflow_workers.connection import connect


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
    add_routing_arguments(parser)


ROUTINGS = ("orchestrator", "direct")


def add_routing_arguments(parser: argparse.ArgumentParser) -> None:
    """Who routes the events: the root orchestrator (a workflow per event), or this
    listener with its namespace's mounted routing table (`spec.routing: direct`)."""
    add_flag(
        parser,
        "--routing",
        "TFLOW_LISTENER_ROUTING",
        default="orchestrator",
        choices=ROUTINGS,
        help="orchestrator: start one RootOrchestratorWorkflow per event; direct: match "
        "the namespace's routes here and start the flow runs (needs --routes-dir and "
        "--kube-namespace)",
    )
    add_flag(
        parser,
        "--routes-dir",
        "TFLOW_ROUTES_DIR",
        help="the namespace's mounted routing table, for --routing direct",
    )
    add_flag(
        parser,
        "--definitions-dir",
        "TFLOW_DEFINITIONS_DIR",
        help="the namespace's published WorkflowDefinitions, for --routing direct",
    )


def handoff_from(args: argparse.Namespace, client: Client) -> HandOff | DirectHandOff:
    """The hand-off the flags ask for."""
    if args.routing != "direct":
        return HandOff(client, args.task_queue, args.kube_namespace, tuple(args.share_with))
    if not args.kube_namespace:
        raise ValueError("--routing direct needs --kube-namespace: it routes one namespace")
    if not args.routes_dir:
        raise ValueError("--routing direct needs --routes-dir: the namespace's routing table")
    if args.share_with:
        raise ValueError(
            "--routing direct cannot share events (--share-with): another namespace's "
            "routes are only known to the root orchestrator"
        )
    # Imported here: the orchestrator's modules load the DSL, which a listener routing
    # through the root orchestrator has no use for.
    from tflow_workers.orchestrator.activities import EventRouter
    from tflow_workers.orchestrator.direct import DirectRouter
    from tflow_workers.temporal_namespaces import TemporalNamespaces

    router = EventRouter(
        Path(args.routes_dir),
        Path(args.definitions_dir) if args.definitions_dir else None,
        require_index=True,
    )
    return DirectHandOff(
        DirectRouter(
            client,
            router,
            args.kube_namespace,
            TemporalNamespaces.from_env(shared=client.namespace),
        )
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
