"""The worker process `bench_worker_memory.py` measures: the interpreter worker exactly as
`build_worker` builds it (or, for the baseline, the same worker serving the hand-written
approval workflow instead), with a workflow cache large enough to hold every open run.

    python bench/memory_worker.py --address HOST:PORT --task-queue Q \\
        [--variant interpreter|handwritten] [--max-cached 2000] [--ready-file PATH]

Writes `--ready-file` once it polls; stops on SIGTERM. The CLI worker (`tflow-worker`)
does not expose the cache size, hence this launcher.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.handwritten import HandwrittenApproval
from temporalio.worker import Worker

from tflow_workers.connection import connect
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.catalog import as_activity
from tflow_workers.stores import BUILTIN_FUNCTIONS
from tflow_workers.worker import build_worker


async def serve(args: argparse.Namespace) -> int:
    client = await connect(args.address, args.namespace)
    if args.variant == "interpreter":
        worker = build_worker(client, args.task_queue, max_cached_workflows=args.max_cached)
    else:
        # What build_worker builds, serving the hand-written workflow instead. (Cloning
        # a built worker's config() is not an option here: constructing a Worker
        # registers it with the SDK core, and two may not share a task queue.)
        worker = Worker(
            client,
            task_queue=args.task_queue,
            workflows=[HandwrittenApproval],
            activities=[
                *EngineActivities(client=client).all(),
                *(as_activity(name, fn) for name, fn in sorted(BUILTIN_FUNCTIONS.items())),
            ],
            graceful_shutdown_timeout=timedelta(seconds=20),
            max_cached_workflows=args.max_cached,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")
        await stop.wait()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--address", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", required=True)
    p.add_argument("--variant", choices=["interpreter", "handwritten"], default="interpreter")
    p.add_argument("--max-cached", type=int, default=2000)
    p.add_argument("--ready-file", type=Path, help="written once the worker polls")
    return asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
