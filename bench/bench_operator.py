"""Operator convergence: time from applying N WorkflowDefinitions and N EventRoutes to all
of them Ready, for N = 10, 100, 1000, on the test control plane, and the operator's peak
memory. Target: 1000 of each converge in under a minute, peak RSS under 300 MB.

    .venv/bin/python bench/bench_operator.py [--sizes 10,100,1000] [--queues 10]

One run starts its own control plane (etcd, kube-apiserver, kube-controller-manager),
the Temporal dev server, KEDA's CRDs and the operator (a subprocess under its RBAC role,
as in the integration tests). For each N, the 2N objects go to a fresh namespace by
server-side apply, 16 requests at a time; the definitions spread over ``--queues`` task
queues (so ``--queues`` worker Deployments), route i targets definition i.

Baseline, in the same run and before the operator starts: the time for the apiserver to
merely accept the same 2N objects the same way (no operator running). The ratio is
(apply + converge) / baseline. For each N it also prints the CPU seconds each server
process and the operator used from the first apply to all Ready: on a shared two-core
machine, who used the CPU says who set the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from bench.common import memory_mb, print_table, process_cpu_seconds, stop_on_sigterm
from operator_harness import install_keda_crds, start_operator

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT
from tflow_operator.kube import KubeClient

TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 300.0
CONCURRENCY = 16
API = "temporalflow.dev/v1alpha1"


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
            await kube.apply(obj)

    started = time.perf_counter()
    await asyncio.gather(*(one(obj) for obj in objects))
    return time.perf_counter() - started


def _ready(item: dict[str, Any]) -> bool:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


async def count_ready(kube: KubeClient, namespace: str) -> tuple[int, int]:
    definitions = await kube.list(API, "WorkflowDefinition", namespace)
    routes = await kube.list(API, "EventRoute", namespace)
    return sum(map(_ready, definitions)), sum(map(_ready, routes))


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
    cp: ControlPlane, kube: KubeClient, n: int, queues: int, limit: float
) -> tuple[float, float]:
    namespace = f"bench-{n}"
    kubectl_namespace(cp, "create", namespace)
    objects = [definition(namespace, i, queues) for i in range(n)]
    objects += [route(namespace, i) for i in range(n)]
    started = time.perf_counter()
    applied = await apply_all(kube, objects)
    deadline = started + limit
    while True:
        ready_definitions, ready_routes = await count_ready(kube, namespace)
        if ready_definitions == n and ready_routes == n:
            return applied, time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"N={n}: only {ready_definitions} definitions and {ready_routes} routes "
                f"Ready after {limit:.0f}s"
            )
        await asyncio.sleep(0.25)


async def run(args: argparse.Namespace) -> list[Row]:
    stop_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tflow-bench-operator-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        cp = ControlPlane(workdir / "controlplane").start()
        temporal = TemporalServer(workdir / "temporal", headless=True).start()
        operator = None
        os.environ["KUBECONFIG"] = str(cp.kubeconfig)
        kube = KubeClient.from_env(timeout=120.0)
        try:
            cp.apply_crds(REPO_ROOT / "crds")
            install_keda_crds(cp)
            baselines = {n: await baseline(cp, kube, n, args.queues) for n in sizes}
            print("baselines:", {n: f"{s:.2f}s" for n, s in baselines.items()}, flush=True)
            operator = start_operator(
                cp,
                workdir / "operator",
                temporal.address,
                temporal.namespace,
                resync_seconds=args.resync,
            )
            assert operator.pid is not None
            rows = []
            processes = {p.name: p.proc.pid for p in cp.processes if p.proc is not None}
            if temporal.process is not None and temporal.process.proc is not None:
                processes["temporal"] = temporal.process.proc.pid
            processes["operator"] = operator.pid
            for n in sizes:
                cpu_before = {k: process_cpu_seconds(pid) for k, pid in processes.items()}
                applied, seconds = await converge(cp, kube, n, args.queues, args.timeout)
                cpu = {k: process_cpu_seconds(pid) - cpu_before[k] for k, pid in processes.items()}
                print(
                    f"N={n}: CPU s until all Ready: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()),
                    flush=True,
                )
                peak = memory_mb(operator.pid)["VmHWM"]
                rows.append(Row(n, baselines[n], applied, seconds, peak))
                print(
                    f"N={n}: applied in {applied:.2f}s, all Ready after {seconds:.2f}s, "
                    f"operator peak RSS {peak:.0f} MB",
                    flush=True,
                )
            return rows
        finally:
            await kube.close()
            if operator is not None:
                log = operator.log_path.read_text(errors="replace").splitlines()
                print(f"operator log: {len(log)} lines; last: {log[-1] if log else ''}")
                operator.stop()
            temporal.stop()
            cp.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--queues", type=int, default=10, help="task queues (worker Deployments)")
    parser.add_argument("--resync", type=float, default=30.0, help="the operator's timer period")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--workdir", help="keep the servers' state and logs here")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    print()
    print_table(
        ["N (each kind)", "baseline accept", "apply", "all Ready", "ratio", "operator peak RSS"],
        [
            [
                str(r.n),
                f"{r.baseline:.2f} s",
                f"{r.apply:.2f} s",
                f"{r.converge:.2f} s",
                f"{r.ratio:.1f}x",
                f"{r.peak_mb:.0f} MB",
            ]
            for r in rows
        ],
    )
    largest = max(rows, key=lambda r: r.n)
    ok = largest.converge < TARGET_SECONDS and max(r.peak_mb for r in rows) < TARGET_PEAK_MB
    print(
        f"\ntarget: {largest.n} of each Ready in < {TARGET_SECONDS:.0f} s with peak RSS < "
        f"{TARGET_PEAK_MB:.0f} MB: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
