"""Pictures of SW 1.0 documents: a Mermaid `flowchart TD` (`to_mermaid`), a standalone
SVG drawn by a small layered layout (`to_svg`), with no external tools, and the graph as
data (`to_data`) for the web UI, which lays it out with dagre in the page.

Both draw the same graph: a Start and an End node, one node per task (name and kind),
edges for sequential flow and `then` jumps, switch cases labelled with their `when`, fork
branches, try bodies with their catch, for loops (body flows back to the loop), and nested
`do` lists (subgraphs in Mermaid). Output depends only on the document, so it can be
committed and diffed.

The walk reads raw document dicts and tolerates what it does not know (an unknown task
kind is drawn as such); a malformed task list or an unresolvable `then` target raises
ValueError.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from tflow_workers.dsl.models import kinds_present

__all__ = ["to_data", "to_mermaid", "to_svg"]

START: Final = "start"
STOP: Final = "stop"


# ---------------------------------------------------------------------------- the graph


@dataclass
class _Node:
    id: str
    name: str
    kind: str  # the line drawn under the name: "set", "call: http", "catch: timeout"
    shape: str  # "task", "switch", "terminal", "catch"
    category: str  # the task kind, for colouring
    # The task's JSON pointer in the document, as the interpreter's task log names it
    # (`/do/2/awaitApproval/try/0/review`); empty for Start and End.
    reference: str = ""


@dataclass
class _Edge:
    src: str
    dst: str
    label: str | None = None
    dashed: bool = False


@dataclass
class _Cluster:
    id: str
    label: str
    items: list[str] = field(default_factory=list)  # node ids and cluster ids, in order


@dataclass
class _Graph:
    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)
    clusters: dict[str, _Cluster] = field(default_factory=dict)
    top: list[str] = field(default_factory=list)
    title: str = "workflow"


class _Builder:
    def __init__(self) -> None:
        self.graph = _Graph()

    def build(self, document: Mapping[str, Any]) -> _Graph:
        if not isinstance(document, Mapping):
            raise ValueError("expected an SW document (a mapping)")
        head = document.get("document")
        if isinstance(head, Mapping) and isinstance(head.get("name"), str):
            self.graph.title = head["name"]
        self._node(START, "Start", "", "terminal", "terminal", None)
        tasks = _task_list(document.get("do"), "do")
        self._edge(START, _entry(tasks, "t", STOP))
        self._list(tasks, "t", STOP, [], None, "/do")
        # End is declared last so it sits at the bottom of the Mermaid output.
        self.graph.nodes[STOP] = _Node(STOP, "End", "", "terminal", "terminal")
        self.graph.top.append(STOP)
        return self.graph

    # -- helpers

    def _node(
        self,
        node_id: str,
        name: str,
        kind: str,
        shape: str,
        category: str,
        cluster: str | None,
        reference: str = "",
    ) -> None:
        self.graph.nodes[node_id] = _Node(node_id, name, kind, shape, category, reference)
        self._place(node_id, cluster)

    def _place(self, item: str, cluster: str | None) -> None:
        if cluster is None:
            self.graph.top.append(item)
        else:
            self.graph.clusters[cluster].items.append(item)

    def _cluster(self, cluster_id: str, label: str, parent: str | None) -> str:
        self.graph.clusters[cluster_id] = _Cluster(cluster_id, label)
        self._place(cluster_id, parent)
        return cluster_id

    def _edge(self, src: str, dst: str, label: str | None = None, dashed: bool = False) -> None:
        edge = _Edge(src, dst, label, dashed)
        if edge not in self.graph.edges:
            self.graph.edges.append(edge)

    # -- walking

    def _list(
        self,
        tasks: list[tuple[str, Mapping[str, Any]]],
        prefix: str,
        exit_to: str,
        outer: list[dict[str, str]],
        cluster: str | None,
        reference: str,
        *,
        parallel: bool = False,
    ) -> None:
        """Draw a task list as nodes `<prefix>0`, `<prefix>1`, ...

        `exit_to` is where the list continues once done; in a `parallel` list (fork
        branches) every task continues there rather than into its sibling.
        """
        ids = [f"{prefix}{index}" for index in range(len(tasks))]
        scope = {name: node_id for (name, _), node_id in zip(tasks, ids, strict=True)}
        scopes = [scope, *outer]
        for index, (name, task) in enumerate(tasks):
            last = parallel or index + 1 == len(tasks)
            after = exit_to if last else ids[index + 1]
            ref = f"{reference}/{index}/{name}"
            self._task(name, task, ids[index], after, exit_to, scopes, cluster, ref)

    def _task(
        self,
        name: str,
        task: Mapping[str, Any],
        node_id: str,
        after: str,
        exit_to: str,
        scopes: list[dict[str, str]],
        cluster: str | None,
        ref: str,
    ) -> None:
        kind = _kind_of(task)
        shape = "switch" if kind == "switch" else "task"
        self._node(node_id, name, _kind_label(kind, task), shape, kind, cluster, ref)

        def resolve(directive: object) -> str:
            return _resolve(directive, after, exit_to, scopes, name)

        then = resolve(task.get("then"))
        if kind == "switch":
            has_default = False
            for case_name, case in _task_list(task.get("switch"), f"{name}.switch"):
                when = case.get("when")
                has_default = has_default or when is None
                label = _strip_expression(when) if isinstance(when, str) else "default"
                self._edge(node_id, resolve(case.get("then")), label or case_name)
            if not has_default:
                self._edge(node_id, then, "no match")
        elif kind == "do":
            tasks = _task_list(task.get("do"), name)
            self._edge(node_id, _entry(tasks, f"{node_id}_", then))
            body = self._cluster(f"{node_id}_do", name, cluster)
            self._list(tasks, f"{node_id}_", then, scopes, body, f"{ref}/do")
        elif kind == "for":
            tasks = _task_list(task.get("do"), name)
            self._edge(node_id, _entry(tasks, f"{node_id}_", node_id), "each")
            self._edge(node_id, then, "done")
            body = self._cluster(f"{node_id}_for", f"{name}: body", cluster)
            self._list(tasks, f"{node_id}_", node_id, scopes, body, f"{ref}/do")
        elif kind == "fork":
            branches = _task_list(_mapping(task.get("fork")).get("branches"), f"{name}.fork")
            for index in range(len(branches)):
                self._edge(node_id, f"{node_id}_{index}")
            if not branches:
                self._edge(node_id, then)
            body = self._cluster(f"{node_id}_fork", f"{name}: branches", cluster)
            branches_ref = f"{ref}/fork/branches"
            self._list(branches, f"{node_id}_", then, scopes, body, branches_ref, parallel=True)
        elif kind == "try":
            self._try(name, task, node_id, then, scopes, cluster, ref)
        elif kind != "raise":  # a raise faults the flow: nothing follows it
            self._edge(node_id, then)

    def _try(
        self,
        name: str,
        task: Mapping[str, Any],
        node_id: str,
        then: str,
        scopes: list[dict[str, str]],
        cluster: str | None,
        ref: str,
    ) -> None:
        tasks = _task_list(task.get("try"), name)
        self._edge(node_id, _entry(tasks, f"{node_id}_", then))
        body = self._cluster(f"{node_id}_try", f"{name}: try", cluster)
        self._list(tasks, f"{node_id}_", then, scopes, body, f"{ref}/try")

        catch = _mapping(task.get("catch"))
        handlers = _task_list(catch.get("do"), f"{name}.catch")
        catch_id = f"{node_id}_c"
        self._edge(node_id, catch_id, "error", dashed=True)
        self._edge(catch_id, _entry(handlers, f"{node_id}_c", then))
        handler = self._cluster(f"{node_id}_catch", f"{name}: catch", cluster)
        self._node(
            catch_id, "catch", _catch_label(catch), "catch", "catch", handler, f"{ref}/catch"
        )
        self._list(handlers, f"{node_id}_c", then, scopes, handler, f"{ref}/catch/do")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _entry(tasks: Sequence[object], prefix: str, otherwise: str) -> str:
    """The node id of a task list's first task (ids are `<prefix><index>`)."""
    return f"{prefix}0" if tasks else otherwise


def _task_list(value: object, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A `[{name: task}, ...]` list as (name, task) pairs; a malformed entry raises."""
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{where}: expected a list of single-key mappings")
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ValueError(f"{where}[{index}]: expected a single-key mapping {{name: task}}")
        ((name, body),) = item.items()
        pairs.append((str(name), body if isinstance(body, Mapping) else {}))
    return pairs


def _kind_of(task: Mapping[str, Any]) -> str:
    # A drawing tolerates a task with several kinds (the first is drawn) or none.
    kinds = kinds_present(task)
    return kinds[0] if kinds else "task"


def _kind_label(kind: str, task: Mapping[str, Any]) -> str:
    if kind == "call":
        return f"call: {task.get('call')}"
    if kind == "run" and isinstance(task.get("run"), Mapping):
        what = [key for key in ("container", "script", "shell", "workflow") if key in task["run"]]
        return f"run: {what[0]}" if what else "run"
    if kind == "listen":
        to = task.get("listen", {}).get("to") if isinstance(task.get("listen"), Mapping) else None
        if isinstance(to, Mapping):
            for mode in ("one", "any", "all"):
                if mode in to:
                    return f"listen: {mode}"
    if kind == "fork" and isinstance(task.get("fork"), Mapping) and task["fork"].get("compete"):
        return "fork: compete"
    return kind


def _catch_label(catch: Mapping[str, Any]) -> str:
    errors = catch.get("errors")
    with_ = errors.get("with") if isinstance(errors, Mapping) else None
    error_type = with_.get("type") if isinstance(with_, Mapping) else None
    if isinstance(error_type, str) and error_type:
        # The standard types end in a readable word (`.../errors/timeout`).
        return error_type.rstrip("/").rsplit("/", 1)[-1]
    return "any error"


def _resolve(
    directive: object, after: str, exit_to: str, scopes: list[dict[str, str]], task: str
) -> str:
    if directive is None or directive == "continue":
        return after
    if directive == "exit":
        return exit_to
    if directive == "end":
        return STOP
    if isinstance(directive, str):
        # The spec resolves names in the task's own list; enclosing lists are a fallback
        # so a drawing of a slightly-off document still shows the intent.
        for scope in scopes:
            if directive in scope:
                return scope[directive]
    raise ValueError(f"task {task!r}: 'then' target {directive!r} is not a task in scope")


def _strip_expression(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("${") and stripped.endswith("}"):
        return stripped[2:-1].strip()
    return stripped


# ---------------------------------------------------------------------------- data


def to_data(document: dict[str, Any]) -> dict[str, Any]:
    """The graph as JSON-ready data: nodes (with the task reference the task log uses and
    the cluster they sit in), edges and clusters (nested `do`, `for`, `fork`, `try` and
    `catch` bodies, with their parent). A layout library places them; nothing here does."""
    graph = _Builder().build(document)
    parents: dict[str, str] = {}
    for cluster in graph.clusters.values():
        for item in cluster.items:
            parents[item] = cluster.id
    return {
        "title": graph.title,
        "nodes": [
            {
                "id": node.id,
                "name": node.name,
                "kind": node.kind,
                "shape": node.shape,
                "category": node.category,
                "reference": node.reference,
                "parent": parents.get(node.id),
            }
            for node in graph.nodes.values()
        ],
        "edges": [
            {"source": e.src, "target": e.dst, "label": e.label, "dashed": e.dashed}
            for e in graph.edges
        ],
        "clusters": [
            {"id": c.id, "label": c.label, "parent": parents.get(c.id)}
            for c in graph.clusters.values()
        ],
    }


# ---------------------------------------------------------------------------- Mermaid


def to_mermaid(document: dict[str, Any]) -> str:
    """A Mermaid `flowchart TD` of an SW 1.0 document, ending with a newline."""
    graph = _Builder().build(document)
    lines = ["flowchart TD"]

    def emit(item: str, depth: int) -> None:
        pad = "    " * depth
        if item in graph.clusters:
            cluster = graph.clusters[item]
            lines.append(f'{pad}subgraph {cluster.id}["{_mermaid_text(cluster.label)}"]')
            for inner in cluster.items:
                emit(inner, depth + 1)
            lines.append(f"{pad}end")
            return
        lines.append(pad + _mermaid_node(graph.nodes[item]))

    for item in graph.top:
        emit(item, 1)
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.src} {arrow}{label} {edge.dst}")
    return "\n".join(lines) + "\n"


def _mermaid_node(node: _Node) -> str:
    text = _mermaid_text(node.name)
    if node.kind:
        text += "<br/>" + _mermaid_text(node.kind)
    opening, closing = {
        "terminal": ("([", "])"),
        "switch": ("{", "}"),
        "catch": ("(", ")"),
    }.get(node.shape, ("[", "]"))
    return f'{node.id}{opening}"{text}"{closing}'


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes keep quotes, pipes and angle brackets from ending a label or
    # being read as HTML.
    replacements = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;"}
    return "".join(replacements.get(char, char) for char in text)


# ---------------------------------------------------------------------------- SVG
#
# A compact Sugiyama-style layout: rank nodes by longest path from Start (edges that
# close a loop are set aside), split edges that span several ranks with virtual points so
# they can bend around boxes, order each rank by the mean position of its neighbours,
# then pull every node towards its neighbours while keeping the order and the spacing.

_FONT: Final = 12
_CHAR_W: Final = 7.2  # average advance of a 12px monospace glyph
_LABEL_CHAR_W: Final = 6.6  # 11px labels
_LABEL_MAX: Final = 32
_PAD_X: Final = 12
_BOX_H: Final = 40
_TERMINAL_H: Final = 28
_MIN_W: Final = 72
_VIRTUAL_W: Final = 10.0
_GAP_X: Final = 28
_GAP_Y: Final = 64
_MARGIN: Final = 24
_SELF_LOOP: Final = 32
_BACK_PORT: Final = 12.0
_LABEL_T: Final = 0.8  # where on its first segment an edge label sits (0 = source)

_FILL: Final[Mapping[str, str]] = {
    "terminal": "#e8eaed",
    "call": "#e8f0fe",
    "switch": "#fef7e0",
    "listen": "#e6f4ea",
    "wait": "#e6f4ea",
    "try": "#fce8e6",
    "catch": "#fce8e6",
    "raise": "#fce8e6",
    "fork": "#f3e8fd",
    "for": "#f3e8fd",
    "do": "#f1f3f4",
}


@dataclass
class _Layout:
    rank: dict[str, int]  # real and virtual slots
    layers: list[list[str]]
    width: dict[str, float]  # room a slot takes in its layer (box plus reserved label room)
    box: dict[str, tuple[float, float]]  # drawn (width, height) of real nodes
    x: dict[str, float] = field(default_factory=dict)  # centre
    layer_top: list[float] = field(default_factory=list)
    layer_height: list[float] = field(default_factory=list)
    chains: dict[int, list[str]] = field(default_factory=dict)  # edge index -> slots, top down
    back: set[int] = field(default_factory=set)  # edges drawn upwards (they close a loop)

    def height(self, slot: str) -> float:
        return self.box[slot][1] if slot in self.box else 0.0

    def top(self, slot: str) -> float:
        layer = self.rank[slot]
        return self.layer_top[layer] + (self.layer_height[layer] - self.height(slot)) / 2

    def bottom(self, slot: str) -> float:
        return self.top(slot) + self.height(slot)


_Segment = tuple[tuple[float, float], ...]  # 2 points: a line; 4 points: a cubic curve


def to_svg(document: dict[str, Any]) -> str:
    """A standalone SVG picture of an SW 1.0 document: tasks ranked top-down from Start,
    boxes with the task name and kind, labelled arrows; edges that close a loop run
    upwards, bending around boxes like the others."""
    graph = _Builder().build(document)
    layout = _layout(graph)

    right = max(layout.x[s] + layout.width[s] / 2 for s in layout.rank)
    width = right + _MARGIN + (_SELF_LOOP if any(e.src == e.dst for e in graph.edges) else 0)
    height = layout.layer_top[-1] + layout.layer_height[-1] + _MARGIN
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="monospace" font-size="{_FONT}">',
        f"<title>{escape(graph.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#5f6368"/></marker></defs>',
        f'<rect width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>',
    ]
    labels: list[str] = []
    for index, edge in enumerate(graph.edges):
        if edge.src == edge.dst:
            segments, anchor = _self_loop(layout, edge.src)
        else:
            segments, anchor = _chain_segments(layout, layout.chains[index], index in layout.back)
        dash = ' stroke-dasharray="5 4"' if edge.dashed else ""
        out.append(
            f'<path d="{_path_data(segments)}" fill="none" stroke="#5f6368" stroke-width="1.3"'
            f'{dash} marker-end="url(#arrow)"/>'
        )
        if edge.label:
            x, y = anchor
            if index in layout.back:
                # Beside the upward line, not on it: a downward edge often runs next to it.
                x += _label_width(edge.label) / 2 + 4
            labels.append(_svg_label(edge.label, x, y))
    for node_id in graph.nodes:
        out.append(_svg_node(graph.nodes[node_id], layout))
    # Labels go last so no box or arrow covers them.
    out.extend(labels)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _layout(graph: _Graph) -> _Layout:
    order = list(graph.nodes)
    back = _back_edges(graph, order)
    rank = _ranks(graph, order, back)
    layout = _Layout(
        rank=dict(rank),
        layers=[[] for _ in range(max(rank.values()) + 1)],
        width={},
        box={},
        back=back,
    )
    for node_id in order:
        node = graph.nodes[node_id]
        layout.layers[rank[node_id]].append(node_id)
        longest = max(len(node.name), len(node.kind))
        box_w = max(_MIN_W, longest * _CHAR_W + 2 * _PAD_X)
        layout.box[node_id] = (box_w, _TERMINAL_H if node.shape == "terminal" else _BOX_H)
        layout.width[node_id] = box_w

    for index, edge in enumerate(graph.edges):
        if edge.src == edge.dst:
            continue
        upper, lower = (edge.dst, edge.src) if index in back else (edge.src, edge.dst)
        chain = [upper]
        for layer in range(rank[upper] + 1, rank[lower]):
            slot = f"~{index}.{layer}"
            layout.rank[slot] = layer
            layout.layers[layer].append(slot)
            layout.width[slot] = _VIRTUAL_W
            chain.append(slot)
        chain.append(lower)
        layout.chains[index] = chain
        if edge.label:
            # The label sits on the edge's first stretch, next to the slot that follows
            # its source; keep that slot wide enough for it.
            near = chain[-2] if index in back else chain[1]
            layout.width[near] = max(layout.width[near], _label_width(edge.label) + 8)

    uppers: dict[str, list[str]] = {slot: [] for slot in layout.rank}
    lowers: dict[str, list[str]] = {slot: [] for slot in layout.rank}
    for chain in layout.chains.values():
        for upper, lower in itertools.pairwise(chain):
            uppers[lower].append(upper)
            lowers[upper].append(lower)

    _order_layers(layout, uppers, lowers)
    _assign_x(layout, uppers, lowers)

    y = float(_MARGIN)
    for slots in layout.layers:
        tallest = max((layout.height(slot) for slot in slots), default=0.0)
        layout.layer_top.append(y)
        layout.layer_height.append(max(tallest, _TERMINAL_H))
        y += layout.layer_height[-1] + _GAP_Y
    return layout


def _back_edges(graph: _Graph, order: list[str]) -> set[int]:
    """Indices of edges that close a loop, found by depth-first walks in node order."""
    outgoing: dict[str, list[int]] = {node_id: [] for node_id in order}
    for index, edge in enumerate(graph.edges):
        outgoing[edge.src].append(index)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    back: set[int] = set()
    for root in order:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node_id, position = stack[-1]
            if position == len(outgoing[node_id]):
                stack.pop()
                state[node_id] = 2
                continue
            stack[-1] = (node_id, position + 1)
            index = outgoing[node_id][position]
            target = graph.edges[index].dst
            if state.get(target) == 1:
                back.add(index)
            elif target not in state:
                state[target] = 1
                stack.append((target, 0))
    return back


def _ranks(graph: _Graph, order: list[str], back: set[int]) -> dict[str, int]:
    """Longest-path layering over the forward edges (a DAG); End goes last."""
    incoming = {node_id: 0 for node_id in order}
    outgoing: dict[str, list[str]] = {node_id: [] for node_id in order}
    for index, edge in enumerate(graph.edges):
        if index not in back:
            incoming[edge.dst] += 1
            outgoing[edge.src].append(edge.dst)
    rank = {node_id: 0 for node_id in order}
    ready = [node_id for node_id in order if incoming[node_id] == 0]
    while ready:
        node_id = ready.pop(0)
        for target in outgoing[node_id]:
            rank[target] = max(rank[target], rank[node_id] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    rank[STOP] = max((rank[node_id] for node_id in order if node_id != STOP), default=0) + 1
    return rank


def _order_layers(
    layout: _Layout, uppers: dict[str, list[str]], lowers: dict[str, list[str]]
) -> None:
    """Barycentre sweeps (down, up, down); ties keep the current order."""
    layers = layout.layers
    sweeps = [
        (range(1, len(layers)), uppers, -1),
        (range(len(layers) - 2, -1, -1), lowers, 1),
        (range(1, len(layers)), uppers, -1),
    ]
    for layer_indices, neighbours, step in sweeps:
        for layer in layer_indices:
            fixed = {slot: i for i, slot in enumerate(layers[layer + step])}
            current = {slot: i for i, slot in enumerate(layers[layer])}

            def key(
                slot: str,
                fixed: dict[str, int] = fixed,
                current: dict[str, int] = current,
                neighbours: dict[str, list[str]] = neighbours,
            ) -> tuple[float, int]:
                seen = [fixed[n] for n in neighbours[slot] if n in fixed]
                centre = sum(seen) / len(seen) if seen else float(current[slot])
                return (centre, current[slot])

            layers[layer].sort(key=key)


def _assign_x(layout: _Layout, uppers: dict[str, list[str]], lowers: dict[str, list[str]]) -> None:
    x = layout.x
    for slots in layout.layers:
        position = 0.0
        for slot in slots:
            x[slot] = position + layout.width[slot] / 2
            position += layout.width[slot] + _GAP_X
    passes = [
        (range(1, len(layout.layers)), uppers),
        (range(len(layout.layers) - 2, -1, -1), lowers),
        (range(1, len(layout.layers)), uppers),
        (range(len(layout.layers) - 2, -1, -1), lowers),
    ]
    for layer_indices, neighbours in passes:
        for layer in layer_indices:
            _pull_layer(layout, layout.layers[layer], neighbours)
    shift = _MARGIN - min(x[slot] - layout.width[slot] / 2 for slot in layout.rank)
    for slot in x:
        x[slot] += shift


def _pull_layer(layout: _Layout, layer: list[str], neighbours: dict[str, list[str]]) -> None:
    """Move each slot towards the mean x of its neighbours in the adjacent layer, keeping
    the order and the spacing: the mean of a left-packed and a right-packed placement
    satisfies both constraints and centres the row on its wishes."""
    x = layout.x
    wish = [
        sum(x[n] for n in neighbours[slot]) / len(neighbours[slot]) if neighbours[slot] else x[slot]
        for slot in layer
    ]

    def gap(i: int) -> float:  # minimal centre distance between slots i-1 and i
        return (layout.width[layer[i - 1]] + layout.width[layer[i]]) / 2 + _GAP_X

    left = list(wish)
    for i in range(1, len(layer)):
        left[i] = max(left[i], left[i - 1] + gap(i))
    right = list(wish)
    for i in range(len(layer) - 2, -1, -1):
        right[i] = min(right[i], right[i + 1] - gap(i + 1))
    for i, slot in enumerate(layer):
        x[slot] = (left[i] + right[i]) / 2


def _chain_segments(
    layout: _Layout, chain: list[str], upwards: bool
) -> tuple[list[_Segment], tuple[float, float]]:
    """An edge through its virtual points, as segments in drawing order, and its label
    anchor: on the stretch leaving the source, near the next slot."""
    # Upward edges attach a little right of centre so they do not hide a downward edge
    # between the same two nodes.
    shift = _BACK_PORT if upwards else 0.0

    def port(slot: str) -> float:
        return layout.x[slot] + (0.0 if slot.startswith("~") else shift)

    segments: list[_Segment] = []
    current = (port(chain[0]), layout.bottom(chain[0]))
    for slot in chain[1:]:
        target = (port(slot), layout.top(slot))
        mid = (current[1] + target[1]) / 2
        segments.append((current, (current[0], mid), (target[0], mid), target))
        if slot.startswith("~"):
            # Virtual points have no height: pass straight through the layer.
            layer = layout.rank[slot]
            bottom = (target[0], layout.layer_top[layer] + layout.layer_height[layer])
            segments.append((target, bottom))
            current = bottom
        else:
            current = target
    if not upwards:
        first = segments[0]
        return segments, _bezier(first, _LABEL_T)
    last = segments[-1]
    reversed_segments = [tuple(reversed(segment)) for segment in reversed(segments)]
    return reversed_segments, _bezier(last, 1 - _LABEL_T)


def _self_loop(layout: _Layout, slot: str) -> tuple[list[_Segment], tuple[float, float]]:
    right = layout.x[slot] + layout.box[slot][0] / 2
    middle = layout.top(slot) + layout.height(slot) / 2
    loop = (
        (right, middle - 6),
        (right + _SELF_LOOP, middle - 22),
        (right + _SELF_LOOP, middle + 22),
        (right, middle + 6),
    )
    return [loop], (right + _SELF_LOOP * 0.75, middle)


def _path_data(segments: list[_Segment]) -> str:
    parts = [f"M {_n(segments[0][0][0])} {_n(segments[0][0][1])}"]
    for segment in segments:
        command = "C" if len(segment) == 4 else "L"
        parts.append(command + "".join(f" {_n(px)} {_n(py)}" for px, py in segment[1:]))
    return " ".join(parts)


def _bezier(segment: _Segment, t: float) -> tuple[float, float]:
    if len(segment) == 2:
        (x0, y0), (x1, y1) = segment
        return (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
    u = 1 - t
    weights = (u**3, 3 * u * u * t, 3 * u * t * t, t**3)
    return (
        sum(w * p[0] for w, p in zip(weights, segment, strict=True)),
        sum(w * p[1] for w, p in zip(weights, segment, strict=True)),
    )


def _label_text(text: str) -> str:
    return text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"


def _label_width(text: str) -> float:
    return len(_label_text(text)) * _LABEL_CHAR_W + 8


def _svg_label(text: str, x: float, y: float) -> str:
    shown = _label_text(text)
    w = _label_width(text)
    return (
        f'<g class="label"><title>{escape(text)}</title>'
        f'<rect x="{_n(x - w / 2)}" y="{_n(y - 8)}" width="{_n(w)}" height="16" rx="3" '
        'fill="#ffffff" fill-opacity="0.92"/>'
        f'<text x="{_n(x)}" y="{_n(y + 4)}" text-anchor="middle" font-size="{_FONT - 1}" '
        f'fill="#3c4043">{escape(shown)}</text></g>'
    )


def _svg_node(node: _Node, layout: _Layout) -> str:
    w, h = layout.box[node.id]
    left, top, cx = layout.x[node.id] - w / 2, layout.top(node.id), layout.x[node.id]
    fill = _FILL.get(node.category, "#ffffff")
    radius = h / 2 if node.shape == "terminal" else 6
    dash = ' stroke-dasharray="4 3"' if node.shape == "catch" else ""
    parts = [
        f"<g id={quoteattr('node-' + node.id)}>",
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{_n(w)}" height="{_n(h)}" '
        f'rx="{_n(radius)}" fill="{fill}" stroke="#5f6368"{dash}/>',
    ]
    if node.kind:
        parts.append(
            f'<text x="{_n(cx)}" y="{_n(top + 16)}" text-anchor="middle" '
            f'font-weight="bold" fill="#202124">{escape(node.name)}</text>'
        )
        parts.append(
            f'<text x="{_n(cx)}" y="{_n(top + 31)}" text-anchor="middle" '
            f'fill="#5f6368">{escape(node.kind)}</text>'
        )
    else:
        parts.append(
            f'<text x="{_n(cx)}" y="{_n(top + h / 2 + 4)}" text-anchor="middle" '
            f'fill="#202124">{escape(node.name)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _n(value: float) -> str:
    text = f"{value:.1f}"
    if text == "-0.0":
        text = "0.0"
    return text[:-2] if text.endswith(".0") else text
