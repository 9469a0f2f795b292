"""Worker memory with many open runs: 1000 interpreter runs parked on a `listen`, all held
in the worker's workflow cache at once, against an idle worker and against the same
worker holding 1000 runs of a hand-written workflow waiting on a signal.

    .venv/bin/python bench/bench_worker_memory.py [--runs 1000] [--skip-handwritten]

For each variant, a worker process of its own (`bench/memory_worker.py`, cache size
`--max-cached`) is started on the dev server and left idle for a moment (idle RSS); then
the runs are started; once the server shows every run parked (a workflow task completed,
none pending) every run's `status` query must answer `waiting`, and the worker's current
RSS (VmRSS) and peak RSS (VmHWM) are read from /proc; then every run is signalled
(`approve`) and must complete with the decision. The peak reported is the VmHWM at the
end, so it covers the start-up, the open runs and the signalling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Verdicts,
    add_server_dir_argument,
    add_verdict_arguments,
    dev_server,
    memory_mb,
    print_table,
    stop_on_sigterm,
    workflow_task_failure,
)
from bench.handwritten import HANDWRITTEN_APPROVAL
from bench.workloads import APPROVAL_EVENT, approval_document
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from tflow_workers.connection import connect
from tflow_workers.engine.model import RunInput
from tflow_workers.engine.starter import start_run

TARGET_PEAK_MB = 300
RUN_TIMEOUT = timedelta(minutes=30)
WORKER_SCRIPT = Path(__file__).resolve().parent / "memory_worker.py"

T = TypeVar("T")


@dataclass
class Result:
    variant: str
    idle: dict[str, float]
    loaded: dict[str, float]
    after: dict[str, float]
    start_seconds: float
    wait_seconds: float
    finish_seconds: float
    slow_tasks: int


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most `limit` in flight, keeping their order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


def slow_tasks(log: Path) -> int:
    """Workflow tasks the SDK core reported as taking over 5 s (warning TMPRL1104)."""
    return log.read_text(errors="replace").count("TMPRL1104")


def log_tail(path: Path, lines: int = 30) -> str:
    """The log's first lines that matter: a Python traceback, not the Rust backtrace after it."""
    text = path.read_text(errors="replace").split("Stack backtrace:")[0]
    return "\n".join(text.splitlines()[-lines:])


@contextlib.asynccontextmanager
async def worker_process(
    address: str, task_queue: str, variant: str, max_cached: int, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The worker in a process of its own, its output in `log`; yields it once it polls.

    The output goes to a file, never to a pipe: the SDK core logs to stdout, and a pipe
    nobody drains fills up and stalls the worker."""
    ready = log.with_suffix(".ready")
    with log.open("ab") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER_SCRIPT),
            "--address",
            address,
            "--task-queue",
            task_queue,
            "--variant",
            variant,
            "--max-cached",
            str(max_cached),
            "--ready-file",
            str(ready),
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 180
        while not ready.exists():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {variant} worker did not start:\n{log_tail(log)}")
            await asyncio.sleep(0.2)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def parked(handle: WorkflowHandle[Any, Any]) -> bool:
    """True once the run has completed a workflow task and has none pending: it sits in
    the worker's cache waiting for its signal. Asks the server only, not the worker."""
    try:
        description = await handle.describe()
    except RPCError:
        if cancelling():
            raise
        return False
    raw = description.raw_description
    return (description.history_length or 0) >= 4 and not raw.HasField("pending_workflow_task")


async def phase_of(handle: WorkflowHandle[Any, Any]) -> str:
    try:
        status = await handle.query("status", result_type=dict)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        if cancelling():
            raise
        return "unknown"
    return str(status.get("phase"))


async def measure(client: Client, address: str, variant: str, args: argparse.Namespace) -> Result:
    queue = f"mem-{variant}-{uuid.uuid4().hex[:8]}"
    document = approval_document()

    def starter(i: int) -> Callable[[], Awaitable[WorkflowHandle[Any, Any]]]:
        run_id = f"{queue}-{i:05d}"
        if variant == "interpreter":
            return lambda: start_run(
                client, RunInput(document=document, input={"order": i}), queue, run_id, RUN_TIMEOUT
            )
        return lambda: client.start_workflow(
            HANDWRITTEN_APPROVAL,
            {"order": i},
            id=run_id,
            task_queue=queue,
            execution_timeout=RUN_TIMEOUT,
        )

    log = args.logs / f"worker-{variant}.log"
    async with worker_process(address, queue, variant, args.max_cached, log) as proc:
        pid = proc.pid
        await asyncio.sleep(args.settle)
        idle = memory_mb(pid)
        print(f"{variant}: worker pid {pid} idle, RSS {idle['VmRSS']:.0f} MB; starting {args.runs}")

        began = time.monotonic()
        handles = await bounded(args.concurrency, [starter(i) for i in range(args.runs)])
        started = time.monotonic() - began

        # Runs park roughly in the order they started: check from the front, a batch at
        # a time (describe: the server alone answers, the busy worker is not asked).
        pending = list(handles)
        deadline = time.monotonic() + args.timeout
        stalled_since = time.monotonic()
        while pending:
            batch = pending[: args.concurrency]
            done = await bounded(args.concurrency, [functools.partial(parked, h) for h in batch])
            not_ready = [h for h, ok in zip(batch, done, strict=True) if not ok]
            if len(not_ready) < len(batch):
                stalled_since = time.monotonic()
            pending = not_ready + pending[len(batch) :]
            if not not_ready:
                continue
            if proc.returncode is not None:
                raise SystemExit(
                    f"{variant}: the worker exited (code {proc.returncode}) with "
                    f"{len(pending)} runs not parked yet:\n{log_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"{variant}: {len(pending)} runs never parked")
            if time.monotonic() - stalled_since > 30:
                why = await workflow_task_failure(not_ready[0])
                if why is not None:
                    raise SystemExit(f"{variant}: run {not_ready[0].id} cannot run: {why}")
                stalled_since = time.monotonic()
            await asyncio.sleep(1)
        # Then every run is asked what it is doing: all must be in their listen.
        phases = await bounded(args.concurrency, [functools.partial(phase_of, h) for h in handles])
        wrong = [phase for phase in phases if phase != "waiting"]
        if wrong:
            raise SystemExit(f"{variant}: {len(wrong)} runs are not waiting, e.g. {wrong[0]!r}")
        waited = time.monotonic() - began - started
        await asyncio.sleep(args.settle)
        loaded = memory_mb(pid)
        print(
            f"{variant}: {args.runs} runs waiting; RSS {loaded['VmRSS']:.0f} MB, "
            f"peak {loaded['VmHWM']:.0f} MB; signalling"
        )

        began = time.monotonic()
        await bounded(
            args.concurrency,
            [functools.partial(h.signal, APPROVAL_EVENT, {"ok": True}) for h in handles],
        )
        outputs = await bounded(args.concurrency, [h.result for h in handles])
        finished = time.monotonic() - began
        wrong = [o for o in outputs if not (isinstance(o, dict) and o.get("approved") is True)]
        if wrong:
            raise SystemExit(f"{variant}: {len(wrong)} runs ended wrongly, e.g. {wrong[0]!r}")
        await asyncio.sleep(args.settle)
        after = memory_mb(pid)
    return Result(variant, idle, loaded, after, started, waited, finished, slow_tasks(log))


def report(results: list[Result], runs: int, verdicts: Verdicts) -> None:
    print(f"\nWorker process memory (MB), {runs} open runs (peak: VmHWM over the whole test):")
    print_table(
        [
            "variant",
            "idle RSS",
            "open RSS",
            "peak RSS",
            "KB/open run",
            "RSS after",
            "start s",
            "all waiting s",
            "signal+done s",
            "WFTs > 5 s",
        ],
        [
            [
                r.variant,
                f"{r.idle['VmRSS']:.0f}",
                f"{r.loaded['VmRSS']:.0f}",
                f"{r.after['VmHWM']:.0f}",
                f"{(r.loaded['VmRSS'] - r.idle['VmRSS']) * 1024 / runs:.0f}",
                f"{r.after['VmRSS']:.0f}",
                f"{r.start_seconds:.1f}",
                f"{r.wait_seconds:.1f}",
                f"{r.finish_seconds:.1f}",
                str(r.slow_tasks),
            ]
            for r in results
        ],
    )
    peak = results[0].after["VmHWM"]
    verdicts.check(
        f"interpreter worker peak RSS, {runs} open runs",
        f"{peak:.0f} MB",
        f"< {TARGET_PEAK_MB} MB",
        peak < TARGET_PEAK_MB,
    )


async def main_async(args: argparse.Namespace) -> int:
    variants = ["interpreter"] if args.skip_handwritten else ["interpreter", "handwritten"]
    stop_on_sigterm()
    began = time.monotonic()
    with (
        dev_server(args.server_dir) as server,
        tempfile.TemporaryDirectory(prefix="tflow-bench-") as logs,
    ):
        args.logs = Path(logs)
        client = await connect(server.address, server.namespace)
        results = [await measure(client, server.address, v, args) for v in variants]
    verdicts = Verdicts("bench_worker_memory.py")
    report(results, args.runs, verdicts)
    print(f"(measured in {time.monotonic() - began:.0f} s)")
    return verdicts.finish(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=1000, help="open runs per variant")
    p.add_argument("--max-cached", type=int, default=2000, help="the worker's workflow cache")
    p.add_argument("--concurrency", type=int, default=50, help="client calls in flight")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before reading RSS")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to reach waiting")
    p.add_argument("--skip-handwritten", action="store_true", help="no hand-written baseline")
    add_server_dir_argument(p)
    add_verdict_arguments(p)
    return p


def main() -> int:
    try:
        return asyncio.run(main_async(parser().parse_args()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


if __name__ == "__main__":
    sys.exit(main())
