"""Where a routed event's Temporal server CPU goes, without pods: the root orchestrator and
an interpreter worker in this process, against the dev server, the parts of a routed
event measured one by one in the same run.

    .venv/bin/python bench/bench_orchestrator.py [--events 300] [--concurrency 16]
        [--rounds 3]

Variants, alternating over `--rounds`, `--events` each, `--concurrency` at a time:

* direct: a flow run started with `start_run` (search attributes and memo, as the run
  API and the operator start runs), waited for until it completed;
* routed: a root run per event, started as a listener starts it (`HandOff.submit`),
  its route starting the same flow; waited for until the flow's run completed;
* routed directly: the same event routed as a Listener with `routing: direct` routes it
  (`DirectHandOff.submit`: the table matched in this process, the flow run started with
  the client, no root run); waited for until the flow's run completed;
* unrouted: a root run per event of a type no route matches: the root run alone, with
  its routing and its delivery step, starting nothing;
* delivery query: the visibility query the root run's delivery step sends
  (`delivery_query`), alone, one per event.

Per variant it prints the dev server's CPU per event (the part that sets the pace on a
server-bound machine), this process's (client and both workers) and the wall time per
event. `bench_cluster.py` measures the same path through real pods; this one says which
part of the root run costs the server what, which is what a change to how events are
routed (DESIGN decision 4) has to weigh.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from bench.common import (
    add_server_dir_argument,
    dev_server,
    median,
    print_table,
    process_cpu_seconds,
    stop_on_sigterm,
)
from temporalio.client import Client

from tflow_listeners.handoff import DirectHandOff, HandOff
from tflow_workers.cloudevents import CloudEvent, event_workflow_id
from tflow_workers.connection import connect
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.model import DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run
from tflow_workers.orchestrator.activities import (
    EventRouter,
    OrchestratorActivities,
    delivery_query,
)
from tflow_workers.orchestrator.direct import DirectRouter
from tflow_workers.orchestrator.model import Decision, EventScope
from tflow_workers.orchestrator.worker import build_orchestrator_worker
from tflow_workers.routing import (
    CompiledRoute,
    RoutingTable,
    published_files,
)
from tflow_workers.worker import build_worker

NAMESPACE = "bench"
DEFINITION = "count"
SOURCE = "bench/orchestrator"
ROUTED_TYPE = "bench.count"
UNROUTED_TYPE = "bench.nobody"
DOCUMENT: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "bench", "name": "count", "version": "1.0.0"},
    "do": [{"record": {"set": {"n": "${ .n }"}}}],
}
RESULT_TIMEOUT = 120.0
# The share of a core below which the server counts as idle between variants.
IDLE_SHARE = 0.1


@dataclass
class Variant:
    name: str
    server_ms: list[float] = field(default_factory=list)
    bench_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)


@dataclass
class Setup:
    client: Client
    server_pid: int
    flow_queue: str
    handoff: HandOff
    direct_handoff: DirectHandOff


async def at_most(concurrency: int, count: int, one: Callable[[int], Awaitable[Any]]) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with limit:
            await one(i)

    await asyncio.wait_for(
        asyncio.gather(*(guarded(i) for i in range(count))), RESULT_TIMEOUT + count
    )


def event(event_type: str, i: int) -> CloudEvent:
    return CloudEvent(id=uuid.uuid4().hex, source=SOURCE, type=event_type, data={"n": i})


async def direct(setup: Setup, i: int) -> None:
    run = RunInput(
        document=DOCUMENT,
        input={"n": i},
        definition=DefinitionRef(namespace=NAMESPACE, name=DEFINITION),
    )
    handle = await start_run(setup.client, run, setup.flow_queue)
    await handle.result()


async def handed_off(setup: Setup, event_type: str, i: int, status: str) -> str:
    """An event handed to a root run as a listener hands it; the root run's id, once it
    completed with `status`."""
    sent = event(event_type, i)
    await setup.handoff.submit(sent)
    root_id = event_workflow_id(sent.source, sent.id, NAMESPACE)
    handle = setup.client.get_workflow_handle(root_id, result_type=Decision)
    decision = await handle.result()
    assert decision.status == status, decision
    return root_id


async def routed(setup: Setup, i: int) -> None:
    root_id = await handed_off(setup, ROUTED_TYPE, i, "routed")
    await setup.client.get_workflow_handle(f"{root_id}/{NAMESPACE}/{DEFINITION}").result()


async def routed_directly(setup: Setup, i: int) -> None:
    sent = event(ROUTED_TYPE, i)
    assert await setup.direct_handoff.submit(sent) == "started"
    root_id = event_workflow_id(sent.source, sent.id, NAMESPACE)
    await setup.client.get_workflow_handle(f"{root_id}/{NAMESPACE}/{DEFINITION}").result()


async def unrouted(setup: Setup, i: int) -> None:
    await handed_off(setup, UNROUTED_TYPE, i, "unroutable")


async def query(setup: Setup, i: int) -> None:
    scope = EventScope(namespace=NAMESPACE)
    async for _ in setup.client.list_workflows(delivery_query(ROUTED_TYPE, scope)):
        pass


async def settled(pid: int, interval: float = 0.25, within: float = 15.0) -> None:
    """Wait until the server's CPU is down to a trickle: it goes on with a variant's
    visibility updates and transfer tasks after the last result came back, and that work
    belongs to the variant that caused it, not to the next one."""
    deadline = time.monotonic() + within
    last = process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)
        now = process_cpu_seconds(pid)
        if now - last < IDLE_SHARE * interval:
            return
        last = now


async def measure(
    setup: Setup, variant: Variant, one: Callable[[Setup, int], Awaitable[None]], args: Any
) -> None:
    server = process_cpu_seconds(setup.server_pid)
    own = process_cpu_seconds(os.getpid())
    started = time.perf_counter()
    await at_most(args.concurrency, args.events, lambda i: one(setup, i))
    wall = time.perf_counter() - started
    await settled(setup.server_pid)
    per_event = 1000 / args.events
    variant.server_ms.append((process_cpu_seconds(setup.server_pid) - server) * per_event)
    variant.bench_ms.append((process_cpu_seconds(os.getpid()) - own) * per_event)
    variant.wall_ms.append(wall * per_event)


def write_table(routes_dir: Path, definitions_dir: Path, flow_queue: str) -> None:
    """The routing table and the published definition, as the operator writes them."""
    routes_dir.mkdir()
    definitions_dir.mkdir()
    route = CompiledRoute(
        namespace=NAMESPACE,
        name="count",
        workflow=DEFINITION,
        task_queue=flow_queue,
        type=ROUTED_TYPE,
        input="${ .data }",
    )
    table = RoutingTable(routes=[route])
    for name, body in published_files(table).items():
        (routes_dir / name).write_bytes(body)
    manifest = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": DEFINITION, "namespace": NAMESPACE, "generation": 1},
        "spec": {"taskQueue": flow_queue, "workflow": DOCUMENT},
    }
    (definitions_dir / f"{NAMESPACE}.{DEFINITION}.yaml").write_text(yaml.safe_dump(manifest))


async def main_async(args: argparse.Namespace) -> int:
    stop_on_sigterm()
    variants = {
        name: (Variant(name), one)
        for name, one in (
            ("direct", direct),
            ("routed", routed),
            ("routed directly", routed_directly),
            ("unrouted", unrouted),
            ("delivery query", query),
        )
    }
    with dev_server(args.server_dir) as server, tempfile.TemporaryDirectory() as workdir:
        assert server.process is not None
        assert server.process.pid is not None
        client = await connect(server.address, server.namespace)
        routes_dir, definitions_dir = Path(workdir, "routes"), Path(workdir, "definitions")
        flow_queue, router_queue = "bench-flows", "bench-router"
        write_table(routes_dir, definitions_dir, flow_queue)
        setup = Setup(
            client=client,
            server_pid=server.process.pid,
            flow_queue=flow_queue,
            handoff=HandOff(client, router_queue, namespace=NAMESPACE),
            direct_handoff=DirectHandOff(
                DirectRouter(
                    client,
                    EventRouter(routes_dir, definitions_dir, require_index=True),
                    NAMESPACE,
                )
            ),
        )
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                build_worker(client, flow_queue, EngineActivities(client=client))
            )
            await stack.enter_async_context(
                build_orchestrator_worker(
                    client,
                    router_queue,
                    OrchestratorActivities(routes_dir, definitions_dir),
                )
            )
            # Warm-up: every path once, so no variant pays for first use.
            for _, one in variants.values():
                await one(setup, 0)
            order = list(variants)
            for round_ in range(args.rounds):
                for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
                    variant, one = variants[name]
                    await measure(setup, variant, one, args)
                    print(
                        f"round {round_ + 1}: {name}: server {variant.server_ms[-1]:.1f} ms/event",
                        flush=True,
                    )
    rows = [
        [
            v.name,
            f"{median(v.server_ms):.1f} ({', '.join(f'{x:.1f}' for x in v.server_ms)})",
            f"{median(v.bench_ms):.1f}",
            f"{median(v.wall_ms):.1f}",
        ]
        for v, _ in variants.values()
    ]
    print(f"\n{args.events} events per variant and round, {args.concurrency} at a time:")
    print_table(
        ["variant", "server CPU ms/event (rounds)", "bench CPU ms/event", "wall ms/event"], rows
    )
    cpu = {name: median(v.server_ms) for name, (v, _) in variants.items()}
    root = cpu["routed"] - cpu["direct"]
    print(
        f"\nthe root run adds {root:.1f} ms of server CPU per event "
        f"(routed {cpu['routed']:.1f} / direct {cpu['direct']:.1f} = "
        f"{cpu['routed'] / cpu['direct']:.2f}x); routed directly "
        f"{cpu['routed directly']:.1f} ({cpu['routed directly'] / cpu['direct']:.2f}x); "
        "a root run that starts nothing costs "
        f"{cpu['unrouted']:.1f}, of which the delivery query alone "
        f"{cpu['delivery query']:.1f}"
    )
    print("(medians over the rounds)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events per variant and round")
    parser.add_argument("--concurrency", type=int, default=16, help="events in flight")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, variants alternating")
    add_server_dir_argument(parser)
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
