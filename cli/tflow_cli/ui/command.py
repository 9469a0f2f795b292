"""`tflow ui`: serve the web UI against $TEMPORAL_ADDRESS and the current kubeconfig.

Secure by default: every API call needs a token. On a laptop (`--auth token`, the
default) that is a random token made at each start and printed in the page's URL
(`http://127.0.0.1:8088/#token=...`; the page moves it into the tab's sessionStorage);
in a cluster (`--auth kubernetes`, the chart's) callers send Kubernetes tokens, checked
and authorised by the apiserver. `--no-auth` turns checks off, on a loopback address
only."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import secrets
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tflow_cli.ui.server import UiSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = os.environ.get
    ui = sub.add_parser("ui", help="serve the web UI: definitions, runs, a run on its graph")
    ui.add_argument("--address", default=env("TEMPORAL_ADDRESS"), help="Temporal frontend")
    ui.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    ui.add_argument("--host", default=env("TFLOW_UI_HOST", "127.0.0.1"))
    ui.add_argument("--port", type=int, default=int(env("TFLOW_UI_PORT", "8088")))
    ui.add_argument(
        "--auth",
        choices=("token", "kubernetes"),
        default=env("TFLOW_UI_AUTH", "token"),
        help="token: a random token made at start, printed in the URL; kubernetes: callers "
        "send Kubernetes tokens, checked with TokenReview and SubjectAccessReview "
        "(default $TFLOW_UI_AUTH, else token)",
    )
    ui.add_argument(
        "--no-auth",
        action="store_true",
        help="no token at all: anyone who reaches the port reads and steers runs; only with "
        "a loopback --host",
    )
    ui.add_argument(
        "--read-only",
        action="store_true",
        default=env("TFLOW_UI_READ_ONLY", "") in ("1", "true"),
        help="no actions at all (default $TFLOW_UI_READ_ONLY)",
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


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_ui(args: argparse.Namespace) -> int:
    if not args.address:
        raise SystemExit("tflow: no Temporal server: set TEMPORAL_ADDRESS or pass --address")
    if args.no_auth and not loopback(args.host):
        raise SystemExit(
            f"tflow: --no-auth only on a loopback address, not {args.host!r}: anyone who "
            "reaches it could read and steer every run"
        )
    if args.auth == "kubernetes" and args.no_kube and not args.no_auth:
        raise SystemExit("tflow: --auth kubernetes asks the apiserver, so not with --no-kube")
    namespaces = args.allow_namespace or [
        n.strip() for n in os.environ.get("TFLOW_UI_NAMESPACES", "*").split(",") if n.strip()
    ]
    # Imported here, not at the top: every `tflow` command builds this parser, and the
    # server's imports (the Kubernetes client models above all) cost seconds.
    from pydantic import SecretStr

    from tflow_cli.ui.server import UiSettings

    auth = "none" if args.no_auth else args.auth
    settings = UiSettings(
        auth=auth,
        token=SecretStr(secrets.token_urlsafe(24)) if auth == "token" else None,
        read_only=args.read_only,
        namespaces=tuple(namespaces),
        temporal_ui=args.temporal_ui,
        codec=args.codec,
    )
    asyncio.run(_serve(args, settings))
    return 0


async def _serve(args: argparse.Namespace, settings: UiSettings) -> None:
    from aiohttp import web

    from tflow_cli.ui.server import GRAPH_LIBRARY, UiApp
    from tflow_operator.kube import KubeClient
    from tflow_workers.connection import connect

    # Lazy: the page comes up during a Temporal outage and says so, rather than not at all.
    client = await connect(args.address, args.namespace, lazy=True)
    kube = None if args.no_kube else KubeClient.from_env()
    runner = web.AppRunner(UiApp(client, settings, kube).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    url = f"http://{args.host}:{args.port}/"
    if settings.token is not None:
        # The fragment never reaches a server or its logs; the page keeps it for the tab.
        url += f"#token={settings.token.get_secret_value()}"
    print(f"tflow ui: {url}", file=sys.stderr, flush=True)
    if settings.auth == "kubernetes":
        print(
            "tflow ui: sign in with a Kubernetes token "
            "(kubectl create token <serviceaccount> -n <namespace>)",
            file=sys.stderr,
            flush=True,
        )
    elif settings.auth == "none":
        print("tflow ui: no authentication (--no-auth)", file=sys.stderr, flush=True)
    if settings.read_only:
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
