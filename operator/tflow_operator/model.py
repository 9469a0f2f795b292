"""What the operator remembers about each WorkflowDefinition and EventRoute (the values of
its kopf indices), and the rules that decide whether a definition is valid.

Extracting an entry is cheap after the first time: the expensive parts (the engine's
validation of the document, jq compilation of a route's expressions, the YAML of the
published manifest) are computed once per ``(uid, generation)`` and cached.

Validity has three parts. The document part depends on the object alone (the engine's
validator, which also refuses a document-level ``schedule``, and not the router's task
queue). The Temporal namespace part depends on the operator's map of Kubernetes to
Temporal namespaces (`tflow_workers.temporal_namespaces`): ``spec.temporalNamespace``
must be one its namespace may use, else ``TemporalNamespaceNotAllowed``. The task-queue
part depends on the other definitions: a task queue belongs to one Kubernetes namespace
(the one holding its oldest valid definition), because every worker polling a queue must
serve the same definitions, images and functions; a definition in another namespace on
that queue is invalid with reason ``TaskQueueConflict``, and so is one that would run in
another Temporal namespace than the queue's oldest definition (its workers poll one).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, TypeVar

import yaml

from tflow_operator.api.common import API_VERSION
from tflow_workers.dsl.validate import validate_document
from tflow_workers.routing import check_route_expressions
from tflow_workers.temporal_namespaces import TemporalNamespaceError, TemporalNamespaces

REASON_INVALID_DOCUMENT: Final = "InvalidDocument"
REASON_TASK_QUEUE_CONFLICT: Final = "TaskQueueConflict"
REASON_RESERVED_TASK_QUEUE: Final = "ReservedTaskQueue"
REASON_TEMPORAL_NAMESPACE: Final = "TemporalNamespaceNotAllowed"
REASON_VALID: Final = "Validated"

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

K = TypeVar("K")
V = TypeVar("V")


class _Lru(OrderedDict[K, V]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (kopf hands out mapping views)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata") or {}
    return meta if isinstance(meta, Mapping) else {}


def stable_hash(value: Any, length: int = 64) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class DefinitionInfo:
    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    task_queue: str
    workers: dict[str, Any]
    has_schedule: bool
    issues: tuple[str, ...]
    version: str
    manifest: str = field(repr=False)
    deleting: bool = False
    # Kubernetes Secrets the document reads as `$secret.<name>` (its `use.secrets`).
    secrets: tuple[str, ...] = ()
    # spec.temporalNamespace ("" when unset: its namespace's home).
    temporal_namespace: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    # Oldest first; ties broken by namespace and name (deterministic). Kept, not computed
    # per read: a queue's members are sorted by it on every change of the queue, a
    # thousand times per change in a queue of a thousand definitions.
    order: tuple[str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", (self.created, self.namespace, self.name))

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "WorkflowDefinition",
            "name": self.name,
            "uid": self.uid,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class _DefinitionFacts:
    issues: tuple[str, ...]
    version: str
    manifest: str


_definition_cache: _Lru[tuple[str, int], _DefinitionFacts] = _Lru(20000)


def document_issues(workflow: Any) -> list[str]:
    """Every problem of a definition's document, each ``spec.workflow.<path>: message``."""
    issues = []
    for issue in validate_document(workflow if isinstance(workflow, dict) else {}):
        text = str(issue)
        issues.append(text if text.startswith("spec.") else f"spec.workflow.{text}")
    return issues


def definition_version(workflow: Any) -> str:
    """The document's version and a short hash of the whole document: ``1.0.0+3fa2b1c4``."""
    document = workflow.get("document") if isinstance(workflow, Mapping) else None
    version = str(document.get("version", "")) if isinstance(document, Mapping) else ""
    return f"{version or '0.0.0'}+{stable_hash(workflow, 8)}"


def published_manifest(namespace: str, name: str, generation: int, spec: Any) -> str:
    """The minimal WorkflowDefinition manifest workers and the router read (YAML)."""
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": spec,
    }
    text: str = yaml.dump(manifest, Dumper=_Dumper, sort_keys=True, default_flow_style=False)
    return text


def definition_info(body: Mapping[str, Any]) -> DefinitionInfo:
    meta = _meta(body)
    spec = body.get("spec") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    uid, generation = str(meta.get("uid", "")), int(meta.get("generation") or 0)

    def facts() -> _DefinitionFacts:
        plain_spec = plain(spec)
        workflow = plain_spec.get("workflow")
        return _DefinitionFacts(
            issues=tuple(document_issues(workflow)),
            version=definition_version(workflow),
            manifest=published_manifest(namespace, name, generation, plain_spec),
        )

    cached = _definition_cache.get_or_make((uid, generation), facts)
    workers = spec.get("workers") or {}
    return DefinitionInfo(
        namespace=namespace,
        name=name,
        uid=uid,
        generation=generation,
        created=str(meta.get("creationTimestamp", "")),
        task_queue=str(spec.get("taskQueue", "")),
        workers=plain(workers) if isinstance(workers, Mapping) else {},
        has_schedule=bool(spec.get("schedule")),
        issues=cached.issues,
        version=cached.version,
        manifest=cached.manifest,
        deleting=bool(meta.get("deletionTimestamp")),
        secrets=_secret_names(spec.get("workflow")),
        temporal_namespace=str(spec.get("temporalNamespace") or ""),
    )


def _secret_names(workflow: Any) -> tuple[str, ...]:
    use = workflow.get("use") if isinstance(workflow, Mapping) else None
    names = use.get("secrets") if isinstance(use, Mapping) else None
    if not isinstance(names, list | tuple):
        return ()
    return tuple(sorted({str(n) for n in names if isinstance(n, str) and n}))


@dataclass(frozen=True)
class DefinitionVerdict:
    valid: bool
    reason: str
    problems: tuple[str, ...] = ()
    # Where a valid definition's runs, workers and schedule live when the operator maps
    # namespaces; "" when it does not (all in the shared Temporal namespace).
    temporal_namespace: str = ""

    @property
    def message(self) -> str:
        if self.valid:
            return "the workflow document is valid"
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}: "
        return head + "; ".join(self.problems)


def temporal_namespace_of(
    info: DefinitionInfo, namespaces: TemporalNamespaces | None
) -> str | None:
    """Where the definition's runs live, or None when its namespace may not use the
    Temporal namespace it asks for."""
    try:
        return (namespaces or TemporalNamespaces()).resolve(
            info.namespace, info.temporal_namespace or None
        )
    except TemporalNamespaceError:
        return None


BY_AGE: Final = attrgetter("order")


def queue_head(
    same_queue: Iterable[DefinitionInfo], namespaces: TemporalNamespaces | None = None
) -> tuple[str | None, str | None]:
    """The namespace a task queue belongs to and the Temporal namespace its workers poll:
    those of its oldest live, valid document (None, None without one)."""
    oldest = _oldest(same_queue, namespaces)
    if oldest is None:
        return None, None
    return oldest.namespace, temporal_namespace_of(oldest, namespaces)


def _oldest(
    same_queue: Iterable[DefinitionInfo], namespaces: TemporalNamespaces | None
) -> DefinitionInfo | None:
    candidates = [
        d
        for d in same_queue
        if not d.deleting
        and not d.issues
        and (not d.temporal_namespace or temporal_namespace_of(d, namespaces) is not None)
    ]
    return min(candidates, key=BY_AGE) if candidates else None


def queue_facts(
    same_queue: Sequence[DefinitionInfo], namespaces: TemporalNamespaces | None
) -> tuple[str | None, str | None, tuple[DefinitionInfo, ...]]:
    """A task queue's owner namespace, its Temporal namespace and its members (the valid,
    live definitions of the owner namespace in that Temporal namespace, oldest first):
    ``queue_head`` and the definitions that follow it. Run on every change of a queue, so
    a burst into a queue of a thousand definitions runs it a thousand times over up to a
    thousand members."""
    owner, temporal = queue_head(same_queue, namespaces)
    if owner is None:
        return None, None, ()
    # Within the owner namespace, where a definition runs depends on its request alone.
    runs_in: dict[str, str | None] = {}
    members = []
    for d in same_queue:
        if d.namespace != owner or d.deleting or d.issues:
            continue
        requested = d.temporal_namespace
        if requested not in runs_in:
            runs_in[requested] = temporal_namespace_of(d, namespaces)
        if runs_in[requested] == temporal:
            members.append(d)
    members.sort(key=BY_AGE)
    return owner, temporal, tuple(members)


def judge(
    info: DefinitionInfo,
    same_queue: Iterable[DefinitionInfo],
    router_task_queue: str,
    namespaces: TemporalNamespaces | None = None,
) -> DefinitionVerdict:
    """Whether a definition is valid, given every definition on its task queue."""
    owner, temporal = queue_head([*same_queue, info], namespaces)
    return judge_with_owner(info, owner, router_task_queue, namespaces, temporal)


def judge_with_owner(
    info: DefinitionInfo,
    owner: str | None,
    router_task_queue: str,
    namespaces: TemporalNamespaces | None = None,
    queue_temporal: str | None = None,
) -> DefinitionVerdict:
    """``judge`` when the owner of the definition's task queue (and the Temporal
    namespace its workers poll) is already known."""
    if info.issues:
        return DefinitionVerdict(False, REASON_INVALID_DOCUMENT, info.issues)
    mapping = namespaces or TemporalNamespaces()
    try:
        temporal = mapping.resolve(info.namespace, info.temporal_namespace or None)
    except TemporalNamespaceError as err:
        return DefinitionVerdict(False, REASON_TEMPORAL_NAMESPACE, (str(err),))
    if info.task_queue == router_task_queue:
        return DefinitionVerdict(
            False,
            REASON_RESERVED_TASK_QUEUE,
            (
                f"spec.taskQueue: {info.task_queue!r} is the root orchestrator's task queue; "
                "choose another",
            ),
        )
    if owner is not None and owner != info.namespace:
        return DefinitionVerdict(
            False,
            REASON_TASK_QUEUE_CONFLICT,
            (
                f"spec.taskQueue: task queue {info.task_queue!r} is already served by "
                f"WorkflowDefinitions in namespace {owner!r}; a task queue belongs to one "
                "namespace, choose another name",
            ),
        )
    if queue_temporal is not None and temporal != queue_temporal:
        return DefinitionVerdict(
            False,
            REASON_TASK_QUEUE_CONFLICT,
            (
                f"spec.taskQueue: the workers of task queue {info.task_queue!r} poll Temporal "
                f"namespace {queue_temporal!r}, and this definition runs in {temporal!r}; "
                "definitions sharing a task queue share its Temporal namespace, choose "
                "another task queue",
            ),
        )
    if mapping.enabled:
        return DefinitionVerdict(True, REASON_VALID, temporal_namespace=temporal)
    return VALID


VALID: Final = DefinitionVerdict(True, REASON_VALID)


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class RouteInfo:
    namespace: str
    name: str
    uid: str
    generation: int
    workflow: str
    type: str | None
    source: str | None
    filter: str | None
    input: str | None
    priority: int
    enabled: bool
    problems: tuple[str, ...]
    status: dict[str, Any] = field(compare=False, repr=False)
    deleting: bool = False
    from_namespaces: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def reference(self) -> dict[str, str]:
        return {
            "apiVersion": API_VERSION,
            "kind": "EventRoute",
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


_route_cache: _Lru[tuple[str, int], tuple[str, ...]] = _Lru(20000)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def route_info(body: Mapping[str, Any]) -> RouteInfo:
    meta = _meta(body)
    spec = body.get("spec") or {}
    match = spec.get("match") or {}
    uid, generation = str(meta.get("uid", "")), int(meta.get("generation") or 0)
    filter_, mapping = _optional_str(match.get("filter")), _optional_str(spec.get("input"))
    problems = _route_cache.get_or_make(
        (uid, generation), lambda: tuple(check_route_expressions(filter_, mapping))
    )
    status = body.get("status") or {}
    return RouteInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=uid,
        generation=generation,
        workflow=str(spec.get("workflow", "")),
        type=_optional_str(match.get("type")),
        source=_optional_str(match.get("source")),
        filter=filter_,
        input=mapping,
        priority=int(spec.get("priority") or 0),
        enabled=spec.get("enabled", True) is not False,
        problems=problems,
        status=plain(status) if isinstance(status, Mapping) else {},
        deleting=bool(meta.get("deletionTimestamp")),
        from_namespaces=tuple(sorted({str(n) for n in spec.get("fromNamespaces") or ()})),
    )
