"""Importers from the seeds' own workflow formats into Serverless Workflow 1.0 documents.

Two formats are understood (see docs/convert.md for the full mapping):

- `poc-steps`: the Go Temporal POC's step map (`start_step`, `steps` with `node`,
  `go_to`, `condition{satisfied,not_satisfied,timeout}`), in `poc_steps`;
- `node-graph`: Flov7's node/edge graph (`nodes` with `id`/`type`/`data`, `edges` with
  `source`/`target`), in `node_graph`.

`convert` picks the format and returns a plain SW 1.0 document dict, ready to be dumped
as YAML into a WorkflowDefinition's `spec.workflow`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tflow_workers.convert._common import ROOT, ConversionError
from tflow_workers.convert.node_graph import convert_node_graph
from tflow_workers.convert.poc_steps import SIGNAL_NODES, SignalWait, convert_poc_steps

Format = Literal["auto", "poc-steps", "node-graph"]
FORMATS: tuple[Format, ...] = ("auto", "poc-steps", "node-graph")

__all__ = [
    "FORMATS",
    "SIGNAL_NODES",
    "ConversionError",
    "Format",
    "SignalWait",
    "convert",
    "convert_node_graph",
    "convert_poc_steps",
    "detect_format",
]


def detect_format(data: Mapping[str, Any]) -> Literal["poc-steps", "node-graph"]:
    """`poc-steps` for a `steps` map, `node-graph` for a `nodes` list (with `edges`)."""
    if not isinstance(data, Mapping):
        raise ConversionError(ROOT, "expected an object (a step map or a node graph)")
    has_steps = "steps" in data
    has_nodes = "nodes" in data
    if has_steps and has_nodes:
        raise ConversionError(
            ROOT, "ambiguous input: it has both 'steps' and 'nodes'; pass the format explicitly"
        )
    if has_steps:
        return "poc-steps"
    if has_nodes:
        return "node-graph"
    raise ConversionError(
        ROOT,
        "unrecognised input: expected a POC step map ('steps') or a node graph "
        "('nodes' and 'edges')",
    )


def convert(
    data: dict[str, Any],
    fmt: Format = "auto",
    name: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    """Convert a seed-format workflow into an SW 1.0 document dict.

    `name` defaults to one derived from the input (its `name`, else its `id`); `namespace`
    goes into `document.namespace`. Raises ConversionError (a ValueError) whose message
    starts with the path of the offending value.
    """
    if fmt not in FORMATS:
        raise ConversionError("fmt", f"unknown format {fmt!r} (expected one of {FORMATS})")
    chosen = detect_format(data) if fmt == "auto" else fmt
    if chosen == "poc-steps":
        return convert_poc_steps(data, name=name, namespace=namespace)
    return convert_node_graph(data, name=name, namespace=namespace)
