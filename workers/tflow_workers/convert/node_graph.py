"""Converter for the Flov7 node/edge graph (seed 002) into an SW 1.0 document.

Input shape (Flov7's workflow payload)::

    {"id": "...", "name": "Test Workflow",
     "nodes": [{"id": "node-1", "type": "api_call", "data": {"url": ..., "method": "GET"}},
               {"id": "node-2", "type": "transform",
                "data": {"transform_type": "mapping", "mapping": {"result": "inputs.data"}}}],
     "edges": [{"id": "edge-1", "source": "node-1", "target": "node-2"}]}

Flov7 runs a node once all its sources have finished, and independent nodes in parallel.
The converter ranks nodes by their longest dependency chain: rank 0 holds the nodes
without sources, rank k the nodes whose deepest source sits in rank k-1. A rank with one
node becomes a plain task; a rank with several becomes a `fork` whose branches are those
nodes (all branches finish before the next rank starts). Each node becomes a task named
by its id. A node's settings may live in `data` (the seed) or `config`.

Data flows along edges, not along the task list: every task keeps its output in
`$context.outputs.<id>` and takes its input from its own sources there (one source: that
output; several: an object keyed by source id; none: the workflow input). A `condition`
node is a `switch` whose decision (`$context.decisions.<id>`) gates the targets of its
`true`/`false` edges with `if`; a node none of whose incoming edges is live is skipped.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tflow_workers.convert._common import (
    ROOT,
    ConversionError,
    check_label,
    child,
    find_cycle,
    header,
    iso_duration,
    pick_name,
    pick_version,
    reject_unknown,
    require_mapping,
    require_string,
    unique_name,
)
from tflow_workers.dsl.expressions import ExpressionCompileError, compile_expression
from tflow_workers.dsl.validate import SQL_TEXT_FIELDS

SOURCE_FORMAT: Final = "node-graph"

# Keys a graph editor (React Flow, which Flov7's UI uses) stores for drawing only; they
# carry no behaviour, so dropping them loses nothing.
_NODE_PRESENTATION: Final = frozenset(
    {
        "position",
        "positionAbsolute",
        "width",
        "height",
        "selected",
        "dragging",
        "draggable",
        "selectable",
        "hidden",
        "style",
        "className",
        "sourcePosition",
        "targetPosition",
        "zIndex",
        "label",
        "name",
        "description",
    }
)
_EDGE_PRESENTATION: Final = frozenset(
    {"id", "type", "label", "animated", "style", "markerStart", "markerEnd", "selected", "hidden"}
)
# Handles mean "this output port leads here". A condition node's `true`/`false` ports
# branch; any other handle is refused rather than silently flattened.
_EDGE_HANDLES: Final = ("sourceHandle", "targetHandle")
_DECISIONS: Final = ("true", "false")
# Refused by name: the seed's agent nodes call a language model, and no model endpoint is
# part of this project, so a converted call would have nothing behind it.
_REFUSED_TYPES: Final[Mapping[str, str]] = {
    "ai_agent": "ai_agent nodes are not converted: they call a language model, and no "
    "model endpoint is part of Temporal Flow; replace the node with an api_call to your "
    "model's HTTP API, or a custom function",
}
_CONFIG_PRESENTATION: Final = frozenset({"label", "description"})


@dataclass(frozen=True)
class _Node:
    id: str
    type: str
    config: Mapping[str, Any]
    path: str  # location of the node's config, for error messages


def convert_node_graph(
    data: Mapping[str, Any], *, name: str | None = None, namespace: str = "default"
) -> dict[str, Any]:
    """Convert a Flov7 node/edge graph into an SW 1.0 document dict.

    Raises ConversionError for malformed nodes or edges, edges to unknown nodes, cycles
    (naming the nodes on it), and node settings that have no SW 1.0 equivalent.
    """
    data = require_mapping(data, ROOT)
    nodes = _parse_nodes(data.get("nodes"), child(ROOT, "nodes"))
    sources, handles = _parse_edges(data.get("edges"), child(ROOT, "edges"), nodes)
    _reject_cycles(nodes, sources)
    ranks = _ranks(nodes, sources)

    gated: set[str] = set()
    for rank in ranks:
        for node_id in rank:
            if any((source, node_id) in handles or source in gated for source in sources[node_id]):
                gated.add(node_id)

    def task(node_id: str) -> dict[str, Any]:
        body = _task_for(nodes[node_id])
        return _wire(nodes[node_id], body, sources[node_id], handles, node_id in gated)

    taken = set(nodes)
    tasks: list[dict[str, Any]] = []
    forks = 0
    for rank in ranks:
        if len(rank) == 1:
            tasks.append({rank[0]: task(rank[0])})
            continue
        forks += 1
        branches = [{node_id: task(node_id)} for node_id in rank]
        tasks.append({unique_name(f"parallel_{forks}", taken): {"fork": {"branches": branches}}})

    has_targets = {source for froms in sources.values() for source in froms}
    sinks = [node_id for node_id in nodes if node_id not in has_targets]
    secrets = sorted({str(n.config["secret"]) for n in nodes.values() if n.type == "database"})

    title = data.get("name") if isinstance(data.get("name"), str) else None
    summary = data.get("description") if isinstance(data.get("description"), str) else None
    return {
        "document": header(
            name=pick_name(name, data.get("name") or data.get("id"), "graph-workflow"),
            namespace=check_label(namespace, "namespace"),
            version=pick_version(data.get("version"), child(ROOT, "version")),
            source_format=SOURCE_FORMAT,
            title=title,
            summary=summary,
        ),
        **({"use": {"secrets": secrets}} if secrets else {}),
        "do": tasks,
        # The graph's result is what its last nodes produced, not the last rank's list.
        "output": {"as": _gather(sinks)},
    }


def _output_of(node_id: str) -> str:
    return f"$context.outputs[{json.dumps(node_id)}]"


def _gather(node_ids: list[str]) -> str:
    if len(node_ids) == 1:
        return f"${{ {_output_of(node_ids[0])} }}"
    fields = ", ".join(f"{json.dumps(n)}: {_output_of(n)}" for n in node_ids)
    return f"${{ {{{fields}}} }}"


def _wire(
    node: _Node,
    body: dict[str, Any],
    sources: list[str],
    handles: Mapping[tuple[str, str], str],
    gated: bool,
) -> dict[str, Any]:
    """The node's task with its data flow: input from its own sources, output kept by
    id, and an `if` when it depends on a condition's decision."""
    task = dict(body)
    key = json.dumps(node.id)
    if gated:
        live = []
        for source in sources:
            decision = handles.get((source, node.id))
            if decision is not None:
                live.append(f"($context.decisions[{json.dumps(source)}] == {decision})")
            else:
                live.append(f"(($context.outputs // {{}}) | has({json.dumps(source)}))")
        task["if"] = f"${{ {' or '.join(live)} }}"
    task["input"] = {"from": _gather(sources) if sources else "${ $workflow.input }"}
    if node.type == "condition":
        # The condition routes its input on unchanged; its decision is kept apart.
        task["export"] = {
            "as": f"${{ $context + {{outputs: ($context.outputs + {{{key}: $input}}), "
            f"decisions: ($context.decisions + {{{key}: .}})}} }}"
        }
    else:
        task["export"] = {"as": f"${{ $context + {{outputs: ($context.outputs + {{{key}: .}})}} }}"}
    return task


# ---------------------------------------------------------------------------- parsing


def _parse_nodes(raw: object, path: str) -> dict[str, _Node]:
    if not isinstance(raw, list) or not raw:
        raise ConversionError(path, "expected a non-empty list of nodes")
    nodes: dict[str, _Node] = {}
    for index, item in enumerate(raw):
        node_path = child(path, index)
        node = require_mapping(item, node_path)
        reject_unknown(
            node, {"id", "type", "data", "config", *_NODE_PRESENTATION}, node_path, "node"
        )
        node_id = require_string(node.get("id"), child(node_path, "id"))
        if node_id in nodes:
            raise ConversionError(child(node_path, "id"), f"duplicate node id {node_id!r}")
        node_type = require_string(node.get("type"), child(node_path, "type"))
        if node_type in _REFUSED_TYPES:
            raise ConversionError(child(node_path, "type"), _REFUSED_TYPES[node_type])
        if node.get("data") is not None and node.get("config") is not None:
            raise ConversionError(node_path, "set either 'data' or 'config', not both")
        key = "config" if node.get("config") is not None else "data"
        config_path = child(node_path, key)
        config = require_mapping(node.get(key) or {}, config_path)
        nodes[node_id] = _Node(node_id, node_type, config, config_path)
    return nodes


def _parse_edges(
    raw: object, path: str, nodes: Mapping[str, _Node]
) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """Each node's sources, in edge order (duplicate edges collapse into one), and the
    decision (`true`/`false`) each condition edge carries."""
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConversionError(path, "expected a list of edges")
    sources: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    handles: dict[tuple[str, str], str] = {}
    for index, item in enumerate(raw):
        edge_path = child(path, index)
        edge = require_mapping(item, edge_path)
        reject_unknown(
            edge, {"source", "target", *_EDGE_HANDLES, *_EDGE_PRESENTATION}, edge_path, "edge"
        )
        ends: list[str] = []
        for end in ("source", "target"):
            node_id = require_string(edge.get(end), child(edge_path, end))
            if node_id not in nodes:
                drawn = f"{edge.get('source')!r} -> {edge.get('target')!r}"
                raise ConversionError(
                    child(edge_path, end), f"dangling edge {drawn}: unknown node {node_id!r}"
                )
            ends.append(node_id)
        source, target = ends
        if edge.get("targetHandle") is not None:
            raise ConversionError(
                child(edge_path, "targetHandle"),
                "edge handles (branching by input port) are not converted",
            )
        handle = edge.get("sourceHandle")
        if handle is not None:
            if nodes[source].type != "condition" or str(handle).lower() not in _DECISIONS:
                raise ConversionError(
                    child(edge_path, "sourceHandle"),
                    "only a condition node's 'true' and 'false' handles are converted, "
                    f"not {handle!r} on a {nodes[source].type} node",
                )
            decision = str(handle).lower()
            if handles.get((source, target), decision) != decision:
                raise ConversionError(
                    edge_path, f"{source!r} -> {target!r} is both a true and a false edge"
                )
            handles[(source, target)] = decision
        if source not in sources[target]:
            sources[target].append(source)
    return sources, handles


def _reject_cycles(nodes: Mapping[str, _Node], sources: Mapping[str, list[str]]) -> None:
    targets: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for target, froms in sources.items():
        for source in froms:
            targets[source].append(target)
    cycle = find_cycle(nodes, targets)
    if cycle is not None:
        raise ConversionError(child(ROOT, "edges"), f"the graph has a cycle: {' -> '.join(cycle)}")


def _ranks(nodes: Mapping[str, _Node], sources: Mapping[str, list[str]]) -> list[list[str]]:
    """Nodes grouped by longest distance from a node without sources; document order
    within a group. The graph is acyclic here."""
    rank: dict[str, int] = {}
    pending = list(nodes)
    while pending:
        # Each pass ranks the nodes whose sources are all ranked; acyclic, so it ends.
        waiting = []
        for node_id in pending:
            if all(source in rank for source in sources[node_id]):
                rank[node_id] = 1 + max((rank[s] for s in sources[node_id]), default=-1)
            else:
                waiting.append(node_id)
        pending = waiting
    grouped: dict[int, list[str]] = {}
    for node_id in nodes:
        grouped.setdefault(rank[node_id], []).append(node_id)
    return [grouped[r] for r in sorted(grouped)]


# ---------------------------------------------------------------------------- node types


def _task_for(node: _Node) -> dict[str, Any]:
    builder = _BUILDERS.get(node.type)
    if builder is not None:
        return builder(node)
    # Other node types become calls to a custom function of that name, with the node's
    # settings as its arguments.
    task: dict[str, Any] = {"call": node.type}
    args = {k: copy.deepcopy(v) for k, v in node.config.items() if k not in _CONFIG_PRESENTATION}
    if args:
        task["with"] = args
    return task


def _http_call(node: _Node, *, default_method: str, body_key: str) -> dict[str, Any]:
    config = node.config
    allowed = {"url", "endpoint", "method", "headers", "query", body_key, "timeout"}
    reject_unknown(config, allowed | _CONFIG_PRESENTATION, node.path, f"{node.type} node")
    if "url" in config and "endpoint" in config:
        raise ConversionError(node.path, "set either 'url' or 'endpoint', not both")
    url_key = "endpoint" if "endpoint" in config else "url"
    endpoint = require_string(config.get(url_key), child(node.path, url_key))
    method = require_string(config.get("method", default_method), child(node.path, "method"))
    args: dict[str, Any] = {"method": method.lower(), "endpoint": endpoint}
    for source_key, target_key in (("headers", "headers"), ("query", "query")):
        if config.get(source_key) is not None:
            mapping = require_mapping(config[source_key], child(node.path, source_key))
            args[target_key] = copy.deepcopy(dict(mapping))
    if config.get(body_key) is not None:
        args["body"] = copy.deepcopy(config[body_key])
    task: dict[str, Any] = {"call": "http", "with": args}
    if config.get("timeout") is not None:
        task["timeout"] = {"after": iso_duration(config["timeout"], child(node.path, "timeout"))}
    return task


def _api_call(node: _Node) -> dict[str, Any]:
    return _http_call(node, default_method="GET", body_key="body")


def _webhook(node: _Node) -> dict[str, Any]:
    return _http_call(node, default_method="POST", body_key="payload")


def _delay(node: _Node) -> dict[str, Any]:
    reject_unknown(node.config, {"delay_seconds", *_CONFIG_PRESENTATION}, node.path, "delay node")
    seconds_path = child(node.path, "delay_seconds")
    seconds = node.config.get("delay_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConversionError(seconds_path, "expected a number of seconds")
    return {"wait": iso_duration(seconds, seconds_path)}


def _transform(node: _Node) -> dict[str, Any]:
    """`set` from a jq `expression` (kept as is) or from a field `mapping`, whose string
    values are paths into the node's input (`inputs.a.b` -> `${ .a.b }`)."""
    config = node.config
    reject_unknown(
        config,
        {"transform_type", "mapping", "expression", *_CONFIG_PRESENTATION},
        node.path,
        "transform node",
    )
    has_mapping = config.get("mapping") is not None
    has_expression = config.get("expression") is not None
    if has_mapping and has_expression:
        raise ConversionError(node.path, "set either 'mapping' or 'expression', not both")
    if has_expression:
        expression = require_string(config["expression"], child(node.path, "expression"))
        return {"set": _as_runtime_expression(expression)}
    kind = config.get("transform_type", "mapping")
    if kind != "mapping":
        raise ConversionError(
            child(node.path, "transform_type"),
            f"transform type {kind!r} is not converted; give a jq 'expression' instead",
        )
    mapping_path = child(node.path, "mapping")
    mapping = require_mapping(config.get("mapping"), mapping_path)
    if not mapping:
        raise ConversionError(mapping_path, "the mapping is empty")
    return {
        "set": {
            field: _mapping_value(value, child(mapping_path, field))
            for field, value in mapping.items()
        }
    }


def _condition(node: _Node) -> dict[str, Any]:
    """A `switch` on the node's jq condition; its output is the decision."""
    config = node.config
    reject_unknown(config, {"condition", *_CONFIG_PRESENTATION}, node.path, "condition node")
    condition_path = child(node.path, "condition")
    text = require_string(config.get("condition"), condition_path).strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    # Flov7 reads its inputs as `inputs.x`; here the task's input is `.`.
    expression = re.sub(r"(?<![\w.$])inputs?\.", ".", text)
    try:
        compile_expression(expression)
    except ExpressionCompileError as err:
        raise ConversionError(
            condition_path,
            f"{text!r} is not a jq expression ({err.message}); Flov7's Python conditions are "
            "not converted, write the condition in jq",
        ) from None
    return {
        "do": [
            {
                "decide": {
                    "switch": [
                        {"true": {"when": f"${{ {expression} }}", "then": "isTrue"}},
                        {"false": {"then": "isFalse"}},
                    ]
                }
            },
            {"isTrue": {"set": "${ true }", "then": "exit"}},
            {"isFalse": {"set": "${ false }"}},
        ]
    }


def _database(node: _Node) -> dict[str, Any]:
    """`sql.query` for statements that answer rows, `sql.execute` for the others."""
    config = node.config
    reject_unknown(
        config,
        {"operation", "table", "query", "secret", "parameters", "timeout", *_CONFIG_PRESENTATION},
        node.path,
        "database node",
    )
    secret = require_string(config.get("secret"), child(node.path, "secret"))
    query = require_string(config.get("query"), child(node.path, "query"))
    if "${" in query:
        raise ConversionError(
            child(node.path, "query"),
            "the SQL text must be literal; pass values as 'parameters' (%s or %(name)s)",
        )
    operation = str(config.get("operation") or "").lower()
    returns_rows = operation in ("select", "query") or (
        not operation
        and (
            re.match(r"\s*(select|with|values|show|table)\b", query, re.IGNORECASE) is not None
            or re.search(r"\breturning\b", query, re.IGNORECASE) is not None
        )
    )
    function = "sql.query" if returns_rows else "sql.execute"
    args: dict[str, Any] = {"secret": secret, SQL_TEXT_FIELDS[function]: query}
    if config.get("parameters") is not None:
        parameters = config["parameters"]
        if not isinstance(parameters, list | Mapping):
            raise ConversionError(
                child(node.path, "parameters"), "expected a list or an object of values"
            )
        args["parameters"] = copy.deepcopy(parameters)
    if config.get("timeout") is not None:
        args["timeout"] = iso_duration(config["timeout"], child(node.path, "timeout"))
    return {"call": function, "with": args}


_BUILDERS: Final[Mapping[str, Callable[[_Node], dict[str, Any]]]] = {
    "api_call": _api_call,
    "webhook": _webhook,
    "delay": _delay,
    "transform": _transform,
    "condition": _condition,
    "database": _database,
}

_JQ_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Flov7 mapping paths start at the node's inputs; in SW the task input is `.`.
_INPUT_ROOTS: Final = ("inputs", "input")


def _as_runtime_expression(expression: str) -> str:
    text = expression.strip()
    if text.startswith("${") and text.endswith("}"):
        return text
    return f"${{ {text} }}"


def _mapping_value(value: object, path: str) -> object:
    if not isinstance(value, str):
        return copy.deepcopy(value)  # numbers, booleans, objects: literals
    text = value.strip()
    if text.startswith("${") and text.endswith("}"):
        return text
    if not text:
        raise ConversionError(path, "expected a path such as 'inputs.data'")
    segments = text.split(".")
    if segments[0] in _INPUT_ROOTS:
        segments = segments[1:]
    if any(not segment for segment in segments):
        raise ConversionError(path, f"{value!r} has an empty path segment")
    if not segments:
        return "${ . }"
    jq_path = "".join(_jq_segment(segment, first=i == 0) for i, segment in enumerate(segments))
    return f"${{ {jq_path} }}"


def _jq_segment(segment: str, *, first: bool) -> str:
    if _JQ_IDENT.match(segment):
        return f".{segment}"
    # Brackets chain onto a path (`.a[0]`, `.a["b c"]`) but need a leading `.` to start one.
    lead = "." if first else ""
    if segment.isdigit():
        return f"{lead}[{segment}]"
    escaped = segment.replace("\\", "\\\\").replace('"', '\\"')
    return f'{lead}["{escaped}"]'
