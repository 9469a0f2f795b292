"""`tflow run-api`: serve the run API until SIGTERM, against $TEMPORAL_ADDRESS and the
pod's service account (else the kubeconfig)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

from tflow_workers.logs import LOG_FORMATS, configure_logging

log = logging.getLogger("tflow.runapi")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = os.environ.get
    api = sub.add_parser(
        "run-api", help="serve the run API: start, list, read and steer runs over HTTP"
    )
    api.add_argument("--address", default=env("TEMPORAL_ADDRESS"), help="Temporal frontend")
    api.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    api.add_argument("--host", default=env("TFLOW_RUN_API_HOST", "0.0.0.0"))
    api.add_argument("--port", type=int, default=int(env("TFLOW_RUN_API_PORT", "8080")))
    api.add_argument(
        "--audience",
        action="append",
        default=[a for a in (env("TFLOW_RUN_API_AUDIENCES") or "").split(",") if a],
        help="a token audience the TokenReview asks for (repeat; default: the apiserver's)",
    )
    api.add_argument("--log-format", choices=LOG_FORMATS, default=env("TFLOW_LOG_FORMAT", "auto"))
    api.set_defaults(func=cmd_run_api)


async def serve(args: argparse.Namespace) -> None:
    # Imported here, not at the top: every `tflow` command builds this parser, and the
    # server's imports (the Kubernetes client models above all) cost seconds.
    from aiohttp import web

    from tflow_cli.kube_access import KubeAccess
    from tflow_cli.runapi.service import RunApi
    from tflow_operator.kube import KubeClient
    from tflow_workers.connection import connect
    from tflow_workers.temporal_namespaces import TemporalNamespaces

    if not args.address:
        raise SystemExit("tflow: no Temporal server: set TEMPORAL_ADDRESS or pass --address")
    client = await connect(args.address, args.namespace, lazy=True)
    kube = KubeClient.from_env()
    service = RunApi(
        client,
        KubeAccess(kube, tuple(args.audience)),
        temporal_namespaces=TemporalNamespaces.from_env(args.namespace),
    )
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("run API on %s:%s -> %s/%s", args.host, args.port, args.address, args.namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        with contextlib.suppress(Exception):
            await kube.close()


def cmd_run_api(args: argparse.Namespace) -> int:
    configure_logging("INFO", args.log_format)
    asyncio.run(serve(args))
    return 0
