"""Custom functions the engine tests register, as a team would register its own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tflow_workers.engine.catalog import Function, FunctionError

CALLS: list[dict[str, Any]] = []


def add(args: dict[str, Any]) -> Any:
    CALLS.append(args)
    return {"sum": args["a"] + args["b"]}


async def shout(args: dict[str, Any]) -> Any:
    return str(args["text"]).upper()


def refuse(args: dict[str, Any]) -> Any:
    raise FunctionError("card declined", type="https://example.com/errors/payment", status=402)


def explode(args: dict[str, Any]) -> Any:
    raise RuntimeError("boom")


TEST_FUNCTIONS: dict[str, Function] = {
    "add": add,
    "shout": shout,
    "refuse": refuse,
    "explode": explode,
}


def hang_once(args: dict[str, Any]) -> Any:
    """Hangs on its first call (and says so by creating `args["marker"]`); answers on the
    next: the stand-in for a call in flight when its worker dies."""
    marker = Path(args["marker"])
    if not marker.exists():
        marker.write_text("started")
        time.sleep(600)
    return {"answered": "after the first worker was lost"}


def huge(args: dict[str, Any]) -> Any:
    return {"blob": "x" * (3 * 1024 * 1024)}


TEST_FUNCTIONS["huge"] = huge
