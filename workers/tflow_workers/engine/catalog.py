"""Custom functions: `call: <name>` runs a Python callable the deploying team registers,
as a Temporal activity of that name, without touching the engine.

A team registers functions either as entry points of its own package,

    [project.entry-points."temporalflow.functions"]
    charge-payment = "shop.payments:charge"

or in a list given to the worker (`--function charge-payment=shop.payments:charge`, or the
`TFLOW_FUNCTIONS` environment variable, comma-separated). A function takes the call's
`with` arguments (a dict) and returns JSON-able data; it may be sync or async. To fail
with a specific DSL error, raise `FunctionError`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

from temporalio import activity

from tflow_workers.engine.activities import problem_error
from tflow_workers.engine.errors import ErrorType, Problem, WorkflowError, check_payload

ENTRY_POINT_GROUP = "temporalflow.functions"

Function = Callable[[dict[str, Any]], Any]


class FunctionError(Exception):
    """Raised by a custom function to fail its call with a DSL error `try` can catch."""

    def __init__(
        self,
        detail: str,
        *,
        type: str = ErrorType.RUNTIME,
        status: int = 500,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(type=type, status=status, title=title, detail=detail)


class CatalogError(ValueError):
    """A function reference that cannot be loaded; the message names it."""


def load_reference(reference: str) -> Function:
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise CatalogError(f"function reference {reference!r} is not of the form module:callable")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise CatalogError(f"cannot load function {reference!r}: {err}") from None
    if not callable(target):
        raise CatalogError(f"function {reference!r} is not callable")
    fn: Function = target
    return fn


def parse_specs(specs: Iterable[str]) -> dict[str, str]:
    """`name=module:callable` items into a name -> reference map."""
    result: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, reference = item.partition("=")
            if not sep or not name.strip():
                raise CatalogError(f"function {item!r} is not of the form name=module:callable")
            result[name.strip()] = reference.strip()
    return result


def discover(extra: dict[str, str] | None = None) -> dict[str, Function]:
    """Every registered function: entry points first, explicit ones override them."""
    functions: dict[str, Function] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        functions[ep.name] = load_reference(ep.value)
    for name, reference in (extra or {}).items():
        functions[name] = load_reference(reference)
    return functions


def as_activity(name: str, fn: Function) -> Callable[..., Any]:
    """Wrap a function as the activity `call: <name>` executes."""

    async def run(args: dict[str, Any]) -> Any:
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(args)
            else:
                # Sync functions do blocking I/O; keep the worker's event loop free.
                result = await asyncio.to_thread(fn, args)
            check_payload(result, f"the result of {name!r}")
            return result
        except WorkflowError as err:
            raise problem_error(err.problem) from None
        except FunctionError as err:
            raise problem_error(err.problem) from None
        except Exception as err:
            raise problem_error(
                Problem(
                    type=ErrorType.RUNTIME,
                    status=500,
                    title=f"{name} failed",
                    detail=f"{type(err).__name__}: {err}",
                )
            ) from None

    run.__name__ = name.replace("-", "_")
    run.__qualname__ = run.__name__
    return activity.defn(name=name)(run)
