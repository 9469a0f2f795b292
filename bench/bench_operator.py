"""Operator convergence: time from applying N WorkflowDefinitions and N EventRoutes to all
of them Ready, against the time the apiserver takes merely to accept them, and the
operator's peak memory. Target: all Ready within 1.3x the apiserver's time at every size,
peak RSS under 300 MB at the largest.

    .venv/bin/python bench/bench_operator.py [--sizes 1000,10000] [--queues 10] \
        [--profile operator.prof] [--strict] [--results results.jsonl]

One run starts its own control plane (etcd, kube-apiserver, kube-controller-manager),
the Temporal dev server, KEDA's CRDs and the operator (a subprocess under its RBAC role,
as in the integration tests). For each N, the 2N objects go to a fresh namespace by
server-side apply, 16 requests at a time; the definitions spread over ``--queues`` task
queues (so ``--queues`` worker Deployments), route i targets definition i. Readiness is
followed with one watch per kind (a list of 2N objects four times a second would load the
apiserver, and the bench's own CPU, as much as the operator does at 10,000).

Baseline, in the same run and before the operator starts: the time for the apiserver to
merely accept the same 2N objects the same way (no operator running). The ratio is
(apply + converge) / baseline. For each N it also prints the CPU seconds each server
process and the operator used from the first apply to all Ready (on a shared two-core
machine, who used the CPU says who set the pace), the operator's open sockets at most
(sampled once a second: its connections to the apiserver), and the apiserver's requests
in that time by verb and resource with the time it spent serving them (its own metrics).
``--profile FILE`` runs the operator under cProfile (``TFLOW_PROFILE``) and prints where
it spent its time; ``--memory-profile FILE`` traces its allocations
(``TFLOW_MEMORY_PROFILE``) and prints where the memory was at the largest traced size;
``--apiserver-profile FILE`` takes a CPU profile of the apiserver during the last size's
burst; ``--owner-cost`` first prints what one apply of a Deployment with 10 to 1000 owner
references costs the apiserver (a worker group's apply), against a small object's, and
what one write of a large ConfigMap costs it, applied or replaced. ``--queue-facts``
only prints the operator's CPU per change of one task queue's facts (its owner, Temporal
namespace and members, worked out again on every change of the queue) at 100, 1000 and
10,000 definitions on the queue, and exits: no servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pstats
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from bench.common import (
    Verdicts,
    add_verdict_arguments,
    memory_mb,
    print_table,
    process_cpu_seconds,
    stop_on_sigterm,
)
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch
from operator_harness import install_keda_crds, start_operator
from prometheus_client.parser import text_string_to_metric_families

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT
from tflow_operator.kube import KubeClient
from tflow_operator.model import definition_info
from tflow_operator.runtime import KopfIndices

TARGET_RATIO = 1.3
TARGET_PEAK_MB = 300.0
MB = 1024 * 1024
DEFAULT_SIZES = "1000,10000"
CONCURRENCY = 16
API = "temporalflow.dev/v1alpha1"


def queue_facts_cost() -> None:
    """``--queue-facts``: CPU ms per recompute of a queue's facts through the operator's
    index (``KopfIndices.queue``), the index alternating between the queue with and
    without its newest definition, as in a burst where each change adds one."""
    template = definition_info(
        {
            "metadata": {
                "name": "d",
                "namespace": "bench",
                "uid": "u",
                "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": definition("bench", 0, 1)["spec"],
        }
    )
    rows = []
    for size in (100, 1000, 10_000):
        infos = [
            dataclasses.replace(
                template,
                name=f"d{i:05d}",
                uid=f"u{i}",
                created=f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            )
            for i in range(size)
        ]
        whole, short = tuple(infos), tuple(infos[:-1])
        index: dict[Any, Any] = {("queue", template.task_queue): whole}
        indices = KopfIndices(definitions=index)
        rounds = max(20, 200_000 // size)
        began = time.process_time()
        for i in range(rounds):
            index[("queue", template.task_queue)] = short if i % 2 else whole
            indices.queue(template.task_queue)
        each = (time.process_time() - began) / rounds * 1000
        # A burst adds the definitions one by one: the changes cost from nothing to `each`.
        rows.append([f"{size}", f"{each:.3f}", f"{each * size / 2000:.1f}"])
    print("A queue's facts, worked out again per change (CPU):")
    print_table(
        ["definitions on the queue", "ms per change", "s over a burst filling it (about)"], rows
    )


def definition(namespace: str, index: int, queues: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "WorkflowDefinition",
        "metadata": {"name": f"d{index:04d}", "namespace": namespace},
        "spec": {
            # A task queue belongs to one namespace: each size gets its own queues.
            "taskQueue": f"{namespace}-q{index % queues}",
            "workflow": {
                "document": {
                    "dsl": "1.0.0",
                    "namespace": "bench",
                    "name": f"flow-{index}",
                    "version": "1.0.0",
                },
                "do": [
                    {"prepare": {"set": {"id": "${ .id }", "step": index}}},
                    {"check": {"switch": [{"big": {"when": "${ .id > 10 }", "then": "end"}}]}},
                    {"finish": {"set": {"done": True}}},
                ],
            },
        },
    }


def route(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "EventRoute",
        "metadata": {"name": f"r{index:04d}", "namespace": namespace},
        "spec": {
            "match": {
                "type": f"bench-event-{index}",
                "source": "bench",
                "filter": '${ .data.key | endswith(".pdf") }',
            },
            "workflow": f"d{index:04d}",
            "input": "${ {id: .data.id} }",
            "priority": index % 7,
        },
    }


async def apply_all(kube: KubeClient, objects: list[dict[str, Any]]) -> float:
    """Server-side apply every object, CONCURRENCY at a time; seconds taken."""
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(obj: dict[str, Any]) -> None:
        async with semaphore:
            # The apiserver's default validation, as a client that sets none sends them,
            # and as every baseline in docs/benchmarks.md was measured.
            await kube.apply(obj, field_validation="Warn")

    started = time.perf_counter()
    await asyncio.gather(*(one(obj) for obj in objects))
    return time.perf_counter() - started


def _ready(item: dict[str, Any]) -> bool:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


class ReadyWatch:
    """Which objects of one kind in one namespace are Ready, kept current by a watch."""

    def __init__(
        self, api: k8s.ApiClient, namespace: str, plural: str, changed: asyncio.Event
    ) -> None:
        self.objects = k8s.CustomObjectsApi(api)
        self.namespace = namespace
        self.plural = plural
        self.ready: dict[str, bool] = {}
        self.changed = changed

    def _see(self, kind: str, item: dict[str, Any]) -> None:
        name = str(item["metadata"]["name"])
        if kind == "DELETED":
            self.ready.pop(name, None)
        else:
            self.ready[name] = _ready(item)
        self.changed.set()

    def count(self) -> int:
        return sum(self.ready.values())

    async def run(self) -> None:
        group, version = API.split("/")
        while True:
            listed = await self.objects.list_namespaced_custom_object(
                group, version, self.namespace, self.plural
            )
            self.ready = {}
            for item in listed.get("items") or []:
                self._see("ADDED", item)
            resource_version = listed["metadata"]["resourceVersion"]
            stream = k8s_watch.Watch().stream(
                self.objects.list_namespaced_custom_object,
                group,
                version,
                self.namespace,
                self.plural,
                resource_version=resource_version,
                timeout_seconds=300,
            )
            # The stream ends at its timeout (or on 410 Gone): list again and go on.
            with contextlib.suppress(k8s.ApiException):
                async for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._see(event["type"], event["object"])


@dataclass
class Row:
    n: int
    baseline: float
    apply: float
    converge: float
    peak_mb: float

    @property
    def ratio(self) -> float:
        return self.converge / self.baseline if self.baseline else float("nan")


def kubectl_namespace(cp: ControlPlane, verb: str, name: str) -> None:
    wait = ["--wait=true"] if verb == "delete" else []
    cp.kubectl(verb, "namespace", name, *wait, timeout=600)


async def baseline(cp: ControlPlane, kube: KubeClient, n: int, queues: int) -> float:
    namespace = f"baseline-{n}"
    kubectl_namespace(cp, "create", namespace)
    objects = [definition(namespace, i, queues) for i in range(n)]
    objects += [route(namespace, i) for i in range(n)]
    seconds = await apply_all(kube, objects)
    kubectl_namespace(cp, "delete", namespace)
    return seconds


async def converge(
    cp: ControlPlane, kube: KubeClient, api: k8s.ApiClient, n: int, queues: int, limit: float
) -> tuple[float, float]:
    namespace = f"bench-{n}"
    kubectl_namespace(cp, "create", namespace)
    objects = [definition(namespace, i, queues) for i in range(n)]
    objects += [route(namespace, i) for i in range(n)]
    changed = asyncio.Event()
    definitions = ReadyWatch(api, namespace, "workflowdefinitions", changed)
    routes = ReadyWatch(api, namespace, "eventroutes", changed)
    watches = [asyncio.create_task(w.run()) for w in (definitions, routes)]
    try:
        started = time.perf_counter()
        applied = await apply_all(kube, objects)
        deadline = started + limit
        while definitions.count() < n or routes.count() < n:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or any(w.done() for w in watches):
                raise RuntimeError(
                    f"N={n}: only {definitions.count()} definitions and {routes.count()} "
                    f"routes Ready after {time.perf_counter() - started:.0f}s"
                )
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 1.0))
        return applied, time.perf_counter() - started
    finally:
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)


def open_sockets(pid: int) -> int:
    """The process's open sockets (its TCP connections, listeners and pipes to itself)."""
    count = 0
    for fd in os.scandir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed since the listing
            count += os.readlink(fd.path).startswith("socket:")
    return count


async def peak_sockets(pid: int, peak: list[int]) -> None:
    """Sample the operator's open sockets once a second into ``peak[0]`` until cancelled:
    each connection to the apiserver is one (and holds its TLS buffers)."""
    while True:
        peak[0] = max(peak[0], await asyncio.to_thread(open_sockets, pid))
        await asyncio.sleep(1.0)


RequestKey = tuple[str, str]

PROFILE_DELAY = 15.0
PROFILE_SECONDS = 30


async def apiserver_profile(api: k8s.ApiClient, path: Path) -> None:
    """``--apiserver-profile``: a CPU profile of the apiserver, PROFILE_SECONDS long,
    from PROFILE_DELAY seconds into the burst (its own /debug/pprof, served only because
    the bench starts its control plane with profiling on)."""
    await asyncio.sleep(PROFILE_DELAY)
    response = await api.call_api(
        "/debug/pprof/profile",
        "GET",
        query_params=[("seconds", str(PROFILE_SECONDS))],
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    await asyncio.to_thread(path.write_bytes, await response.read())
    print(f"apiserver CPU profile written: {path} (go tool pprof -top -cum {path})", flush=True)


async def apiserver_requests(api: k8s.ApiClient) -> dict[RequestKey, tuple[float, float]]:
    """(verb, resource[/subresource]) -> (requests served, seconds spent serving them),
    from the apiserver's own metrics; watches left out (they last as long as they are
    open)."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    text = await response.text()
    counts: dict[RequestKey, float] = {}
    seconds: dict[RequestKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in (
                "apiserver_request_total",
                "apiserver_request_duration_seconds_sum",
            ):
                continue
            labels = sample.labels
            if labels.get("verb") in ("WATCH", "CONNECT"):
                continue
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = (labels.get("verb", ""), resource)
            into = counts if sample.name == "apiserver_request_total" else seconds
            into[key] = into.get(key, 0.0) + sample.value
    return {key: (counts.get(key, 0.0), seconds.get(key, 0.0)) for key in counts}


def print_requests(
    n: int,
    before: dict[RequestKey, tuple[float, float]],
    after: dict[RequestKey, tuple[float, float]],
) -> None:
    """What the apiserver served between two readings, the costliest first."""
    delta = {
        key: (count - before.get(key, (0.0, 0.0))[0], spent - before.get(key, (0.0, 0.0))[1])
        for key, (count, spent) in after.items()
    }
    top = sorted(delta.items(), key=lambda item: item[1][1], reverse=True)[:10]
    print(f"N={n}: the apiserver's requests until all Ready (by time spent serving them):")
    print_table(
        ["verb resource", "requests", "seconds", "ms each"],
        [
            [f"{verb} {resource}", f"{count:.0f}", f"{spent:.1f}", f"{1000 * spent / count:.1f}"]
            for (verb, resource), (count, spent) in top
            if count
        ],
    )


async def owner_cost(cp: ControlPlane, kube: KubeClient, apiserver: int) -> None:
    """``--owner-cost``: the apiserver's CPU per server-side apply of a Deployment owned
    by K objects (what a worker group costs it each time it is applied), against a small
    ConfigMap's. Each size is applied 20 times, alternating K and K-1 owners, as a group
    that keeps growing. Then the same for a large ConfigMap (a published-definitions
    shard), written the ways the operator could write it. Writes are the operator's
    (``fieldValidation=Ignore``) unless a row says otherwise."""
    namespace = "owner-cost"
    kubectl_namespace(cp, "create", namespace)
    owners = []
    for i in range(1000):
        cm = await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"owner-{i}", "namespace": namespace},
                "data": {"i": str(i)},
            }
        )
        meta = cm["metadata"]
        owners.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"]}
        )

    def deployment(k: int) -> dict[str, Any]:
        labels = {"app": "owner-cost"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "owned", "namespace": namespace, "ownerReferences": owners[:k]},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "example.invalid/none"}]},
                },
            },
        }

    def cpu_ms(before: float, writes: int) -> str:
        return f"{(process_cpu_seconds(apiserver) - before) * 1000 / writes:.1f} ms"

    rows = []
    for k in (10, 100, 500, 1000):
        await kube.apply(deployment(k - 1))
        before = process_cpu_seconds(apiserver)
        for attempt in range(20):
            await kube.apply(deployment(k - attempt % 2))
        rows.append([f"Deployment, {k} owners: apply", cpu_ms(before, 20)])
    before = process_cpu_seconds(apiserver)
    for attempt in range(20):
        await kube.apply(deployment(1000 - attempt % 2), field_validation="Warn")
    rows.append(["Deployment, 1000 owners: apply, fieldValidation=Warn", cpu_ms(before, 20)])
    before = process_cpu_seconds(apiserver)
    for i in range(100):
        await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"owner-{i}", "namespace": namespace},
                "data": {"i": f"{i}-again"},
            }
        )
    rows.append(["ConfigMap, no owner: apply", cpu_ms(before, 100)])
    # A published-definitions shard: 2000 keys of a few hundred bytes each (about 770 KB),
    # one of them changing per write, as a publisher pass in a burst writes it.
    filler = "x" * 250
    shard = {
        f"{namespace}.d{i:04d}.yaml": f"name: d{i:04d}\ndocument: {filler}\n" for i in range(2000)
    }

    def published(write: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "published", "namespace": namespace},
            "data": {**shard, "changed": str(write)},
        }

    writes: list[tuple[str, Callable[[dict[str, Any]], Awaitable[Any]]]] = [
        ("apply, fieldValidation=Warn", lambda o: kube.apply(o, field_validation="Warn")),
        ("apply", kube.apply),
        ("replace (PUT)", kube.replace),
    ]
    for label, write in writes:
        await write(published(0))
        before = process_cpu_seconds(apiserver)
        for attempt in range(20):
            await write(published(attempt + 1))
        rows.append([f"ConfigMap, 2000 keys (770 KB): {label}", cpu_ms(before, 20)])
    print_table(["write", "apiserver CPU per write"], rows)
    kubectl_namespace(cp, "delete", namespace)


async def run(args: argparse.Namespace) -> list[Row]:
    stop_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tflow-bench-operator-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        apiserver_profile_path: Path | None = args.apiserver_profile
        cp = ControlPlane(
            workdir / "controlplane", profiling=apiserver_profile_path is not None
        ).start()
        temporal = TemporalServer(workdir / "temporal", headless=True).start()
        operator = None
        os.environ["KUBECONFIG"] = str(cp.kubeconfig)
        kube = KubeClient.from_env(timeout=120.0)
        watch_config = k8s.Configuration()
        await k8s_config.load_kube_config(
            config_file=str(cp.kubeconfig), client_configuration=watch_config
        )
        api = k8s.ApiClient(configuration=watch_config)
        profile: Path | None = args.profile
        try:
            cp.apply_crds(REPO_ROOT / "crds")
            install_keda_crds(cp)
            if args.owner_cost:
                apiserver = next(
                    p.proc.pid for p in cp.processes if p.name == "kube-apiserver" and p.proc
                )
                await owner_cost(cp, kube, apiserver)
            baselines = {n: await baseline(cp, kube, n, args.queues) for n in sizes}
            print("baselines:", {n: f"{s:.2f}s" for n, s in baselines.items()}, flush=True)
            operator = start_operator(
                cp,
                workdir / "operator",
                temporal.address,
                temporal.namespace,
                resync_seconds=args.resync,
                extra_env=operator_env(profile, args.memory_profile),
            )
            assert operator.pid is not None
            rows = []
            processes = {p.name: p.proc.pid for p in cp.processes if p.proc is not None}
            if temporal.process is not None and temporal.process.proc is not None:
                processes["temporal"] = temporal.process.proc.pid
            processes["operator"] = operator.pid
            for n in sizes:
                cpu_before = {k: process_cpu_seconds(pid) for k, pid in processes.items()}
                requests_before = await apiserver_requests(api)
                profiling = (
                    asyncio.create_task(apiserver_profile(api, apiserver_profile_path))
                    if apiserver_profile_path is not None and n == sizes[-1]
                    else None
                )
                sockets = [0]
                sampling = asyncio.create_task(peak_sockets(operator.pid, sockets))
                try:
                    applied, seconds = await converge(cp, kube, api, n, args.queues, args.timeout)
                finally:
                    sampling.cancel()
                if profiling is not None:
                    await profiling
                cpu = {k: process_cpu_seconds(pid) - cpu_before[k] for k, pid in processes.items()}
                print_requests(n, requests_before, await apiserver_requests(api))
                print(
                    f"N={n}: CPU s until all Ready: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()),
                    flush=True,
                )
                peak = memory_mb(operator.pid)["VmHWM"]
                rows.append(Row(n, baselines[n], applied, seconds, peak))
                print(
                    f"N={n}: applied in {applied:.2f}s, all Ready after {seconds:.2f}s, "
                    f"operator peak RSS {peak:.0f} MB, open sockets at most {sockets[0]} "
                    "(sampled once a second)",
                    flush=True,
                )
            return rows
        finally:
            await api.close()
            await kube.close()
            if operator is not None:
                log = operator.log_path.read_text(errors="replace").splitlines()
                print(f"operator log: {len(log)} lines; last: {log[-1] if log else ''}")
                operator.stop()
            temporal.stop()
            cp.stop()


def operator_env(profile: Path | None, memory_profile: Path | None) -> dict[str, str]:
    env = {}
    if profile is not None:
        env["TFLOW_PROFILE"] = str(profile)
    if memory_profile is not None:
        env["TFLOW_MEMORY_PROFILE"] = str(memory_profile)
    return env


def print_memory(path: Path, top: int = 25) -> None:
    """The largest allocation sites of the kept snapshot: by file, by line, and the call
    paths of the largest lines. The tracer's own snapshots are left out."""
    snapshot = tracemalloc.Snapshot.load(str(path)).filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    total = sum(s.size for s in snapshot.statistics("filename"))
    print(f"\noperator memory traced at the kept snapshot: {total / MB:.1f} MB")
    for group in ("filename", "lineno"):
        stats = snapshot.statistics(group)[:top]
        print_table(
            [f"by {group}", "MB", "blocks"],
            [[str(s.traceback[0]), f"{s.size / MB:.1f}", str(s.count)] for s in stats],
        )
    for stat in snapshot.statistics("traceback")[:5]:
        print(f"\n{stat.size / MB:.1f} MB in {stat.count} blocks from:")
        for line in stat.traceback.format(most_recent_first=True):
            print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated N (each kind); the default takes about 5 minutes on two cores",
    )
    parser.add_argument("--queues", type=int, default=10, help="task queues (worker Deployments)")
    parser.add_argument("--resync", type=float, default=30.0, help="the operator's timer period")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--workdir", help="keep the servers' state and logs here")
    parser.add_argument("--profile", help="run the operator under cProfile, statistics here")
    parser.add_argument(
        "--memory-profile",
        type=Path,
        help="trace the operator's allocations; the snapshot at the largest traced size goes "
        "here and its largest sites are printed (tracing slows and grows the operator, so "
        "the verdicts of such a run say nothing)",
    )
    parser.add_argument(
        "--owner-cost",
        action="store_true",
        help="first print the apiserver's CPU per write of what the operator writes: a worker "
        "Deployment with many owners, a large ConfigMap (apply or replace)",
    )
    parser.add_argument(
        "--queue-facts",
        action="store_true",
        help="only print the operator's CPU per change of a task queue's facts at 100, 1000 "
        "and 10,000 definitions on it, and exit",
    )
    parser.add_argument(
        "--apiserver-profile",
        type=Path,
        help=f"write a {PROFILE_SECONDS} s CPU profile of the apiserver, from "
        f"{PROFILE_DELAY:.0f} s into the last size's burst, here (read it with `go tool pprof`)",
    )
    add_verdict_arguments(parser)
    args = parser.parse_args()
    if args.queue_facts:
        queue_facts_cost()
        return 0
    args.profile = Path(args.profile).resolve() if args.profile else None
    try:
        rows = asyncio.run(run(args))
    finally:
        if args.profile is not None and args.profile.exists():
            stats = pstats.Stats(str(args.profile))
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(60)
        if args.memory_profile is not None and args.memory_profile.exists():
            print_memory(args.memory_profile)
    print()
    print_table(
        ["N (each kind)", "baseline accept", "apply", "all Ready", "ratio", "operator peak RSS"],
        [
            [
                str(r.n),
                f"{r.baseline:.2f} s",
                f"{r.apply:.2f} s",
                f"{r.converge:.2f} s",
                f"{r.ratio:.2f}x",
                f"{r.peak_mb:.0f} MB",
            ]
            for r in rows
        ],
    )
    verdicts = Verdicts("bench_operator.py")
    for r in rows:
        verdicts.check(
            f"N={r.n}: all Ready / apiserver accept",
            f"{r.ratio:.2f}x ({r.converge:.1f} s / {r.baseline:.1f} s)",
            f"<= {TARGET_RATIO}x",
            r.ratio <= TARGET_RATIO,
        )
    largest = max(rows, key=lambda r: r.n)
    verdicts.check(
        f"N={largest.n}: operator peak RSS",
        f"{largest.peak_mb:.0f} MB",
        f"< {TARGET_PEAK_MB:.0f} MB",
        largest.peak_mb < TARGET_PEAK_MB,
    )
    return verdicts.finish(args)


if __name__ == "__main__":
    sys.exit(main())
