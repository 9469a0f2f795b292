"""`python -m tflow_listeners <source> [flags]`: run one listener until SIGTERM.

    python -m tflow_listeners webhook --port 8080 --path /events \\
        --address temporal:7233 --namespace default --task-queue root_orchestrator-queue \\
        --hmac-secret-file /etc/tflow/hmac/secret --max-body-bytes 1048576 --rate-limit 50

Each source is a module implementing `tflow_listeners.source.ListenerSource`; only the one
asked for is imported. Every flag can also come from an environment variable (see
`--help` of a source).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import cast

from tflow_listeners.source import ListenerSource, add_flag, add_temporal_arguments
from tflow_workers.commands import LISTENER_COMMAND, LISTENER_SOURCES
from tflow_workers.logs import LOG_FORMATS, configure_logging

# Source name -> module implementing ListenerSource, of the names the operator uses too.
SOURCES: dict[str, str] = {name: f"tflow_listeners.{name}" for name in LISTENER_SOURCES}


def load_source(name: str) -> ListenerSource:
    return cast(ListenerSource, importlib.import_module(SOURCES[name]))


def build_parser(source: str | None) -> argparse.ArgumentParser:
    """The parser; only `source`'s own flags are loaded (the others' modules may need
    packages this process has no use for)."""
    parser = argparse.ArgumentParser(
        prog=" ".join(LISTENER_COMMAND),
        description="Run a Temporal Flow listener: events in, flow runs out (through one "
        "RootOrchestrator run each, or routed here with --routing direct).",
    )
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name in SOURCES:
        sub_parser = sub.add_parser(name, help=f"the {name} listener")
        if name == source:
            load_source(name).add_arguments(sub_parser)
            add_temporal_arguments(sub_parser)
            add_flag(
                sub_parser,
                "--log-level",
                "TFLOW_LISTENER_LOG_LEVEL",
                default="INFO",
                choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                type=str.upper,
                help="log level",
            )
            add_flag(
                sub_parser,
                "--log-format",
                "TFLOW_LOG_FORMAT",
                default="auto",
                choices=list(LOG_FORMATS),
                help="text, json (one object per line), or auto: json unless stderr is a terminal",
            )
    return parser


async def _serve(source: ListenerSource, args: argparse.Namespace) -> None:
    """Run the source. This is the process's one owner of SIGTERM and SIGINT: a signal
    cancels the source's run, which stops gracefully (a queue source settles the messages
    it holds); another signal meanwhile cancels it again, to stop at once."""
    task = asyncio.create_task(source.run(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in SOURCES else None).parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    source = load_source(args.source)
    try:
        asyncio.run(_serve(source, args))
    except (OSError, ValueError) as err:  # a secret file missing, a port taken, a bad flag
        logging.getLogger("tflow_listeners").error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
