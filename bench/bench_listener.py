"""Listener benchmarks, each against a baseline measured in the same run:

1. Hand-off: events POSTed to the webhook listener until answered 202 (= the event's
   RootOrchestratorWorkflow was started), against raw `start_workflow` calls for the
   same runs (same arguments, same concurrency) from a client in this process, on the
   same dev server. Throughput, p50/p99 latency and the ratio (target: the listener keeps
   80% or more of raw). The listener is a real process (`python -m tflow_listeners
   webhook`); rounds alternate raw and webhook so drift hits both.
2. Memory: the listener process's peak RSS (VmHWM) after that load (target: < 150 MB).
3. Route matching: `tflow_workers.routing.Router` over 10,000 generated routes (mixed
   types, sources, jq filters and input mappings), time per event (target: < 1 ms),
   against a plain dict lookup of the event's type.
4. With `--sqs`: the SQS listener process draining a moto queue, against raw starts of
   as many runs; and its peak RSS. moto's server is much slower than SQS, so this shows
   the listener's overhead only loosely.

    .venv/bin/python bench/bench_listener.py [--events 1000] [--rounds 3] [--concurrency 16]
        [--routes 10000] [--sqs] [--skip-handoff] [--server-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.common import (
    add_server_dir_argument,
    dev_server,
    mean,
    memory_mb,
    percentile,
    print_table,
)
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.cloudevents import (
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    CloudEvent,
    RootInput,
    event_workflow_id,
)
from tflow_workers.connection import connect
from tflow_workers.routing import CompiledRoute, Router, RoutingTable

TARGET_RATIO = 0.80
TARGET_PEAK_MB = 150.0
TARGET_MATCH_MS = 1.0
TASK_QUEUE = "bench-listener-router"


@dataclass
class Sample:
    """One variant's measurements, summed over rounds."""

    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def run_concurrently(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run `one(i)` for i < count, `concurrency` at a time; wall seconds and latencies."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            began = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


def plain_event(tag: str, i: int) -> dict[str, Any]:
    return {
        "eventType": "document-added",
        "source": f"bench/{tag}",
        "id": f"{i}-{uuid.uuid4().hex}",
        "key": f"uploads/{i}.pdf",
    }


async def raw_round(client: Client, events: int, concurrency: int) -> tuple[float, list[float]]:
    """What a hand-off does, without a listener: the same start call per event."""
    tag = uuid.uuid4().hex[:8]

    async def start(i: int) -> None:
        body = plain_event(tag, i)
        event = CloudEvent(id=body["id"], source=body["source"], type=body["eventType"])
        await client.start_workflow(
            ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
            RootInput(event=event.as_data()),
            id=event_workflow_id(event.source, event.id),
            task_queue=TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )

    return await run_concurrently(events, concurrency, start)


async def webhook_round(url: str, events: int, concurrency: int) -> tuple[float, list[float]]:
    tag = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def post(i: int) -> None:
            response = await http.post(url, json=plain_event(tag, i))
            if response.status_code != 202:
                raise RuntimeError(f"webhook answered {response.status_code}: {response.text}")

        return await run_concurrently(events, concurrency, post)


def start_listener(name: str, argv: list[str], port: int, workdir: Path) -> ManagedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "tflow_listeners", *argv, "--log-level", "WARNING"],
        workdir / f"{name}.log",
        env=env,
        cwd=REPO_ROOT,
    ).start()

    def ready() -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200

    process.wait_until(ready, 90, "ready")
    return process


async def bench_handoff(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with dev_server(args.server_dir) as server:
        client = await connect(server.address, server.namespace)
        port = free_port()
        listener = start_listener(
            "webhook",
            [
                "webhook",
                "--port",
                str(port),
                "--address",
                server.address,
                "--task-queue",
                TASK_QUEUE,
            ],
            port,
            workdir,
        )
        try:
            assert listener.pid is not None
            idle = memory_mb(listener.pid)
            url = f"http://127.0.0.1:{port}/events"
            # Warm-up: connections, caches, the server's first-write costs.
            await raw_round(client, 100, args.concurrency)
            await webhook_round(url, 100, args.concurrency)
            raw, hook = Sample(), Sample()
            for round_no in range(args.rounds):
                order = [("raw", raw), ("webhook", hook)]
                if round_no % 2:
                    order.reverse()
                for name, sample in order:
                    if name == "raw":
                        seconds, latencies = await raw_round(client, args.events, args.concurrency)
                    else:
                        seconds, latencies = await webhook_round(url, args.events, args.concurrency)
                    sample.events += args.events
                    sample.seconds += seconds
                    sample.latencies += latencies
            loaded = memory_mb(listener.pid)
        finally:
            listener.stop()
    ratio = hook.throughput / raw.throughput if raw.throughput else 0.0
    print(
        f"\nHand-off: {args.rounds} rounds x {args.events} events per variant, "
        f"concurrency {args.concurrency}"
    )
    print_table(
        ["variant", "events/s", "p50 ms", "p99 ms", "vs raw"],
        [
            [
                name,
                f"{s.throughput:.0f}",
                f"{percentile(s.latencies, 0.5) * 1000:.1f}",
                f"{percentile(s.latencies, 0.99) * 1000:.1f}",
                f"{s.throughput / raw.throughput:.2f}",
            ]
            for name, s in (("raw start_workflow", raw), ("webhook listener", hook))
        ],
    )
    verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"webhook/raw throughput: {ratio:.2f} (target >= {TARGET_RATIO:.2f}: {verdict})")
    peak = loaded.get("VmHWM", 0.0)
    print(
        f"webhook listener memory: idle {idle.get('VmRSS', 0):.0f} MB, after load "
        f"{loaded.get('VmRSS', 0):.0f} MB, peak {peak:.0f} MB (target < {TARGET_PEAK_MB:.0f} "
        f"MB: {'ok' if peak < TARGET_PEAK_MB else 'ABOVE TARGET'})"
    )
    return {
        "raw_per_s": round(raw.throughput, 1),
        "webhook_per_s": round(hook.throughput, 1),
        "ratio": round(ratio, 3),
        "raw_p50_ms": round(percentile(raw.latencies, 0.5) * 1000, 2),
        "raw_p99_ms": round(percentile(raw.latencies, 0.99) * 1000, 2),
        "webhook_p50_ms": round(percentile(hook.latencies, 0.5) * 1000, 2),
        "webhook_p99_ms": round(percentile(hook.latencies, 0.99) * 1000, 2),
        "webhook_idle_mb": round(idle.get("VmRSS", 0.0), 1),
        "webhook_peak_mb": round(peak, 1),
    }


async def bench_sqs(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    moto = MotoServer(workdir / "moto").start()
    try:
        sqs = moto.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        with dev_server(args.server_dir) as server:
            client = await connect(server.address, server.namespace)
            port = free_port()
            listener = start_listener(
                "sqs",
                [
                    "sqs",
                    "--queue-url",
                    queue_url,
                    "--endpoint-url",
                    moto.endpoint_url,
                    "--region",
                    REGION,
                    "--wait-time-seconds",
                    "1",
                    "--pollers",
                    str(args.sqs_pollers),
                    "--port",
                    str(port),
                    "--address",
                    server.address,
                    "--task-queue",
                    TASK_QUEUE,
                ],
                port,
                workdir,
            )
            try:
                assert listener.pid is not None
                await raw_round(client, 100, args.concurrency)  # warm-up
                raw_seconds, _ = await raw_round(client, args.events, args.concurrency)
                tag = uuid.uuid4().hex[:8]
                began = time.perf_counter()
                for start in range(0, args.events, 10):
                    entries = [
                        {"Id": str(i), "MessageBody": json.dumps(plain_event(tag, start + i))}
                        for i in range(min(10, args.events - start))
                    ]
                    await asyncio.to_thread(
                        sqs.send_message_batch, QueueUrl=queue_url, Entries=entries
                    )
                sent = time.perf_counter() - began
                while True:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=queue_url,
                        AttributeNames=[
                            "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible",
                        ],
                    )["Attributes"]
                    if sum(int(v) for v in attributes.values()) == 0:
                        break
                    await asyncio.sleep(0.1)
                drained = time.perf_counter() - began
                peak = memory_mb(listener.pid).get("VmHWM", 0.0)
            finally:
                listener.stop()
    finally:
        moto.stop()
    raw_rate = args.events / raw_seconds
    sqs_rate = args.events / drained
    print(f"\nSQS listener ({args.events} messages into moto, {args.sqs_pollers} pollers)")
    print_table(
        ["variant", "events/s", "vs raw"],
        [
            ["raw start_workflow", f"{raw_rate:.0f}", "1.00"],
            ["SQS listener (send + drain)", f"{sqs_rate:.0f}", f"{sqs_rate / raw_rate:.2f}"],
        ],
    )
    print(f"sending alone took {sent:.1f}s; SQS listener peak memory {peak:.0f} MB")
    return {
        "sqs_raw_per_s": round(raw_rate, 1),
        "sqs_per_s": round(sqs_rate, 1),
        "sqs_ratio": round(sqs_rate / raw_rate, 3),
        "sqs_send_s": round(sent, 2),
        "sqs_peak_mb": round(peak, 1),
    }


# ---- route matching -----------------------------------------------------------------


def generate_routes(count: int, rng: random.Random, distinct_jq: bool) -> list[CompiledRoute]:
    """Routes like an operator compiles from many EventRoutes: ~1000 event types, 50
    sources; 0.2% with no type (each tied to a source, like the seed's route for everything
    from `monitoring`), 60% of the others with a source, 30% with a jq filter and 20% with
    an input mapping. With `distinct_jq` every filter and mapping is a different program (the worst
    case for the compiled-program cache); else they come from a pool of 200."""
    types = [f"type-{i}" for i in range(max(count // 10, 1))]
    sources = [f"source-{i}" for i in range(50)]
    routes = []
    for i in range(count):
        n = i if distinct_jq else i % 200
        filters = (
            f"${{ .data.size > {n} }}",
            f'${{ .data.key | endswith(".{n % 7}.pdf") | not }}',
            f'${{ (.data.tags // []) | index("t{n}") == null }}',
        )
        any_type = rng.random() < 0.002
        routes.append(
            CompiledRoute(
                namespace=f"ns-{i % 20}",
                name=f"route-{i}",
                priority=rng.randint(0, 100),
                type=None if any_type else rng.choice(types),
                source=rng.choice(sources) if any_type or rng.random() < 0.6 else None,
                filter=rng.choice(filters) if rng.random() < 0.3 else None,
                input=f"${{ {{uri: .data.documentUri, n: {n}}} }}" if rng.random() < 0.2 else None,
                workflow=f"flow-{i % 3000}",
                task_queue=f"queue-{i % 50}",
            )
        )
    return routes


def generate_events(count: int, routes: list[CompiledRoute], rng: random.Random) -> list[Any]:
    types = sorted({r.type for r in routes if r.type is not None})
    sources = sorted({r.source for r in routes if r.source is not None})
    events = []
    for i in range(count):
        events.append(
            {
                "specversion": "1.0",
                "id": str(i),
                # Mostly known types; some no route has.
                "type": rng.choice(types) if rng.random() < 0.9 else f"unknown-{i}",
                "source": rng.choice(sources),
                "data": {
                    "key": f"uploads/{i}.{i % 7}.pdf",
                    "size": rng.randint(0, 400),
                    "documentUri": f"s3://docs/uploads/{i}.pdf",
                },
            }
        )
    return events


def time_per_event(
    match: Callable[[Any], object], events: list[Any]
) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) milliseconds per event. On a busy machine the wall
    time's tail is mostly preemption; the CPU time is what matching costs."""
    wall, cpu = [], []
    for event in events:
        began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
        match(event)
        cpu.append((time.thread_time_ns() - began_cpu) / 1e6)
        wall.append((time.perf_counter_ns() - began) / 1e6)
    return wall, cpu


def bench_matching(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows = []
    for distinct in (False, True):
        rng = random.Random(7)
        routes = generate_routes(args.routes, rng, distinct)
        events = generate_events(args.match_events, routes, rng)
        built = time.perf_counter()
        router = Router(RoutingTable(routes=routes))
        build_ms = (time.perf_counter() - built) * 1000
        by_type: dict[str | None, list[CompiledRoute]] = {}
        for route in routes:
            by_type.setdefault(route.type, []).append(route)
        cold, _ = time_per_event(router.match, events)  # compiles jq programs as it goes
        warm, warm_cpu = time_per_event(router.match, events)

        def lookup(event: Any, index: dict[str | None, list[CompiledRoute]] = by_type) -> object:
            return index.get(event["type"], ())

        baseline, _ = time_per_event(lookup, events)
        matches = sum(len(router.match(e)) for e in events[:1000]) / min(len(events), 1000)
        label = "distinct jq per route" if distinct else "jq from a pool of 200"
        for name, timings in (
            (f"{label}, first pass", cold),
            (f"{label}, warm", warm),
            (f"{label}, warm, CPU time", warm_cpu),
        ):
            rows.append(
                [
                    name,
                    f"{mean(timings):.3f}",
                    f"{percentile(timings, 0.5):.3f}",
                    f"{percentile(timings, 0.99):.3f}",
                    f"{max(timings):.3f}",
                    f"{percentile(timings, 0.99) / percentile(baseline, 0.99):.0f}x",
                ]
            )
        key = "distinct" if distinct else "pooled"
        results[f"match_{key}_warm_p50_ms"] = round(percentile(warm, 0.5), 4)
        results[f"match_{key}_warm_p99_ms"] = round(percentile(warm, 0.99), 4)
        results[f"match_{key}_warm_cpu_p99_ms"] = round(percentile(warm_cpu, 0.99), 4)
        results[f"match_{key}_cold_p99_ms"] = round(percentile(cold, 0.99), 4)
        results[f"match_{key}_build_ms"] = round(build_ms, 1)
        results[f"match_{key}_matches_per_event"] = round(matches, 2)
    rows.append(
        [
            "baseline: dict lookup by type",
            f"{mean(baseline):.4f}",
            f"{percentile(baseline, 0.5):.4f}",
            f"{percentile(baseline, 0.99):.4f}",
            f"{max(baseline):.4f}",
            "1x",
        ]
    )
    print(
        f"\nRoute matching: {args.routes} routes, {args.match_events} events "
        f"(~{results['match_pooled_matches_per_event']} matches per event), ms per event"
    )
    print_table(["", "mean", "p50", "p99", "max", "p99 vs dict"], rows)
    for key in ("pooled", "distinct"):
        p99 = results[f"match_{key}_warm_p99_ms"]
        cpu = results[f"match_{key}_warm_cpu_p99_ms"]
        print(
            f"{key}: warm p99 per event {p99:.3f} ms wall, {cpu:.3f} ms CPU (target < "
            f"{TARGET_MATCH_MS:.0f} ms: {'ok' if cpu < TARGET_MATCH_MS else 'ABOVE TARGET'})"
        )
    return results


async def main_async(args: argparse.Namespace) -> None:
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tflow-bench-listener-") as tmp:
        workdir = Path(tmp)
        if not args.skip_handoff:
            summary |= await bench_handoff(args, workdir)
        if args.sqs:
            summary |= await bench_sqs(args, workdir)
    summary |= bench_matching(args)
    print("\nsummary:", json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--routes", type=int, default=10000)
    parser.add_argument("--match-events", type=int, default=20000)
    parser.add_argument("--sqs", action="store_true", help="also measure the SQS listener")
    parser.add_argument("--sqs-pollers", type=int, default=2)
    parser.add_argument("--skip-handoff", action="store_true")
    add_server_dir_argument(parser)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
