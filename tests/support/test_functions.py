"""Custom functions the engine tests register, as a team would register its own."""

from __future__ import annotations

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


def huge(args: dict[str, Any]) -> Any:
    return {"blob": "x" * (3 * 1024 * 1024)}


TEST_FUNCTIONS["huge"] = huge
