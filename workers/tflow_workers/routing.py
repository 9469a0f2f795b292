"""The routing table: EventRoutes compiled by the operator into data the RootOrchestrator
workers read, and the matching of a CloudEvent against it.

The table is cluster-wide: the operator compiles the EventRoutes of every namespace it
watches into one table. Each route belongs to a namespace and starts a WorkflowDefinition
of that namespace. An event carries the namespace it was received in (or emitted from),
and a route sees it only when the route is in that namespace, or when both sides opted in:
the route lists the event's namespace in `from_namespaces` and the event's side shares
with the route's namespace (`share_with`, from the Listener). An event without a namespace
(sent by hand through Temporal) is matched against every route.

Matching: a route matches when each of its `type`, `source` and jq `filter` that is set
matches. Every matching route starts its workflow, but an event starts at most one run of
any one WorkflowDefinition: when several routes to the same definition match (the seed
routes `incident` events both by type and by source `monitoring`), the one with the
highest priority wins, then the lowest route id. Runs start in priority order.

On disk (a mounted ConfigMap), the table is one or more files `routes*.json` or
`routes*.json.gz`, each a JSON object `{"routes": [...]}`; the loader merges them, so the
operator can compress and split a table that would pass the ConfigMap size limit. A
large table spreads its files over several ConfigMaps projected into one directory; the
index `routing-index.json` then names every file of the table with its SHA-256, and the
loader refuses a directory whose files do not match it (the kubelet refreshes the
ConfigMaps of a projection one by one, so for a moment it may hold shards of two tables).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tflow_workers.dsl.expressions import (
    CompiledExpression,
    ExpressionCompileError,
    ExpressionError,
    compile_expression,
    compile_expressions,
    strip_expression,
)
from tflow_workers.dsl.jqpaths import NotPlain
from tflow_workers.dsl.jqterms import Evaluator, term_program

TABLE_FORMAT = 1
ROUTING_INDEX = "routing-index.json"


class TableOutOfSync(ValueError):
    """The mounted files are not (yet) the table the index names."""


class CompiledRoute(BaseModel):
    """One EventRoute, ready to match: what the operator writes for the router."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    name: str
    priority: int = 0
    type: str | None = None
    source: str | None = None
    filter: str | None = None
    input: str | None = None
    # The target WorkflowDefinition and where its runs go.
    workflow: str
    task_queue: str
    # The Temporal namespace of the target's runs, set only when the operator maps
    # Kubernetes namespaces to Temporal namespaces (tables without it stay as before).
    temporal_namespace: str | None = None
    # Other namespaces whose events this route accepts (its side of the opt-in).
    # None rather than empty, so that tables without any stay byte for byte as before.
    from_namespaces: tuple[str, ...] | None = None

    def sees(self, namespace: str | None, share_with: frozenset[str]) -> bool:
        """Whether an event from `namespace`, shared with `share_with`, may reach this
        route: always within a namespace, across only with both sides' consent."""
        if namespace is None or namespace == self.namespace:
            return True
        return namespace in (self.from_namespaces or ()) and self.namespace in share_with

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def target(self) -> str:
        return f"{self.namespace}/{self.workflow}"


class RoutingTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = TABLE_FORMAT
    routes: list[CompiledRoute] = Field(default_factory=list)

    def canonical(self) -> list[CompiledRoute]:
        """Routes in a stable order, so the same routes always serialise the same."""
        return sorted(self.routes, key=lambda r: (r.namespace, r.name))

    def to_json(self) -> str:
        body = {
            "format": self.format,
            "routes": [r.model_dump(mode="json", exclude_none=True) for r in self.canonical()],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def routing_index(files: dict[str, bytes], table: RoutingTable) -> bytes:
    """The index of a table split into ``files``: each file's SHA-256 and the table's hash."""
    body = {
        "format": TABLE_FORMAT,
        "hash": table.content_hash(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def published_files(table: RoutingTable) -> dict[str, bytes]:
    """Every file of ``table`` as a mounted copy of the operator's ConfigMaps holds it: its
    shards (`split_for_configmap`) and their index, without which a reader that requires
    it takes the table as not there yet."""
    files = split_for_configmap(table)
    files[ROUTING_INDEX] = routing_index(files, table)
    return files


def _table_files(directory: Path) -> list[Path]:
    index = directory / ROUTING_INDEX
    if not index.exists():
        # A table in one ConfigMap (or written before the index): every file is its own.
        return sorted(directory.glob("routes*.json*"))
    wanted = json.loads(index.read_bytes())
    files: list[Path] = []
    for name, sha in sorted(wanted["files"].items()):
        path = directory / name
        if not path.exists():
            raise TableOutOfSync(f"{name} of table {wanted['hash'][:16]} is not there yet")
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise TableOutOfSync(f"{name} is not yet the one of table {wanted['hash'][:16]}")
        files.append(path)
    return files


def load_table(directory: Path) -> RoutingTable:
    """Merge the `routes*.json[.gz]` files of a directory (one or several mounted
    ConfigMaps); with an index, exactly the files it names, and only when they match it
    (``TableOutOfSync`` otherwise)."""
    routes: list[CompiledRoute] = []
    for path in _table_files(directory):
        if path.name.endswith(".json.gz"):
            text = gzip.decompress(path.read_bytes()).decode()
        elif path.name.endswith(".json"):
            text = path.read_text()
        else:
            continue
        routes.extend(RoutingTable.model_validate_json(text).routes)
    return RoutingTable(routes=routes)


def table_fingerprint(directory: Path) -> str:
    """Changes whenever the mounted table changes (Kubernetes swaps a `..data` symlink)."""
    digest = hashlib.sha256()
    for path in sorted([*directory.glob("routes*.json*"), *directory.glob(ROUTING_INDEX)]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class RouteError(ValueError):
    """A route whose filter or mapping failed on an event; names the route."""


@dataclass(frozen=True)
class Match:
    """A route that matched (`error` empty), or, from a tolerant match, one whose jq failed
    (`error` says how; `input` is None and the route started nothing)."""

    route: CompiledRoute
    input: Any
    error: str = ""


class _Deferred:
    """The jq program of an expression answered in Python (dsl.jqterms), compiled only
    when an event needs jq itself (odd data): those shapes always compile, and compiling
    thousands of them would be most of a table's load."""

    __slots__ = ("expression", "program")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.program: CompiledExpression | ExpressionCompileError | None = None

    def compiled(self) -> CompiledExpression | ExpressionCompileError:
        if self.program is None:
            try:
                self.program = compile_expression(self.expression)
            except ExpressionCompileError as error:
                self.program = error
        return self.program


# A route's filter or mapping: compiled, the error it did not compile with, or deferred.
_Program = CompiledExpression | ExpressionCompileError | _Deferred


class _Entry:
    """A route as matching reads it: what it compares, precomputed at load."""

    __slots__ = (
        "filter",
        "filter_plain",
        "from_namespaces",
        "id",
        "input",
        "input_plain",
        "namespace",
        "rank",
        "route",
        "source",
        "target",
    )

    def __init__(
        self,
        route: CompiledRoute,
        rank: int,
        programs: dict[str, _Program],
        plain: dict[str, Evaluator | None],
    ) -> None:
        self.route = route
        self.rank = rank
        self.id = route.id
        self.target = route.target
        self.namespace = route.namespace
        self.from_namespaces = route.from_namespaces or ()
        self.source = route.source
        self.filter = programs[route.filter] if route.filter is not None else None
        self.input = programs[route.input] if route.input else None
        # The same program answered in Python when it is that simple (dsl.jqterms).
        self.filter_plain = plain.get(route.filter) if route.filter is not None else None
        self.input_plain = plain.get(route.input) if route.input else None


@dataclass
class Router:
    """Matches events against a table; build once per table version.

    Routes are indexed by event type, and those without a type by source, so an event is
    compared only with the routes for its type and the type-less ones for its source (or
    for any). Every jq filter and mapping is compiled here, when the table loads, so the
    first event of a type costs no more than the next; `problems` names each route whose
    jq does not compile (matching an event then fails on that route as it always did).
    """

    table: RoutingTable
    by_type: dict[str, list[CompiledRoute]] = field(init=False, default_factory=dict)
    any_type: list[CompiledRoute] = field(init=False, default_factory=list)
    problems: list[str] = field(init=False, default_factory=list)
    _typed: dict[str, list[_Entry]] = field(init=False, default_factory=dict)
    _untyped_by_source: dict[str, list[_Entry]] = field(init=False, default_factory=dict)
    _untyped_any_source: list[_Entry] = field(init=False, default_factory=list)
    # Candidates of an event type and source when they come from more than one list,
    # merged in rank order on first use (bounded: the pairs seen may be many).
    _merged: dict[tuple[str, str | None], list[_Entry]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        routes = self.table.routes
        # Highest priority first, then route id; on a tie the typed route first, then
        # table order: the order in which a type's routes and the type-less ones merge.
        order = sorted(
            range(len(routes)),
            key=lambda i: (-routes[i].priority, routes[i].id, routes[i].type is None, i),
        )
        # As matching reads them: a filter whenever set, a mapping only when not empty.
        expressions = [r.filter for r in routes if r.filter is not None]
        expressions += [r.input for r in routes if r.input]
        plain = {
            expression: term_program(strip_expression(expression))
            for expression in dict.fromkeys(expressions)
        }
        programs: dict[str, _Program] = {
            expression: _Deferred(expression)
            for expression, answered in plain.items()
            if answered is not None
        }
        programs.update(compile_expressions(e for e, answered in plain.items() if answered is None))
        for rank, i in enumerate(order):
            route = routes[i]
            entry = _Entry(route, rank, programs, plain)
            for program in (entry.filter, entry.input):
                if isinstance(program, ExpressionCompileError):
                    self.problems.append(f"route {entry.id}: {program}")
            if route.type is None:
                self.any_type.append(route)
                if route.source is None:
                    self._untyped_any_source.append(entry)
                else:
                    self._untyped_by_source.setdefault(route.source, []).append(entry)
            else:
                self.by_type.setdefault(route.type, []).append(route)
                self._typed.setdefault(route.type, []).append(entry)

    def candidates(self, event_type: str | None) -> Iterable[CompiledRoute]:
        """The routes an event of this type is compared with, in priority order."""
        typed = self.by_type.get(event_type or "", [])
        if not self.any_type:
            return typed
        if not typed:
            return self.any_type
        return sorted(
            [*typed, *self.any_type],
            key=lambda r: (-r.priority, r.id, r.type is None),
        )

    def _candidates(self, event_type: str, source: str | None) -> list[_Entry]:
        lists = [
            found
            for found in (
                self._typed.get(event_type),
                self._untyped_by_source.get(source) if source is not None else None,
                self._untyped_any_source,
            )
            if found
        ]
        if len(lists) < 2:
            return lists[0] if lists else []
        key = (event_type, source)
        merged = self._merged.get(key)
        if merged is None:
            merged = sorted([e for found in lists for e in found], key=_rank)
            if len(self._merged) < _MERGED_LIMIT:
                self._merged[key] = merged
        return merged

    def match(
        self,
        event: dict[str, Any],
        tolerant: bool = False,
        namespace: str | None = None,
        share_with: Iterable[str] = (),
    ) -> list[Match]:
        """The runs an event starts, highest priority first; one per WorkflowDefinition.

        Only routes that may see an event from `namespace` are considered (see
        `CompiledRoute.sees`). A route whose filter or mapping fails raises RouteError;
        with `tolerant` it is returned instead, with its error, and does not claim its
        definition, so another route to the same definition may still start it."""
        found: list[Match] = []
        claimed: set[str] = set()
        shared = frozenset(share_with)
        source = event.get("source")
        # The event as JSON, made once for all the filters and mappings that run on it.
        serialised: _Serialised = _Serialised(event)
        for entry in self._candidates(event.get("type") or "", source):
            if entry.target in claimed:
                continue
            if (
                namespace is not None
                and namespace != entry.namespace
                and not (namespace in entry.from_namespaces and entry.namespace in shared)
            ):
                continue
            if entry.source is not None and entry.source != source:
                continue
            try:
                if entry.filter is not None and not _truthy(
                    _run(entry, entry.filter, entry.filter_plain, serialised)
                ):
                    continue
                mapped = (
                    _run(entry, entry.input, entry.input_plain, serialised)
                    if entry.input is not None
                    else event.get("data")
                )
            except RouteError as err:
                if not tolerant:
                    raise
                found.append(Match(entry.route, None, str(err)))
                continue
            claimed.add(entry.target)
            found.append(Match(entry.route, mapped))
        return found


_MERGED_LIMIT = 65536


def _rank(entry: _Entry) -> int:
    return entry.rank


class _Serialised:
    """An event and its JSON text, made on first use; None when it has none (a value
    JSON cannot hold: the program then reports it as it would have)."""

    __slots__ = ("event", "made", "text")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.made = False
        self.text: str | None = None

    def json(self) -> str | None:
        if not self.made:
            self.made = True
            try:
                self.text = json.dumps(self.event)
            except (TypeError, ValueError):
                self.text = None
        return self.text


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _run(entry: _Entry, program: _Program, plain: Evaluator | None, event: _Serialised) -> Any:
    if isinstance(program, ExpressionCompileError):
        raise RouteError(f"route {entry.id}: {program}")
    # Answered in Python only for an event jq could be given at all (JSON text), so an
    # event it refuses fails the same way either way.
    if plain is not None and event.json() is not None:
        try:
            return plain(event.event)
        except NotPlain:
            pass
    if isinstance(program, _Deferred):
        program = program.compiled()
        if isinstance(program, ExpressionCompileError):
            raise RouteError(f"route {entry.id}: {program}")
    try:
        text = event.json()
        return program.first(event.event) if text is None else program.first_json(text)
    except ExpressionError as err:
        raise RouteError(f"route {entry.id}: {err}") from None


def check_route_expressions(filter: str | None, mapping: str | None) -> list[str]:
    """Problems with a route's jq (compile errors), for the operator's validation."""
    problems = []
    for field_name, expression in (("spec.match.filter", filter), ("spec.input", mapping)):
        if expression is None:
            continue
        try:
            compile_expression(expression)
        except ExpressionError as err:
            problems.append(f"{field_name}: {err.message}")
    return problems


def split_for_configmap(table: RoutingTable, limit_bytes: int = 900 * 1024) -> dict[str, bytes]:
    """The ConfigMap files for a table: `routes.json` when it fits, else gzip-compressed
    shards `routes-NNN.json.gz` each under the limit (ConfigMaps hold about 1 MiB)."""
    plain = table.to_json().encode()
    if len(plain) <= limit_bytes:
        return {"routes.json": plain}
    whole = gzip.compress(plain, mtime=0)
    if len(whole) <= limit_bytes:
        return {"routes.json.gz": whole}
    routes = table.canonical()
    shards: list[Sequence[CompiledRoute]] = []
    count = max(2, len(whole) // limit_bytes + 1)
    while True:
        size = -(-len(routes) // count)
        shards = [routes[i : i + size] for i in range(0, len(routes), size)]
        files = {
            f"routes-{i:03d}.json.gz": gzip.compress(
                RoutingTable(routes=list(shard)).to_json().encode(), mtime=0
            )
            for i, shard in enumerate(shards)
        }
        if all(len(b) <= limit_bytes for b in files.values()):
            return files
        count *= 2
