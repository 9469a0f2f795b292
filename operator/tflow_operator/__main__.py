"""``python -m tflow_operator``: run the operator (standalone, all namespaces).

The same as ``kopf run --standalone -m tflow_operator.main --all-namespaces``, plus
kopf's logging setup and, when ``TFLOW_HEALTH_PORT`` is set, a liveness endpoint at
``http://0.0.0.0:<port>/healthz``; when ``TFLOW_METRICS_PORT`` is set, Prometheus metrics
at ``http://0.0.0.0:<port>/metrics`` (:mod:`tflow_operator.metrics`). With
``TFLOW_LEADER_ELECTION=true`` (several replicas) the operator first waits to hold the
Lease ``temporal-flow-operator`` in its system namespace (``tflow_operator.leader``); a
standby answers only its liveness endpoint and its metrics.

With ``TFLOW_PROFILE=<file>`` the whole run is profiled with cProfile and the statistics
are written to that file when the operator stops (for ``bench/bench_operator.py
--profile``; read them with ``python -m pstats``). With ``TFLOW_MEMORY_PROFILE=<file>``
allocations are traced (``tracemalloc``) and the snapshot taken at the largest traced size
is written there (for ``bench/bench_operator.py --memory-profile``). The C allocator is
set up first (:mod:`tflow_operator.allocator`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Sequence

import kopf
from aiohttp import web

from tflow_operator import allocator, leader, metrics
from tflow_operator import main as _handlers  # noqa: F401  (registers every handler)
from tflow_operator.config import Config
from tflow_operator.kube import KubeClient
from tflow_workers.logs import LOG_FORMATS, use_json

log = logging.getLogger("tflow_operator")

# Frames kept per traced allocation: enough to see which library's caller allocated.
MEMORY_FRAMES = 8
# A new snapshot replaces the kept one once the traced size has grown by this much.
MEMORY_STEP = 1.05


async def _standby_health(port: int) -> web.AppRunner:
    """The liveness endpoint while kopf (which serves it later) has not started."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz)])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def _run_plain(config: Config, liveness: str | None) -> int:
    server = await metrics.serve(config.metrics_port) if config.metrics_port else None
    try:
        await kopf.operator(standalone=True, clusterwide=True, liveness_endpoint=liveness)
    finally:
        if server is not None:
            await server.cleanup()
    return 0


async def _run_elected(config: Config, liveness: str | None) -> int:
    # A standby serves its metrics too (at zero), so a scrape of every pod succeeds.
    server = await metrics.serve(config.metrics_port) if config.metrics_port else None
    try:
        return await _lead(config, liveness)
    finally:
        if server is not None:
            await server.cleanup()


async def _lead(config: Config, liveness: str | None) -> int:
    kube = KubeClient.from_env()
    elector = leader.LeaderElector(
        leader.KubeLeaseStore(kube, config.system_namespace),
        config.system_namespace,
        leader.own_identity(os.environ),
        leader.LeaseTiming.from_env(os.environ),
    )
    standby = await _standby_health(config.health_port) if config.health_port else None
    try:
        await elector.acquire()
    finally:
        if standby is not None:
            await standby.cleanup()
    operator = asyncio.create_task(
        kopf.operator(standalone=True, clusterwide=True, liveness_endpoint=liveness)
    )
    holding = asyncio.create_task(elector.hold())
    await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
    if holding.done() and isinstance(holding.exception(), leader.LeadershipLost):
        # Another replica may lead as soon as the lease runs out: stop every write now,
        # not after a graceful shutdown. The pod restarts as a standby.
        log.error("%s: exiting", holding.exception())
        os._exit(1)
    holding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holding
    await elector.release()
    await kube.close()
    await operator
    return 0


def _trace_memory(path: str) -> Callable[[], None]:
    """Trace allocations and keep a snapshot near the largest traced size, checked every
    second; the returned function writes it to `path`. A snapshot is only taken when the
    size has grown by MEMORY_STEP since the kept one, so a burst costs a few dozen, not
    one a second. Tracing makes the operator slower and larger: a diagnostic only."""
    tracemalloc.start(MEMORY_FRAMES)
    kept: list[tracemalloc.Snapshot] = []
    largest = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal largest
        while not done.wait(1.0):
            current, _ = tracemalloc.get_traced_memory()
            if current > largest * MEMORY_STEP:
                largest = current
                kept[:] = [tracemalloc.take_snapshot()]

    watcher = threading.Thread(target=watch, name="memory-trace", daemon=True)
    watcher.start()

    def finish() -> None:
        done.set()
        watcher.join()
        if kept:
            kept[0].dump(path)
        tracemalloc.stop()

    return finish


def run(argv: Sequence[str] | None = None) -> int:
    # Before any thread that allocates exists (the Temporal client's, the executor's).
    tuned = allocator.tune(os.environ)
    parser = argparse.ArgumentParser(prog="python -m tflow_operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("TFLOW_LOG_FORMAT", "auto"),
        help="text, json (kopf's JSON lines, with the object's kind, namespace and name), "
        "or auto: json unless stderr is a terminal",
    )
    args = parser.parse_args(argv)
    config = Config.from_env()
    log_format = kopf.LogFormat.JSON if use_json(args.log_format, sys.stderr) else None
    kopf.configure(
        verbose=args.verbose,
        quiet=args.quiet,
        log_format=log_format or kopf.LogFormat.FULL,
        # In JSON, the object a line is about is a field of its own.
        log_refkey="object" if log_format else None,
    )
    if tuned:
        log.info("allocator: %s", ", ".join(f"{k}={v}" for k, v in tuned.items()))
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    profile_path = os.environ.get("TFLOW_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    memory_path = os.environ.get("TFLOW_MEMORY_PROFILE")
    finish_memory = _trace_memory(memory_path) if memory_path else None
    try:
        # As kopf.run: an operator task cancelled on the way out is a stop, not a crash.
        with contextlib.suppress(asyncio.CancelledError):
            if leader.enabled():
                return asyncio.run(_run_elected(config, liveness))
            return asyncio.run(_run_plain(config, liveness))
        return 0
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        if finish_memory is not None:
            finish_memory()


if __name__ == "__main__":
    sys.exit(run())
