"""A listener run as its own process (`python -m tflow_listeners ...`), as a pod runs it:
started with an environment, its output in a log file, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Mapping
from pathlib import Path


async def start_listener(
    env: Mapping[str, str], *args: str, log_path: Path
) -> asyncio.subprocess.Process:
    """`python -m tflow_listeners <args>` with exactly `env`, stdout and stderr to
    `log_path`."""
    with log_path.open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "tflow_listeners", *args),
            env=dict(env),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )


async def stop_listener(process: asyncio.subprocess.Process, grace: float = 20) -> int:
    """SIGTERM, then its exit code; killed (and the code of that) after `grace` seconds."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), timeout=grace)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
