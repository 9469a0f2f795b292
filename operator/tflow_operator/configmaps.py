"""The data the operator publishes as ConfigMaps, computed from its indices: the routing
table (from every ready EventRoute), each namespace's part of it that a Listener there
routes with itself, and the published WorkflowDefinitions.

Everything here is pure and deterministic: the same routes and definitions give the same
bytes, hashes and shard layout, so a recompile that changes nothing writes nothing.

Published definitions are one key per definition, ``<namespace>.<name>.yaml``, holding a
minimal WorkflowDefinition manifest. A ConfigMap holds about 1 MiB, so the keys are
spread over shards ``<base>``, ``<base>-1``, ... by a hash of the key: the number of
shards is the smallest power of two that keeps each under the limit, and adding a
definition rewrites only the shard its key falls in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tflow_operator.model import DefinitionInfo, DefinitionVerdict, RouteInfo
from tflow_operator.naming import (
    COMPONENT_DEFINITIONS,
    COMPONENT_ROUTING,
    CONTENT_HASH,
    ROUTING_CONFIGMAP,
    ROUTING_HASH,
    SCOPE_LABEL,
    SHARDS,
    common_labels,
    definition_key,
    shard_name,
)
from tflow_workers.routing import (
    ROUTING_INDEX,
    CompiledRoute,
    RoutingTable,
    routing_index,
    split_for_configmap,
)

SHARD_LIMIT: Final = 900 * 1024

REASON_COMPILED: Final = "Compiled"
REASON_DISABLED: Final = "Disabled"
REASON_NOT_SHARED: Final = "NamespaceNotShared"
REASON_INVALID_EXPRESSION: Final = "InvalidExpression"
REASON_WORKFLOW_NOT_FOUND: Final = "WorkflowNotFound"
REASON_WORKFLOW_INVALID: Final = "WorkflowInvalid"


class PublishError(RuntimeError):
    """Published data that cannot be stored (too large even when sharded)."""


# --------------------------------------------------------------------------- shards


def _size(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


@functools.lru_cache(maxsize=65536)
def _key_hash(key: str) -> int:
    # Keys are stable and every publisher pass shards them again: hashed once each.
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def _bucket(key: str, count: int) -> int:
    return _key_hash(key) % count


def shard_files(
    files: Mapping[str, str], limit: int = SHARD_LIMIT, max_shards: int = 64
) -> list[dict[str, str]]:
    """``files`` spread over the fewest (a power of two) shards each under ``limit``."""
    sized = {key: _size(key, value) for key, value in files.items()}
    if any(size > limit for size in sized.values()):
        too_big = sorted(k for k, size in sized.items() if size > limit)
        raise PublishError(f"{', '.join(too_big)}: larger than a ConfigMap shard ({limit} bytes)")
    # Fewer shards than the total size needs cannot fit: start from there.
    total, count = sum(sized.values()), 1
    while count * limit < total and count <= max_shards:
        count *= 2
    keys = sorted(files)
    while count <= max_shards:
        shards: list[dict[str, str]] = [{} for _ in range(count)]
        sizes = [0] * count
        for key in keys:
            index = _bucket(key, count)
            shards[index][key] = files[key]
            sizes[index] += sized[key]
        if max(sizes) <= limit:
            return shards
        count *= 2
    raise PublishError(f"the definitions do not fit in {max_shards} ConfigMaps")


def content_hash(data: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode() + b"\0" + data[key].encode() + b"\0")
    return digest.hexdigest()


def definition_files(definitions: Iterable[DefinitionInfo]) -> dict[str, str]:
    return {definition_key(d.namespace, d.name): d.manifest for d in definitions}


def definitions_configmaps(
    base: str,
    namespace: str,
    scope: str,
    files: Mapping[str, str],
    max_shards: int,
    limit: int = SHARD_LIMIT,
) -> list[dict[str, Any]]:
    """The ConfigMaps publishing ``files``: shard 0 always (even empty), then the rest."""
    shards = shard_files(files, limit, max_shards)
    configmaps = []
    for index, data in enumerate(shards):
        annotations = {CONTENT_HASH: content_hash(data)}
        if index == 0:
            annotations[SHARDS] = str(len(shards))
        configmaps.append(
            configmap(
                shard_name(base, index),
                namespace,
                {**common_labels(COMPONENT_DEFINITIONS), SCOPE_LABEL: scope},
                annotations,
                data=data,
            )
        )
    return configmaps


def configmap(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    data: Mapping[str, str] | None = None,
    binary: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
    }
    if data:
        body["data"] = dict(data)
    if binary:
        body["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return body


def stored_hash(obj: Mapping[str, Any], annotation: str) -> str | None:
    meta = obj.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(annotation)
    return str(value) if value is not None else None


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class RouteVerdict:
    ready: bool
    reason: str
    message: str


DefinitionLookup = Callable[[str, str], tuple[DefinitionInfo, DefinitionVerdict] | None]
# Namespace -> the namespaces its Listeners share their events with.
Sharing = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class RouteTarget:
    """Where a compiled route's runs go: its definition's task queue and, when the
    operator maps namespaces, its Temporal namespace."""

    task_queue: str
    temporal_namespace: str | None = None


def judge_route(
    route: RouteInfo, lookup: DefinitionLookup, sharing: Sharing | None = None
) -> tuple[RouteVerdict, RouteTarget | None]:
    """Whether a route goes into the table, and where its target's runs go.

    A route whose cross-namespace opt-in is not answered by the other side is compiled
    all the same (its own namespace's events reach it; the router checks both sides of
    each event) but not Ready, with a reason naming the missing opt-in."""
    if route.problems:
        return RouteVerdict(False, REASON_INVALID_EXPRESSION, "; ".join(route.problems)), None
    target = lookup(route.namespace, route.workflow)
    if target is None:
        message = (
            f"WorkflowDefinition {route.workflow!r} does not exist in namespace "
            f"{route.namespace!r}; the route is compiled once it does"
        )
        return RouteVerdict(False, REASON_WORKFLOW_NOT_FOUND, message), None
    definition, verdict = target
    if not verdict.valid:
        message = f"WorkflowDefinition {route.workflow!r} is not valid: {verdict.message}"
        return RouteVerdict(False, REASON_WORKFLOW_INVALID, message), None
    if not route.enabled:
        return RouteVerdict(False, REASON_DISABLED, "spec.enabled is false"), None
    unshared = [
        ns for ns in route.from_namespaces if route.namespace not in (sharing or {}).get(ns, ())
    ]
    if unshared:
        message = (
            f"spec.fromNamespaces: {', '.join(unshared)} "
            f"{'does' if len(unshared) == 1 else 'do'} not share events with "
            f"{route.namespace}: no Listener there lists {route.namespace} in "
            "spec.shareEventsWith; until one does, only this namespace's events reach the route"
        )
        return RouteVerdict(False, REASON_NOT_SHARED, message), _target(definition, verdict)
    return RouteVerdict(True, REASON_COMPILED, "in the routing table"), _target(definition, verdict)


def _target(definition: DefinitionInfo, verdict: DefinitionVerdict) -> RouteTarget:
    return RouteTarget(definition.task_queue, verdict.temporal_namespace or None)


def compile_routes(
    routes: Iterable[RouteInfo], lookup: DefinitionLookup, sharing: Sharing | None = None
) -> tuple[RoutingTable, dict[tuple[str, str], RouteVerdict]]:
    """The routing table of every ready route, and every route's verdict."""
    compiled: list[CompiledRoute] = []
    verdicts: dict[tuple[str, str], RouteVerdict] = {}
    for route in routes:
        if route.deleting:
            continue
        verdict, target = judge_route(route, lookup, sharing)
        verdicts[route.key] = verdict
        if (verdict.ready or verdict.reason == REASON_NOT_SHARED) and target is not None:
            compiled.append(
                CompiledRoute(
                    namespace=route.namespace,
                    name=route.name,
                    priority=route.priority,
                    type=route.type,
                    source=route.source,
                    filter=route.filter,
                    input=route.input,
                    workflow=route.workflow,
                    task_queue=target.task_queue,
                    temporal_namespace=target.temporal_namespace,
                    from_namespaces=route.from_namespaces or None,
                )
            )
    return RoutingTable(routes=compiled), verdicts


def namespace_tables(table: RoutingTable, namespaces: Iterable[str]) -> dict[str, RoutingTable]:
    """Each namespace's part of the compiled table: its own routes (the same compiled
    routes, so the same verdicts), empty for a namespace without any."""
    parts: dict[str, list[CompiledRoute]] = {namespace: [] for namespace in namespaces}
    for route in table.routes:
        part = parts.get(route.namespace)
        if part is not None:
            part.append(route)
    return {namespace: RoutingTable(routes=routes) for namespace, routes in parts.items()}


# The chart projects this many routing ConfigMaps (each optional) into the root
# orchestrator's routes directory: with ~900 KiB of gzip per shard, about 14 MiB of
# compressed table. Raising it needs the chart's projected volume raised with it.
MAX_ROUTING_SHARDS: Final = 16
# A namespace's own table (for its Listeners with spec.routing direct): the Listener
# Deployment projects this many ConfigMaps, each optional, about 3.5 MiB of compressed
# table. Raising it changes every such Deployment's pod template (a rollout).
MAX_NAMESPACE_ROUTING_SHARDS: Final = 4


def routing_configmaps(
    table: RoutingTable,
    namespace: str,
    max_shards: int = MAX_ROUTING_SHARDS,
    *,
    base: str = ROUTING_CONFIGMAP,
    scope: str = "cluster",
) -> list[dict[str, Any]]:
    """The routing table as ConfigMaps ``<base>``, ``<base>-1``, ... (``tflow-routing``
    for the cluster's table): one file each (``.json`` in ``data``, ``.json.gz`` in
    ``binaryData``), because one ConfigMap holds about 1 MiB in all. The first also
    holds the index naming every file with its SHA-256 (a reader loads only a complete,
    matching set) and the table's hash in an annotation. Write the others first and the
    first last."""
    files = split_for_configmap(table)
    if len(files) > max_shards:
        raise PublishError(
            f"the routing table needs {len(files)} ConfigMaps, more than {max_shards}"
        )
    labels = {**common_labels(COMPONENT_ROUTING), SCOPE_LABEL: scope}
    configmaps = []
    for index, (name, body) in enumerate(sorted(files.items())):
        contents = {name: body}
        if index == 0:
            contents[ROUTING_INDEX] = routing_index(files, table)
            annotations = {ROUTING_HASH: table.content_hash(), SHARDS: str(len(files))}
        else:
            digest = hashlib.sha256(name.encode() + b"\0" + body).hexdigest()
            annotations = {CONTENT_HASH: digest}
        configmaps.append(
            configmap(
                shard_name(base, index),
                namespace,
                labels,
                annotations,
                data={k: v.decode() for k, v in contents.items() if not k.endswith(".gz")},
                binary={k: v for k, v in contents.items() if k.endswith(".gz")},
            )
        )
    return configmaps
