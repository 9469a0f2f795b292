"""Two measures that need real pods, in a whole cluster started on this machine the way the
end-to-end tests start it (`tflow_devstack.stack.start`: control plane, a real node with
kubelet, containerd and runc, the images built here, Temporal, KEDA, the chart installed):

1. KEDA from zero: a WorkflowDefinition with `minReplicas: 0`, scaled to zero; runs are
   started on its task queue straight from a Temporal client, and the clock runs until
   its worker Deployment has a Ready pod, and until the first run completed. Repeated
   `--keda-rounds` times, the workers going back to zero in between (the chart's
   `cooldownPeriod` set small). Target: first Ready pod within pollingInterval + 10 s.
2. Events end to end: `--events` events POSTed (`--concurrency` at a time) to a webhook
   Listener's Service, each flow's run completed, in two variants: routed by the root
   orchestrator (a Listener with the default `routing: orchestrator`) and routed by the
   listener itself (a second Listener with `routing: direct`); against the same number of
   runs of the same flow (same input, same document) started with `start_workflow` on the
   same task queue, served by the same worker pods (minReplicas = maxReplicas =
   `--workers`, so no scaling is measured). Completions per second from the first send
   to the last completion, variants rotating over `--rounds`. Target: routed directly /
   started directly >= 0.9 (the orchestrator's ratio is printed beside it). Per variant
   it also prints the CPU each part used per run: the Temporal server (its process), the
   flow's worker pods, the root orchestrator pod, the Listener pods (each pod's
   processes, found by the pod's cgroup) and this process (the posts or starts, and the
   waits), which says where a routed event costs more than a direct start.

    .venv/bin/python bench/bench_cluster.py [--keda-rounds 3] [--polling-interval 2]
        [--cooldown 10] [--events 120] [--concurrency 16] [--rounds 2] [--workers 1]
        [--strict] [--results FILE]

Needs root and the node's prerequisites (`make tools keda image-tools`), and no other node
on this machine (one kubelet per machine): it refuses to start beside one.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from bench.common import (
    Verdicts,
    add_verdict_arguments,
    http_session,
    median,
    post_json,
    print_table,
    process_cpu_seconds,
    stop_on_sigterm,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tflow_devstack import stack
from tflow_devstack.cluster import SYSTEM_NAMESPACE, Cluster
from tflow_operator.listener_children import selector_labels as listener_selector_labels
from tflow_operator.naming import worker_selector
from tflow_workers.cloudevents import event_workflow_id
from tflow_workers.connection import connect
from tflow_workers.engine.model import DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

TARGET_KEDA_EXTRA_S = 10.0
TARGET_EVENTS_RATIO = 0.9
API = "temporalflow.dev/v1alpha1"
SOURCE = "bench"
# The flow both variants run: two `set` tasks, so the worker's cost per run is small and
# the path that starts the run shows.
FLOW = [
    {"take": {"set": {"n": "${ .n }"}}},
    {"done": {"set": {"n": "${ .n + 1 }", "done": True}}},
]


def flow_document(name: str) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "bench", "name": name, "version": "1.0.0"},
        "do": FLOW,
    }


def definition(name: str, task_queue: str, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "WorkflowDefinition",
        "metadata": {"name": name},
        "spec": {
            "taskQueue": task_queue,
            "workers": {
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "targetBacklog": 1,
            },
            "workflow": flow_document(name),
        },
    }


def route(name: str, workflow: str, event_type: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "EventRoute",
        "metadata": {"name": name},
        "spec": {"match": {"type": event_type}, "workflow": workflow, "input": "${ {n: .data.n} }"},
    }


def webhook(name: str, routing: str = "orchestrator") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Listener",
        "metadata": {"name": name},
        "spec": {
            "type": "webhook",
            "webhook": {"path": "/events", "port": 8080},
            "routing": routing,
        },
    }


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def restricted_namespace(cluster: Cluster, name: str) -> None:
    cluster.cp.kubectl("create", "namespace", name, check=False)
    cluster.cp.kubectl("label", "--overwrite", "namespace", name, *stack.RESTRICTED_LABELS)


def labels_of(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def selector(task_queue: str) -> str:
    return labels_of(worker_selector(task_queue))


def worker_pods(cluster: Cluster, namespace: str, task_queue: str) -> list[dict[str, Any]]:
    out = cluster.cp.kubectl(
        "get", "pods", "-n", namespace, "-l", selector(task_queue), "-o", "json"
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def at_zero(cluster: Cluster, namespace: str, task_queue: str) -> bool:
    """The worker Deployment exists, KEDA has scaled it to zero, and no pod is left (a new
    Deployment starts at one replica until KEDA first scales it down)."""
    out = cluster.cp.kubectl(
        "get", "deployments", "-n", namespace, "-l", selector(task_queue), "-o", "json"
    ).stdout
    deployments = json.loads(out)["items"]
    return (
        bool(deployments)
        and all(d["spec"].get("replicas") == 0 for d in deployments)
        and not worker_pods(cluster, namespace, task_queue)
    )


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def kubelet_running() -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "kubelet":
                return True
        except OSError:
            continue
    return False


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], within: float, what: str, every: float = 0.25
) -> float:
    """Poll `check` until true; the monotonic time it first was."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic()
        await asyncio.sleep(every)
    raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")


def kube_time(stamp: str) -> float:
    """An apiserver timestamp (whole seconds, UTC) as wall-clock seconds."""
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


async def run_input_of(client: Client, workflow_id: str) -> RunInput:
    """The input a run was started with, as recorded in its history."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await client.data_converter.decode(payloads, [RunInput])
            return RunInput.model_validate(decoded[0])
    raise RuntimeError(f"{workflow_id} has no start event")


async def history_length(client: Client, workflow_id: str) -> int:
    return len((await client.get_workflow_handle(workflow_id).fetch_history()).events)


async def routed_result(client: Client, root_id: str, child_id: str) -> Any:
    """The routed run's result: the root orchestrator's run (started when the webhook
    answered 202) is awaited first, since the child exists only once it has started it;
    waiting on a child not yet started would poll the server with NOT_FOUND answers."""
    await client.get_workflow_handle(root_id).result()
    try:
        return await client.get_workflow_handle(child_id).result()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None  # routed nowhere (the route not yet in the mounted table)
        raise


# ---- KEDA from zero ------------------------------------------------------------------------


@dataclass
class Wake:
    ready_s: float
    completed_s: float
    # From the pod's own timestamps (whole seconds): KEDA's scale-up and the kubelet's start.
    pod_created_s: float
    container_started_s: float


async def wake_once(
    cluster: Cluster, client: Client, ns: str, task_queue: str, run: RunInput, runs: int
) -> Wake:
    """Start `runs` runs on the idle task queue; when its first worker pod was Ready and
    when the first run completed."""
    started = time.monotonic()
    wall_started = time.time()
    handles = [
        await start_run(client, run.model_copy(update={"input": {"n": i}}), task_queue)
        for i in range(runs)
    ]
    done_at: list[float] = []

    async def finished(handle: Any) -> None:
        await handle.result()
        done_at.append(time.monotonic())

    all_done = asyncio.gather(*(finished(h) for h in handles))
    ready_pod: dict[str, Any] = {}

    async def ready() -> bool:
        # kubectl in a thread: the loop stays free to see the runs complete on time.
        for pod in await asyncio.to_thread(worker_pods, cluster, ns, task_queue):
            if pod_ready(pod):
                ready_pod.update(pod)
                return True
        return False

    ready_at = await wait_until(ready, 300, "a Ready worker pod")
    await asyncio.wait_for(all_done, 300)
    completed_at = min(done_at)
    status = ready_pod.get("status") or {}
    running = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("running") or {}
    wake = Wake(
        ready_s=ready_at - started,
        completed_s=completed_at - started,
        pod_created_s=kube_time(ready_pod["metadata"]["creationTimestamp"]) - wall_started,
        container_started_s=(
            kube_time(running["startedAt"]) - wall_started if "startedAt" in running else 0.0
        ),
    )
    return wake


def prepare_keda(cluster: Cluster) -> tuple[str, str]:
    """The definition that wakes from zero, in a namespace of its own: applied before the
    events part, so that its new Deployment (one replica until KEDA first scales it down)
    is at zero by the time it is measured. Its namespace and task queue."""
    ns = f"bench-keda-{uuid.uuid4().hex[:6]}"
    task_queue = f"bench-keda-{uuid.uuid4().hex[:6]}"
    restricted_namespace(cluster, ns)
    apply(cluster, ns, definition("wake", task_queue, 0, 1))
    return ns, task_queue


async def bench_keda(
    cluster: Cluster,
    client: Client,
    ns: str,
    task_queue: str,
    args: argparse.Namespace,
    verdicts: Verdicts,
) -> list[Wake]:
    cluster.cp.kubectl("wait", "-n", ns, "wfd/wake", "--for=condition=Ready", "--timeout=180s")
    run = RunInput(
        document=flow_document("wake"),
        input={"n": 0},
        definition=DefinitionRef(name="wake", namespace=ns),
    )
    wakes: list[Wake] = []
    for round_ in range(args.keda_rounds):
        await wait_until(
            lambda: at_zero(cluster, ns, task_queue),
            args.cooldown + 240,
            "the workers to be back at zero",
            every=2,
        )
        # Past the cooldown KEDA has marked the scaler inactive; a little more so that the
        # backlog lands on an idle poll cycle, not one already under way.
        await asyncio.sleep(args.polling_interval)
        wake = await wake_once(cluster, client, ns, task_queue, run, args.wake_runs)
        wakes.append(wake)
        print(
            f"  round {round_ + 1}: pod created +{wake.pod_created_s:.0f} s, container "
            f"started +{wake.container_started_s:.0f} s, Ready +{wake.ready_s:.1f} s, "
            f"first run completed +{wake.completed_s:.1f} s",
            flush=True,
        )
    cluster.cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    target = args.polling_interval + TARGET_KEDA_EXTRA_S
    ready_times = [w.ready_s for w in wakes]
    done_times = [w.completed_s for w in wakes]
    print()
    print(
        f"KEDA from zero, pollingInterval {args.polling_interval} s, cooldownPeriod "
        f"{args.cooldown} s, {args.wake_runs} run(s) started per round, {len(wakes)} rounds:"
    )
    print_table(
        ["backlog -> ", "median s", "max s"],
        [
            ["first worker pod Ready", f"{median(ready_times):.1f}", f"{max(ready_times):.1f}"],
            ["first run completed", f"{median(done_times):.1f}", f"{max(done_times):.1f}"],
        ],
    )
    verdicts.check(
        "KEDA 0->1: backlog to first worker pod Ready (max)",
        f"{max(ready_times):.1f} s (median {median(ready_times):.1f})",
        f"<= {target:.0f} s (pollingInterval {args.polling_interval} + 10)",
        max(ready_times) <= target,
    )
    return wakes


# ---- events end to end ---------------------------------------------------------------------


# The parts whose CPU a round of the events bench splits, in the order printed.
PARTS = ("Temporal server", "flow workers", "root orchestrator", "listener", "bench client")


@dataclass
class CpuMeter:
    """CPU seconds used so far by each part: the Temporal server's process, and each pod's
    processes (found on the node by their cgroup path, which names the pod's uid: the
    kubelet's cgroupfs driver). A process that exited is no longer counted, so a part's
    pods must outlive the rounds measured (they do: fixed replicas, nothing restarts)."""

    server_pid: int
    pods: dict[str, tuple[str, ...]]  # part -> pod uids

    def read(self) -> dict[str, float]:
        used = dict.fromkeys(PARTS, 0.0)
        used["Temporal server"] = process_cpu_seconds(self.server_pid)
        # This process: the posts (routed) or the starts (direct), the waits for results,
        # and this meter's own reads of /proc (the same for both variants).
        used["bench client"] = time.process_time()
        markers = {f"pod{uid}": part for part, uids in self.pods.items() for uid in uids}
        for cgroup in Path("/proc").glob("[0-9]*/cgroup"):
            try:
                text = cgroup.read_text()
                part = next((p for marker, p in markers.items() if marker in text), None)
                if part is not None:
                    used[part] += process_cpu_seconds(int(cgroup.parent.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue  # exited meanwhile
        return used


def pod_uids(cluster: Cluster, namespace: str, labels: str) -> tuple[str, ...]:
    out = cluster.cp.kubectl("get", "pods", "-n", namespace, "-l", labels, "-o", "json").stdout
    return tuple(str(p["metadata"]["uid"]) for p in json.loads(out)["items"])


async def timed_round(
    send: Callable[[int], Awaitable[str]],
    wait: Callable[[str], Coroutine[Any, Any, Any]],
    events: int,
    concurrency: int,
) -> tuple[float, float]:
    """Completions per second: `events` sends, `concurrency` at a time, each followed (off
    the sending path) by waiting for its run's completion; first send to last completion.
    Also the seconds until the last send was answered."""
    queue = list(range(events))
    waits: list[asyncio.Task[Any]] = []

    async def sender() -> None:
        while queue:
            i = queue.pop()
            workflow_id = await send(i)
            waits.append(asyncio.create_task(wait(workflow_id)))

    started = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    sent = time.monotonic() - started
    results = await asyncio.gather(*waits)
    elapsed = time.monotonic() - started
    bad = [r for r in results if not (isinstance(r, dict) and r.get("done") is True)]
    if bad:
        raise RuntimeError(f"{len(bad)} runs ended otherwise: {bad[:3]}")
    return events / elapsed, sent


async def bench_events(
    cluster: Cluster, client: Client, args: argparse.Namespace, verdicts: Verdicts
) -> tuple[list[float], list[float]]:
    ns = f"bench-events-{uuid.uuid4().hex[:6]}"
    task_queue = f"bench-events-{uuid.uuid4().hex[:6]}"
    event_type = f"bench.count.{uuid.uuid4().hex[:6]}"
    restricted_namespace(cluster, ns)
    apply(
        cluster,
        ns,
        definition("count", task_queue, args.workers, args.workers),
        route("count", "count", event_type),
        webhook("events"),
        webhook("events-direct", routing="direct"),
    )
    cluster.cp.kubectl("wait", "-n", ns, "wfd/count", "--for=condition=Ready", "--timeout=180s")
    await wait_until(
        lambda: sum(pod_ready(p) for p in worker_pods(cluster, ns, task_queue)) >= args.workers,
        300,
        f"{args.workers} Ready worker pod(s)",
        every=1,
    )
    url = cluster.listener_url(ns, "events")
    direct_url = cluster.listener_url(ns, "events-direct")

    def child_id(root_id: str) -> str:
        return f"{root_id}/{ns}/count"

    async with http_session(args.concurrency) as http:

        async def post_to(target: str, i: int) -> tuple[str, str]:
            event_id = uuid.uuid4().hex
            body = {"eventType": event_type, "source": SOURCE, "id": event_id, "n": i}
            answer = await post_json(http, target, body, 202)
            return event_workflow_id(SOURCE, event_id, ns), str(answer["events"][0]["outcome"])

        async def post(i: int) -> str:
            return (await post_to(url, i))[0]

        async def routed_done(root_id: str) -> Any:
            return await routed_result(client, root_id, child_id(root_id))

        async def post_direct(i: int) -> str:
            # The listener answered once the run had started: it exists.
            return child_id((await post_to(direct_url, i))[0])

        async def run_done(workflow_id: str) -> Any:
            """A flow run's result, by its id (started directly or routed directly)."""
            return await client.get_workflow_handle(workflow_id).result()

        # The route reaches the mounted tables within the kubelet's sync period: post
        # until an event is routed, which is also the warm-up.
        deadline = time.monotonic() + 180
        sample = ""
        while not sample:
            root_id = await post(0)
            if await routed_done(root_id) is not None:
                sample = child_id(root_id)
            elif time.monotonic() > deadline:
                raise TimeoutError("no event was routed to the flow within 180 s")
            else:
                await asyncio.sleep(2)
        while True:
            # Refused (503) while the Listener's table is not mounted; unroutable while
            # the mounted one does not hold the route yet.
            try:
                root_direct, outcome = await post_to(direct_url, 0)
            except RuntimeError:
                outcome = "refused"
            if outcome == "started":
                await run_done(child_id(root_direct))
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event was routed directly within 180 s ({outcome})")
            await asyncio.sleep(2)
        # The direct runs get what the routed ones got (document, input, definition),
        # without the event that started them.
        template = (await run_input_of(client, sample)).model_copy(update={"event": None})

        async def direct(i: int) -> str:
            handle = await start_run(
                client, template.model_copy(update={"input": {"n": i}}), task_queue
            )
            return handle.id

        variants = [
            ("direct", direct, run_done),
            ("routed", post, routed_done),
            ("routed directly", post_direct, run_done),
        ]
        # Warm every path up, then rotate which variant goes first.
        for _, send, done in variants:
            await timed_round(send, done, args.concurrency, args.concurrency)
        direct_id = await direct(0)
        await run_done(direct_id)
        print(
            "  history events per run: root orchestrator "
            f"{await history_length(client, root_id)}, the flow's run routed "
            f"{await history_length(client, sample)}, routed directly "
            f"{await history_length(client, child_id(root_direct))}, started directly "
            f"{await history_length(client, direct_id)}",
            flush=True,
        )
        assert cluster.temporal is not None
        assert cluster.temporal.process is not None
        server_pid = cluster.temporal.process.pid
        assert server_pid is not None
        meter = CpuMeter(
            server_pid,
            {
                "flow workers": pod_uids(cluster, ns, selector(task_queue)),
                "root orchestrator": pod_uids(
                    cluster, SYSTEM_NAMESPACE, "app.kubernetes.io/component=root-orchestrator"
                ),
                "listener": (
                    *pod_uids(cluster, ns, labels_of(listener_selector_labels("events"))),
                    *pod_uids(cluster, ns, labels_of(listener_selector_labels("events-direct"))),
                ),
            },
        )
        rates: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        cpu = {name: dict.fromkeys(PARTS, 0.0) for name in rates}
        for round_ in range(args.rounds):
            shift = round_ % len(variants)
            for name, send, done in variants[shift:] + variants[:shift]:
                before = meter.read()
                rate, sent = await timed_round(send, done, args.events, args.concurrency)
                after = meter.read()
                for part in PARTS:
                    cpu[name][part] += after[part] - before[part]
                rates[name].append(rate)
                print(
                    f"  round {round_ + 1} {name}: {rate:.1f} completions/s "
                    f"(all {args.events} started in {sent:.1f} s)",
                    flush=True,
                )
    cluster.cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    direct_rates, routed_rates = rates["direct"], rates["routed"]
    listener_rates = rates["routed directly"]

    ratios = [r / d for r, d in zip(routed_rates, direct_rates, strict=True)]
    listener_ratios = [r / d for r, d in zip(listener_rates, direct_rates, strict=True)]
    print()
    print(
        f"Events end to end, {args.events} runs per variant per round, {args.concurrency} at a "
        f"time, {args.workers} worker pod(s):"
    )
    print_table(
        ["variant", "median runs/s", "rounds"],
        [
            [
                "direct start_workflow",
                f"{median(direct_rates):.1f}",
                " ".join(f"{r:.1f}" for r in direct_rates),
            ],
            [
                "webhook -> root orchestrator",
                f"{median(routed_rates):.1f}",
                " ".join(f"{r:.1f}" for r in routed_rates),
            ],
            [
                "webhook routing directly",
                f"{median(listener_rates):.1f}",
                " ".join(f"{r:.1f}" for r in listener_rates),
            ],
            ["ratio, root orchestrator", f"{median(ratios):.2f}", _each(ratios)],
            ["ratio, routing directly", f"{median(listener_ratios):.2f}", _each(listener_ratios)],
        ],
    )
    runs = args.events * args.rounds
    print(f"\nCPU per run, ms (over all rounds; {runs} runs per variant):")
    print_table(
        ["variant", *PARTS, "all"],
        [
            [
                name,
                *(f"{cpu[name][part] * 1000 / runs:.1f}" for part in PARTS),
                f"{sum(cpu[name].values()) * 1000 / runs:.1f}",
            ]
            for name in rates
        ],
    )
    verdicts.check(
        "events end to end, Listener routing directly: routed / direct completions/s "
        "(median of rounds)",
        f"{median(listener_ratios):.2f} "
        f"({median(listener_rates):.1f} vs {median(direct_rates):.1f}/s)",
        f">= {TARGET_EVENTS_RATIO}",
        median(listener_ratios) >= TARGET_EVENTS_RATIO,
    )
    verdicts.check(
        "events end to end, through the root orchestrator: routed / direct completions/s "
        "(median of rounds)",
        f"{median(ratios):.2f} ({median(routed_rates):.1f} vs {median(direct_rates):.1f}/s)",
        f">= {TARGET_EVENTS_RATIO}",
        median(ratios) >= TARGET_EVENTS_RATIO,
    )
    return routed_rates, direct_rates


def _each(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


async def main_async(cluster: Cluster, args: argparse.Namespace) -> int:
    stop_on_sigterm()
    verdicts = Verdicts("bench_cluster.py")
    assert cluster.temporal is not None
    client = await connect(cluster.temporal.address, cluster.temporal.namespace)
    keda = prepare_keda(cluster) if args.keda_rounds > 0 else None
    if args.events > 0 and args.rounds > 0:
        print("events end to end ...", flush=True)
        await bench_events(cluster, client, args, verdicts)
    if keda is not None:
        print("KEDA from zero ...", flush=True)
        await bench_keda(cluster, client, *keda, args, verdicts)
    return verdicts.finish(args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keda-rounds", type=int, default=3, help="wakes from zero (0: skip)")
    parser.add_argument("--wake-runs", type=int, default=3, help="runs started per wake")
    parser.add_argument(
        "--polling-interval", type=int, default=2, help="KEDA's pollingInterval, seconds"
    )
    parser.add_argument("--cooldown", type=int, default=10, help="KEDA's cooldownPeriod, seconds")
    parser.add_argument("--events", type=int, default=120, help="runs per variant per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both variants (0: skip)")
    parser.add_argument("--workers", type=int, default=1, help="worker pods for the events part")
    add_verdict_arguments(parser)
    args = parser.parse_args()
    if kubelet_running():
        print("a kubelet already runs on this machine; one node at a time", file=sys.stderr)
        return 1

    # Until the event loop takes over, SIGTERM unwinds like Ctrl-C, so that a cluster
    # half-started is stopped too (stack.start stops it on any exception).
    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with tempfile.TemporaryDirectory(prefix="tflow-bench-cluster-") as workdir:
        started = time.monotonic()
        print("starting the cluster (node, control plane, Temporal, KEDA, chart) ...", flush=True)
        cluster = stack.start(
            Path(workdir),
            temporal_ui=False,
            settings=(
                f"workers.scaling.pollingInterval={args.polling_interval}",
                f"workers.scaling.cooldownPeriod={args.cooldown}",
            ),
        )
        print(f"cluster up in {time.monotonic() - started:.0f} s", flush=True)
        try:
            return asyncio.run(main_async(cluster, args))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            # The node's containers and iptables rules must go whatever else arrives.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("stopping the cluster ...", flush=True)
            cluster.stop()


if __name__ == "__main__":
    raise SystemExit(main())
