"""`tflow ui`: serve the web UI against $TEMPORAL_ADDRESS and the current kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from tflow_cli.ui.server import GRAPH_LIBRARY, UiApp, UiSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = os.environ.get
    ui = sub.add_parser("ui", help="serve the web UI: definitions, runs, a run on its graph")
    ui.add_argument("--address", default=env("TEMPORAL_ADDRESS"), help="Temporal frontend")
    ui.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    ui.add_argument("--host", default=env("TFLOW_UI_HOST", "127.0.0.1"))
    ui.add_argument("--port", type=int, default=int(env("TFLOW_UI_PORT", "8088")))
    ui.add_argument(
        "--token-file",
        default=env("TFLOW_UI_TOKEN_FILE"),
        help="the bearer token actions need (default $TFLOW_UI_TOKEN, else a new one printed)",
    )
    ui.add_argument(
        "--read-only",
        action="store_true",
        default=env("TFLOW_UI_READ_ONLY", "") in ("1", "true"),
        help="no actions at all, and no token made up (default $TFLOW_UI_READ_ONLY)",
    )
    ui.add_argument(
        "--allow-namespace",
        action="append",
        default=None,
        help="a Kubernetes namespace whose runs the UI shows and acts on (repeat; '*' for all; "
        "default $TFLOW_UI_NAMESPACES, comma-separated, else '*')",
    )
    ui.add_argument(
        "--temporal-ui",
        default=env("TFLOW_TEMPORAL_UI_URL"),
        help="base URL of Temporal's Web UI, for links to a run's history",
    )
    ui.add_argument(
        "--codec",
        action="store_true",
        default=env("TFLOW_UI_CODEC", "") in ("1", "true"),
        help="serve Temporal's remote codec protocol at /codec, so Temporal's Web UI shows "
        "payloads decrypted with TFLOW_PAYLOAD_KEY (default $TFLOW_UI_CODEC)",
    )
    ui.add_argument(
        "--no-kube",
        action="store_true",
        help="do not read definitions, routes and listeners from Kubernetes",
    )
    ui.set_defaults(func=cmd_ui)


def _token(args: argparse.Namespace) -> tuple[str | None, bool]:
    """The actions' token and whether it was made up here (then it is printed once)."""
    if args.read_only:
        return None, False
    if args.token_file:
        return Path(args.token_file).read_text().strip(), False
    given = os.environ.get("TFLOW_UI_TOKEN")
    if given:
        return given, False
    return secrets.token_urlsafe(24), True


def cmd_ui(args: argparse.Namespace) -> int:
    if not args.address:
        raise SystemExit("tflow: no Temporal server: set TEMPORAL_ADDRESS or pass --address")
    token, generated = _token(args)
    namespaces = args.allow_namespace or [
        n.strip() for n in os.environ.get("TFLOW_UI_NAMESPACES", "*").split(",") if n.strip()
    ]
    settings = UiSettings(
        token=SecretStr(token) if token else None,
        namespaces=tuple(namespaces),
        temporal_ui=args.temporal_ui,
        codec=args.codec,
    )
    asyncio.run(_serve(args, settings, token if generated else None))
    return 0


async def _serve(args: argparse.Namespace, settings: UiSettings, shown_token: str | None) -> None:
    from tflow_operator.kube import KubeClient
    from tflow_workers.connection import connect

    # Lazy: the page comes up during a Temporal outage and says so, rather than not at all.
    client = await connect(args.address, args.namespace, lazy=True)
    kube = None if args.no_kube else KubeClient.from_env()
    runner = web.AppRunner(UiApp(client, settings, kube).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"tflow ui: http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    if shown_token:
        print(f"tflow ui: actions token: {shown_token}", file=sys.stderr, flush=True)
    elif settings.token is None:
        print("tflow ui: read-only, no actions", file=sys.stderr, flush=True)
    if not GRAPH_LIBRARY.exists():
        print(
            "tflow ui: the graph layout library is missing (run `make ui-assets`); "
            "runs are shown without their graph",
            file=sys.stderr,
            flush=True,
        )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        if kube is not None:
            await kube.close()
