"""The worker process: serves the interpreter workflow, the built-in activities and the
registered custom functions on one task queue; health endpoints (aiohttp, as the
listeners' ops server); Prometheus metrics from the SDK; a log line per run started and
ended (``tflow_workers.runlog``); graceful shutdown on SIGTERM.

    tflow-worker --task-queue orders [--address HOST:PORT] [--namespace NS]
    tflow-worker --serve-orchestrator --routes-dir DIR --definitions-dir DIR

With `--serve-orchestrator` the process serves the RootOrchestratorWorkflow and its
routing activity instead, on the router's task queue unless `--task-queue` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE
from tflow_workers.connection import connect
from tflow_workers.engine.activities import (
    DirectoryRegistry,
    EngineActivities,
    SecretStore,
)
from tflow_workers.engine.catalog import (
    CatalogError,
    Function,
    as_activity,
    discover,
    parse_specs,
)
from tflow_workers.engine.serverless_workflow import ServerlessWorkflow
from tflow_workers.engine.sql import SqlFunctions
from tflow_workers.heartbeats import HeartbeatInterceptor
from tflow_workers.logs import LOG_FORMATS, configure_logging
from tflow_workers.orchestrator.activities import OrchestratorActivities
from tflow_workers.orchestrator.worker import OrchestratorWorkers
from tflow_workers.runlog import RunLogInterceptor
from tflow_workers.stores import BUILTIN_FUNCTIONS
from tflow_workers.temporal_namespaces import TemporalNamespaces

log = logging.getLogger("tflow.worker")


def build_worker(
    client: Client,
    task_queue: str,
    activities: EngineActivities | None = None,
    functions: Mapping[str, Function] | None = None,
    **options: Any,
) -> Worker:
    engine = activities or EngineActivities(client=client)
    # The SQL functions read the worker's mounted Secrets, so they are bound to its store.
    builtins = {**BUILTIN_FUNCTIONS, **SqlFunctions(engine.secret_store).functions()}
    clashes = sorted(set(functions or {}) & set(builtins))
    if clashes:
        raise CatalogError(f"custom functions may not reuse built-in names: {', '.join(clashes)}")
    served = {**builtins, **(functions or {})}
    custom = [as_activity(name, fn) for name, fn in sorted(served.items())]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ServerlessWorkflow],
        activities=[*engine.all(), *custom],
        interceptors=[
            RunLogInterceptor(),
            HeartbeatInterceptor(),
            *options.pop("interceptors", []),
        ],
        graceful_shutdown_timeout=options.pop("graceful_shutdown_timeout", timedelta(seconds=20)),
        **options,
    )


def health_app(worker_ready: asyncio.Event) -> web.Application:
    """``/healthz`` and ``/livez``: the process answers; ``/readyz``: the worker polls its
    task queue (503 until then, and again while it shuts down)."""

    async def alive(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        if worker_ready.is_set():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", alive, allow_head=True),
            web.get("/livez", alive, allow_head=True),
            web.get("/readyz", ready, allow_head=True),
        ]
    )
    return app


async def _serve_health(port: int, worker_ready: asyncio.Event) -> web.AppRunner:
    runner = web.AppRunner(health_app(worker_ready), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def serve(args: argparse.Namespace) -> int:
    runtime = None
    if args.metrics_port:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=f"0.0.0.0:{args.metrics_port}")
            )
        )
    client = await connect(args.address, args.namespace, runtime)
    functions: Mapping[str, Function] = {}
    # TFLOW_TEMPORAL_NAMESPACES: which Temporal namespace each Kubernetes namespace uses.
    namespaces = TemporalNamespaces.from_env(args.namespace)
    worker: Worker | OrchestratorWorkers
    if args.serve_orchestrator:
        routing = OrchestratorActivities(
            args.routes_dir, args.definitions_dir, temporal_namespaces=namespaces
        )
        worker = OrchestratorWorkers(client, args.task_queue, routing)
    else:
        functions = discover(parse_specs(args.function or []))
        activities = EngineActivities(
            client=client,
            definitions=DirectoryRegistry(args.definitions_dir, namespaces),
            secrets=SecretStore(args.secrets_dir),
            router_task_queue=args.router_task_queue,
        )
        limits = (
            {"max_concurrent_activities": args.max_concurrent_activities}
            if args.max_concurrent_activities
            else {}
        )
        worker = build_worker(client, args.task_queue, activities, functions, **limits)
    ready = asyncio.Event()
    health = await _serve_health(args.health_port, ready) if args.health_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on task queue %s with functions %s", args.task_queue, sorted(functions))
    async with worker:
        ready.set()
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")
        ready.clear()
    if health is not None:
        await health.cleanup()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tflow-worker", description=__doc__.splitlines()[0])
    env = os.environ.get
    p.add_argument("--task-queue", default=env("TFLOW_TASK_QUEUE"))
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=env("TFLOW_LOG_FORMAT", "auto"),
        help="text, json (one object per line), or auto: json unless stderr is a terminal",
    )
    p.add_argument("--address", default=env("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    p.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    p.add_argument(
        "--function",
        action="append",
        default=[env("TFLOW_FUNCTIONS", "")],
        help="name=module:callable (repeatable) — a custom function for `call: name`",
    )
    p.add_argument(
        "--definitions-dir",
        type=Path,
        default=_path(env("TFLOW_DEFINITIONS_DIR")),
        help="definitions that `run: workflow` resolves",
    )
    p.add_argument(
        "--secrets-dir",
        type=Path,
        default=_path(env("TFLOW_SECRETS_DIR")),
        help="mounted Secrets: <dir>/<name>/<key>",
    )
    p.add_argument(
        "--router-task-queue", default=env("TFLOW_ROUTER_TASK_QUEUE", DEFAULT_ROUTER_TASK_QUEUE)
    )
    p.add_argument(
        "--serve-orchestrator",
        action="store_true",
        default=env("TFLOW_SERVE_ORCHESTRATOR", "") in ("1", "true"),
        help="serve the RootOrchestratorWorkflow (default queue: the router's)",
    )
    p.add_argument(
        "--routes-dir",
        type=Path,
        default=_path(env("TFLOW_ROUTES_DIR")),
        help="the mounted routing table (routes*.json[.gz]), reloaded on change",
    )
    p.add_argument(
        "--max-concurrent-activities",
        type=int,
        default=int(env("TFLOW_MAX_CONCURRENT_ACTIVITIES", "0")),
        help="most activities (calls) one replica runs at once (0: the SDK's default); "
        "lower it so that slow calls queue up and KEDA adds replicas",
    )
    p.add_argument("--health-port", type=int, default=int(env("TFLOW_HEALTH_PORT", "8080")))
    p.add_argument("--metrics-port", type=int, default=int(env("TFLOW_METRICS_PORT", "9090")))
    return p


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.serve_orchestrator:
        args.task_queue = args.task_queue or DEFAULT_ROUTER_TASK_QUEUE
        if args.routes_dir is None:
            p.error("--serve-orchestrator needs --routes-dir (or TFLOW_ROUTES_DIR)")
        if args.definitions_dir is None:
            p.error("--serve-orchestrator needs --definitions-dir (or TFLOW_DEFINITIONS_DIR)")
    elif not args.task_queue:
        p.error("the following arguments are required: --task-queue")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(logging.INFO, args.log_format)
    return asyncio.run(serve(args))


def cli() -> None:
    """The console entry point: after a clean shutdown, leave without interpreter
    finalisation, which the Temporal SDK's native threads can abort."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
