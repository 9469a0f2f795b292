"""Listener benchmarks, each against a baseline measured in the same run:

1. Hand-off: events POSTed to the webhook listener until answered 202 (= the event's
   RootOrchestratorWorkflow was started), against raw `start_workflow` calls for the
   same runs (same arguments, same concurrency) from a client in this process, on the
   same dev server. Throughput, p50/p99 latency and the ratio (target: the listener keeps
   97% or more of raw), and the CPU per event of this process (the client side), the
   listener and the server. The listener is a real process (`python -m tflow_listeners
   webhook`); rounds alternate raw and webhook so drift hits both. Everything shares the
   machine's cores, so the posts go through a cheap client (`bench.common.http_session`).
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
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import httpx
from bench.common import (
    Verdicts,
    add_server_dir_argument,
    add_verdict_arguments,
    dev_server,
    http_session,
    mean,
    memory_mb,
    percentile,
    post_json,
    print_table,
    process_cpu_seconds,
)
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.cloudevents import (
    ROOT_MEMO,
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    CloudEvent,
    RootInput,
    event_workflow_id,
)
from tflow_workers.connection import connect
from tflow_workers.dsl.expressions import clear_cache
from tflow_workers.routing import (
    CompiledRoute,
    Router,
    RoutingTable,
    load_table,
    split_for_configmap,
)

TARGET_RATIO = 0.97
TARGET_ADDED_MS = 5.0
TARGET_PEAK_MB = 150.0
TARGET_SQS_RATIO = 0.9
TARGET_LOAD_S = 1.0  # a 10k-route table, read from its files and compiled
TARGET_FIRST_MS = 0.3  # p99 of each type's first event after a load, 10k routes
TARGET_WARM_MS = 0.1  # p99 warm, 10k routes
TARGET_WARM_LARGE_MS = 0.2  # p99 warm, 100k routes
TASK_QUEUE = "bench-listener-router"


@dataclass
class Sample:
    """One variant's measurements, summed over rounds."""

    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    # CPU seconds used during the variant's rounds, by process: this bench (the client:
    # Temporal's SDK for raw starts, aiohttp's for posts), the listener, the Temporal server.
    cpu: dict[str, float] = field(default_factory=dict)

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


async def raw_start(client: Client, tag: str, i: int) -> None:
    """What a hand-off does, without a listener: the same start call for one event."""
    body = plain_event(tag, i)
    event = CloudEvent(id=body["id"], source=body["source"], type=body["eventType"])
    await client.start_workflow(
        ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
        RootInput(event=event.as_data(), local_routing=True),
        id=event_workflow_id(event.source, event.id),
        task_queue=TASK_QUEUE,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        memo=ROOT_MEMO,
    )


async def raw_round(client: Client, events: int, concurrency: int) -> tuple[float, list[float]]:
    tag = uuid.uuid4().hex[:8]
    return await run_concurrently(events, concurrency, lambda i: raw_start(client, tag, i))


async def webhook_post(http: aiohttp.ClientSession, url: str, tag: str, i: int) -> None:
    """One event through the webhook listener, accepted (202) or an error."""
    await post_json(http, url, plain_event(tag, i), 202)


async def webhook_round(url: str, events: int, concurrency: int) -> tuple[float, list[float]]:
    tag = uuid.uuid4().hex[:8]
    async with http_session(concurrency) as http:
        return await run_concurrently(
            events, concurrency, lambda i: webhook_post(http, url, tag, i)
        )


async def one_at_a_time(client: Client, url: str, events: int) -> tuple[list[float], list[float]]:
    """Latencies of raw starts and of webhook posts, one event at a time, alternating
    event by event (which goes first alternates too), so that a slow moment of the
    machine falls on both alike: a p99 from blocks of one variant after the other
    compared one block's spike with the other's calm (and came out negative)."""
    raw_tag, hook_tag = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    raw: list[float] = []
    hook: list[float] = []
    async with http_session(1) as http:
        for i in range(events):
            pair = [
                (raw, raw_start(client, raw_tag, i)),
                (hook, webhook_post(http, url, hook_tag, i)),
            ]
            for latencies, call in pair if i % 2 == 0 else reversed(pair):
                started = time.perf_counter()
                await call
                latencies.append(time.perf_counter() - started)
    return raw, hook


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


async def bench_handoff(
    args: argparse.Namespace, workdir: Path, verdicts: Verdicts
) -> dict[str, Any]:
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
            assert server.process is not None
            assert server.process.pid is not None
            pids = {"listener": listener.pid, "server": server.process.pid}

            def cpu_now() -> dict[str, float]:
                used = {part: process_cpu_seconds(pid) for part, pid in pids.items()}
                return {"bench": time.process_time(), **used}

            for round_no in range(args.rounds):
                order = [("raw", raw), ("webhook", hook)]
                if round_no % 2:
                    order.reverse()
                for name, sample in order:
                    before = cpu_now()
                    if name == "raw":
                        seconds, latencies = await raw_round(client, args.events, args.concurrency)
                    else:
                        seconds, latencies = await webhook_round(url, args.events, args.concurrency)
                    sample.events += args.events
                    sample.seconds += seconds
                    sample.latencies += latencies
                    for part, used in cpu_now().items():
                        sample.cpu[part] = sample.cpu.get(part, 0.0) + used - before[part]
            # One at a time, nothing queues: the p99 the listener adds to a start.
            raw_one, hook_one = Sample(), Sample()
            raw_one.latencies, hook_one.latencies = await one_at_a_time(
                client, url, args.latency_events
            )
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
    parts = ("bench", "listener", "server")
    cores = os.cpu_count() or 1
    print("CPU ms per event during the rounds (bench: this process, the client side)")
    print_table(
        ["variant", *parts, "total", f"wall ms x {cores} cores"],
        [
            [
                name,
                *(f"{s.cpu.get(p, 0.0) * 1000 / s.events:.2f}" for p in parts),
                f"{sum(s.cpu.values()) * 1000 / s.events:.2f}",
                f"{s.seconds * 1000 * cores / s.events:.2f}",
            ]
            for name, s in (("raw start_workflow", raw), ("webhook listener", hook))
        ],
    )
    added = (percentile(hook_one.latencies, 0.99) - percentile(raw_one.latencies, 0.99)) * 1000
    print(
        f"one at a time ({args.latency_events} each, alternating): raw p50/p99 "
        f"{percentile(raw_one.latencies, 0.5) * 1000:.1f}/"
        f"{percentile(raw_one.latencies, 0.99) * 1000:.1f} ms, webhook p50/p99 "
        f"{percentile(hook_one.latencies, 0.5) * 1000:.1f}/"
        f"{percentile(hook_one.latencies, 0.99) * 1000:.1f} ms"
    )
    peak = loaded.get("VmHWM", 0.0)
    print(
        f"webhook listener memory: idle {idle.get('VmRSS', 0):.0f} MB, after load "
        f"{loaded.get('VmRSS', 0):.0f} MB, peak {peak:.0f} MB"
    )
    verdicts.check(
        "webhook / raw start_workflow throughput",
        f"{ratio:.2f}",
        f">= {TARGET_RATIO:.2f}",
        ratio >= TARGET_RATIO,
    )
    verdicts.check(
        "webhook added latency p99, one at a time",
        f"{added:.1f} ms",
        f"<= {TARGET_ADDED_MS:g} ms",
        added <= TARGET_ADDED_MS,
    )
    verdicts.check(
        "webhook listener peak memory",
        f"{peak:.0f} MB",
        f"< {TARGET_PEAK_MB:.0f} MB",
        peak < TARGET_PEAK_MB,
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
        "webhook_added_p99_ms": round(added, 2),
    }


def fill_queue(sqs: Any, queue_url: str, count: int) -> float:
    """Send `count` plain events in batches of 10; the seconds it took."""
    tag = uuid.uuid4().hex[:8]
    began = time.perf_counter()
    for start in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(plain_event(tag, start + i))}
            for i in range(min(10, count - start))
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return time.perf_counter() - began


def drain_plainly(sqs: Any, queue_url: str, count: int, pollers: int) -> tuple[float, int]:
    """The baseline: `pollers` threads each receiving up to 10 messages and deleting them
    in one batch, until `count` are gone. Seconds from the first batch deleted to the
    last, and how many the first took (so that both variants leave out their start)."""
    lock = threading.Lock()
    done = 0
    first: tuple[float, int] | None = None

    def poll() -> None:
        nonlocal done, first
        while True:
            with lock:
                if done >= count:
                    return
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                continue
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            with lock:
                done += len(messages)
                if first is None:
                    first = (time.perf_counter(), done)

    threads = [threading.Thread(target=poll) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first is not None
    return time.perf_counter() - first[0], first[1]


def listener_events(port: int) -> float:
    """Events the listener has handed off so far (its /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("tflow_listener_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for_events(port: int, at_least: int) -> float:
    """Poll the listener until it has handed off `at_least` events; how many it had."""
    while (handed := listener_events(port)) < at_least:
        time.sleep(0.05)
    return handed


async def bench_sqs(args: argparse.Namespace, workdir: Path, verdicts: Verdicts) -> dict[str, Any]:
    count = args.sqs_events
    moto = MotoServer(workdir / "moto").start()
    try:
        sqs = moto.client("sqs")
        plain_url = sqs.create_queue(QueueName=f"bench-plain-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        # Both queues are full before their consumer starts: the drain alone is timed.
        sent = await asyncio.to_thread(fill_queue, sqs, plain_url, count)
        sent += await asyncio.to_thread(fill_queue, sqs, queue_url, count)
        plain_s, plain_first = await asyncio.to_thread(
            drain_plainly, sqs, plain_url, count, args.sqs_pollers
        )
        with dev_server(args.server_dir) as server:
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
                first = await asyncio.to_thread(wait_for_events, port, 1)
                began = time.perf_counter()
                await asyncio.to_thread(wait_for_events, port, count)
                sqs_s = time.perf_counter() - began
                peak = memory_mb(listener.pid).get("VmHWM", 0.0)
            finally:
                listener.stop()
    finally:
        moto.stop()
    plain_rate = (count - plain_first) / plain_s
    sqs_rate = (count - first) / sqs_s
    ratio = sqs_rate / plain_rate
    print(f"\nSQS listener ({count} messages in moto, {args.sqs_pollers} pollers each)")
    print_table(
        ["variant", "messages/s", "vs plain"],
        [
            ["plain boto3 receive + delete loop", f"{plain_rate:.0f}", "1.00"],
            ["SQS listener (receive, start run, delete)", f"{sqs_rate:.0f}", f"{ratio:.2f}"],
        ],
    )
    print(f"filling both queues took {sent:.1f}s; SQS listener peak memory {peak:.0f} MB")
    verdicts.check(
        "SQS listener drain / plain boto3 loop",
        f"{ratio:.2f}",
        f">= {TARGET_SQS_RATIO:.2f}",
        ratio >= TARGET_SQS_RATIO,
    )
    verdicts.check(
        "SQS listener peak memory",
        f"{peak:.0f} MB",
        f"< {TARGET_PEAK_MB:.0f} MB",
        peak < TARGET_PEAK_MB,
    )
    return {
        "sqs_plain_per_s": round(plain_rate, 1),
        "sqs_per_s": round(sqs_rate, 1),
        "sqs_ratio": round(ratio, 3),
        "sqs_fill_s": round(sent, 2),
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


@dataclass
class MatchRun:
    """One table size and jq mix, loaded from its files and matched twice."""

    label: str
    routes: int
    load_s: float
    first: list[float]
    first_cpu: list[float]
    warm: list[float]
    warm_cpu: list[float]
    baseline: list[float]
    matches: float


def measure_matching(
    routes_count: int, distinct: bool, events_count: int, workdir: Path
) -> MatchRun:
    rng = random.Random(7)
    routes = generate_routes(routes_count, rng, distinct)
    events = generate_events(events_count, routes, rng)
    table_dir = workdir / f"routes-{routes_count}-{int(distinct)}"
    table_dir.mkdir()
    for name, data in split_for_configmap(RoutingTable(routes=routes)).items():
        (table_dir / name).write_bytes(data)
    del routes
    clear_cache()  # a load starts cold, as in a new worker
    began = time.perf_counter()
    router = Router(load_table(table_dir))  # what the routing activity does on a change
    load_s = time.perf_counter() - began
    # The first pass: only each type's first event counts (the first after the load).
    seen: set[Any] = set()
    first, first_cpu = [], []
    for event in events:
        wall, cpu = time_per_event(router.match, [event])
        if event["type"] not in seen:
            seen.add(event["type"])
            first += wall
            first_cpu += cpu
    warm, warm_cpu = time_per_event(router.match, events)
    by_type: dict[str | None, list[CompiledRoute]] = {}
    for route in router.table.routes:
        by_type.setdefault(route.type, []).append(route)

    def lookup(event: Any, index: dict[str | None, list[CompiledRoute]] = by_type) -> object:
        return index.get(event["type"], ())

    baseline, _ = time_per_event(lookup, events)
    matches = sum(len(router.match(e)) for e in events[:1000]) / min(len(events), 1000)
    label = f"{routes_count // 1000}k routes, " + (
        "distinct jq per route" if distinct else "jq from a pool of 200"
    )
    return MatchRun(
        label, routes_count, load_s, first, first_cpu, warm, warm_cpu, baseline, matches
    )


def bench_matching(args: argparse.Namespace, verdicts: Verdicts) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows = []
    runs = []
    with tempfile.TemporaryDirectory(prefix="tflow-bench-routes-") as tmp:
        for size in args.routes:
            for distinct in (False, True):
                if distinct and size > args.distinct_up_to:
                    continue
                runs.append(measure_matching(size, distinct, args.match_events, Path(tmp)))
    for run in runs:
        for name, timings in (
            ("first event of each type, wall", run.first),
            ("first event of each type, CPU", run.first_cpu),
            ("warm, wall", run.warm),
            ("warm, CPU", run.warm_cpu),
            ("baseline: dict lookup by type", run.baseline),
        ):
            rows.append(
                [
                    f"{run.label}: {name}",
                    f"{mean(timings):.3f}",
                    f"{percentile(timings, 0.5):.3f}",
                    f"{percentile(timings, 0.99):.3f}",
                    f"{max(timings):.3f}",
                ]
            )
        key = run.label.replace(" ", "_").replace(",", "")
        results[f"{key}_load_s"] = round(run.load_s, 3)
        results[f"{key}_first_cpu_p99_ms"] = round(percentile(run.first_cpu, 0.99), 4)
        results[f"{key}_warm_p50_ms"] = round(percentile(run.warm, 0.5), 4)
        results[f"{key}_warm_p99_ms"] = round(percentile(run.warm, 0.99), 4)
        results[f"{key}_warm_cpu_p99_ms"] = round(percentile(run.warm_cpu, 0.99), 4)
        results[f"{key}_matches_per_event"] = round(run.matches, 2)
    print(f"\nRoute matching: {args.match_events} events per table, ms per event")
    print_table(["", "mean", "p50", "p99", "max"], rows)
    print_table(
        ["table", "load s", "matches/event"],
        [[r.label, f"{r.load_s:.2f}", f"{r.matches:.2f}"] for r in runs],
    )
    for run in runs:
        first = percentile(run.first_cpu, 0.99)
        warm = percentile(run.warm_cpu, 0.99)
        warm_target = TARGET_WARM_MS if run.routes <= 10_000 else TARGET_WARM_LARGE_MS
        if run.routes <= 10_000:
            verdicts.check(
                f"table load, {run.label}",
                f"{run.load_s:.2f} s",
                f"<= {TARGET_LOAD_S:g} s",
                run.load_s <= TARGET_LOAD_S,
            )
            verdicts.check(
                f"first match p99 (CPU), {run.label}",
                f"{first:.3f} ms",
                f"<= {TARGET_FIRST_MS:g} ms",
                first <= TARGET_FIRST_MS,
            )
        verdicts.check(
            f"warm match p99 (CPU), {run.label}",
            f"{warm:.3f} ms",
            f"<= {warm_target:g} ms",
            warm <= warm_target,
        )
    return results


async def main_async(args: argparse.Namespace) -> int:
    verdicts = Verdicts("bench_listener.py")
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tflow-bench-listener-") as tmp:
        workdir = Path(tmp)
        if not args.skip_handoff:
            summary |= await bench_handoff(args, workdir, verdicts)
        if args.sqs:
            summary |= await bench_sqs(args, workdir, verdicts)
    summary |= bench_matching(args, verdicts)
    print("\nsummary:", json.dumps(summary))
    return verdicts.finish(args)


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per round and variant")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--latency-events", type=int, default=400, help="events per variant, one at a time"
    )
    parser.add_argument(
        "--routes", type=sizes, default=[10_000, 100_000], help="table sizes, comma-separated"
    )
    parser.add_argument(
        "--distinct-up-to",
        type=int,
        default=10_000,
        help="largest table also measured with a distinct jq program per route",
    )
    parser.add_argument("--match-events", type=int, default=20000)
    parser.add_argument("--sqs", action="store_true", help="also measure the SQS listener")
    parser.add_argument("--sqs-events", type=int, default=300)
    parser.add_argument("--sqs-pollers", type=int, default=2)
    parser.add_argument("--skip-handoff", action="store_true")
    add_server_dir_argument(parser)
    add_verdict_arguments(parser)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
