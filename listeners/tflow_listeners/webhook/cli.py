"""`python -m tflow_listeners webhook`: the webhook's flags (each also from an environment
variable), its settings from them, and the process that serves until cancelled."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from tflow_listeners.source import add_flag, connect_temporal, handoff_from
from tflow_listeners.webhook.listener import WebhookListener
from tflow_listeners.webhook.settings import (
    HMAC_SCHEMES,
    STANDARD_WEBHOOKS,
    Secret,
    WebhookSettings,
    hmac_key,
)

log = logging.getLogger("tflow_listeners.webhook")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = "TFLOW_LISTENER_"
    add_flag(parser, "--host", env + "HOST", default="0.0.0.0", help="address to listen on")
    add_flag(parser, "--port", env + "PORT", type=int, default=8080, help="port to listen on")
    add_flag(parser, "--path", env + "PATH", default="/events", help="path events are POSTed to")
    add_flag(
        parser,
        "--hmac-secret-file",
        env + "HMAC_SECRET_FILE",
        help="file holding the HMAC-SHA256 secret requests are signed with",
    )
    add_flag(
        parser,
        "--hmac-scheme",
        env + "HMAC_SCHEME",
        default=STANDARD_WEBHOOKS,
        choices=HMAC_SCHEMES,
        help="how requests are signed: standard-webhooks (webhook-id, webhook-timestamp, "
        "webhook-signature; replays refused) or github (X-Hub-Signature-256 over the body)",
    )
    add_flag(
        parser,
        "--hmac-tolerance-seconds",
        env + "HMAC_TOLERANCE_SECONDS",
        type=float,
        default=300.0,
        help="how far a Standard Webhooks timestamp may be from this clock, either way",
    )
    add_flag(
        parser,
        "--replay-cache-size",
        env + "REPLAY_CACHE_SIZE",
        type=int,
        default=100_000,
        help="webhook-ids remembered per replica to refuse replays within the tolerance",
    )
    add_flag(
        parser,
        "--bearer-token-file",
        env + "BEARER_TOKEN_FILE",
        help="file holding the token requests send as Authorization: Bearer",
    )
    add_flag(
        parser,
        "--max-body-bytes",
        env + "MAX_BODY_BYTES",
        type=int,
        default=1048576,
        help="largest request body accepted",
    )
    add_flag(
        parser,
        "--rate-limit",
        env + "RATE_LIMIT",
        type=float,
        help="requests per second accepted before 429 (unlimited when unset)",
    )
    add_flag(
        parser,
        "--run-control",
        env + "RUN_CONTROL",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="serve /runs/... (signal a run, read its status) for runs of --kube-namespace; "
        "needs --hmac-secret-file or --bearer-token-file",
    )
    add_flag(
        parser,
        "--retry-after",
        env + "RETRY_AFTER",
        type=int,
        default=5,
        help="seconds a sender is told to wait when Temporal is unavailable",
    )


def _flag_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true or false)")


def settings_from(args: argparse.Namespace) -> WebhookSettings:
    def secret(path: str | None) -> Secret | None:
        return Secret.from_file(path) if path else None

    if args.max_body_bytes < 1:
        raise ValueError("--max-body-bytes must be at least 1")
    if args.rate_limit is not None and args.rate_limit <= 0:
        raise ValueError("--rate-limit must be positive")
    if args.hmac_tolerance_seconds <= 0:
        raise ValueError("--hmac-tolerance-seconds must be positive")
    if args.replay_cache_size < 1:
        raise ValueError("--replay-cache-size must be at least 1")
    hmac_secret = secret(args.hmac_secret_file)
    if hmac_secret is not None:
        hmac_key(hmac_secret.value())  # a malformed whsec_ secret fails at start, not per request
    return WebhookSettings(
        path=args.path,
        hmac_secret=hmac_secret,
        hmac_scheme=args.hmac_scheme,
        hmac_tolerance=args.hmac_tolerance_seconds,
        replay_cache_size=args.replay_cache_size,
        bearer_token=secret(args.bearer_token_file),
        max_body_bytes=args.max_body_bytes,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        namespace=args.kube_namespace,
        share_with=tuple(args.share_with),
        run_control=bool(args.run_control),
    )


async def run(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    client = await connect_temporal(args)
    listener = WebhookListener(
        client, settings, handoff=handoff_from(args, client), task_queue=args.task_queue
    )
    runner = web.AppRunner(listener.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    auth = [
        name
        for name, on in (
            (f"hmac ({settings.hmac_scheme})", settings.hmac_secret),
            ("bearer", settings.bearer_token),
        )
        if on
    ]
    log.info(
        "webhook listener on %s:%s%s (auth: %s; run control: %s) -> %s/%s, %s",
        args.host,
        args.port,
        settings.path,
        ", ".join(auth) or "none",
        f"namespace {settings.namespace}" if settings.run_control else "off",
        args.address,
        args.namespace,
        f"routing directly with {args.routes_dir}"
        if args.routing == "direct"
        else f"root orchestrator on task queue {args.task_queue}",
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
