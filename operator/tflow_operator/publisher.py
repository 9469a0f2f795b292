"""The publisher: one background task that keeps the cluster-wide data in step with the
indices.

It writes the routing table ConfigMap ``tflow-routing`` and the cluster-wide published
definitions ``tflow-definitions[-N]`` in the system namespace, the per-namespace
published definitions ``tflow-namespace-definitions[-N]`` (mounted by that namespace's
workers), in each namespace with a Listener that routes its events itself (``spec.routing:
direct``) that namespace's part of the routing table ``tflow-namespace-routing[-N]``
(mounted by those Listeners), and every EventRoute's status.

Changes are debounced: a burst of applied objects (a thousand routes in one
``kubectl apply``) becomes a few recompiles, each waiting for a short quiet time but
never longer than a maximum delay, or than twice the last pass took (a pass over ten
thousand routes takes seconds: without that, a long burst would spend most of the
operator's CPU recompiling tables that the next event makes stale). A ConfigMap is
written only when its content hash differs from what is stored; a route status only
when it changed. Every resync period it also lists the metadata of its ConfigMaps, so a
deleted or hand-edited one (its hash annotation changed) is restored within one period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from tflow_operator import metrics
from tflow_operator.api.common import API_VERSION
from tflow_operator.conditions import make_condition, merge_conditions, status_changes
from tflow_operator.config import Config
from tflow_operator.configmaps import (
    MAX_NAMESPACE_ROUTING_SHARDS,
    MAX_ROUTING_SHARDS,
    PublishError,
    RouteVerdict,
    compile_routes,
    definition_files,
    definitions_configmaps,
    namespace_tables,
    routing_configmaps,
    stored_hash,
)
from tflow_operator.events import post_event
from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.model import DefinitionInfo, RouteInfo, stable_hash
from tflow_operator.naming import (
    COMPONENT,
    COMPONENT_DEFINITIONS,
    COMPONENT_ROUTING,
    CONTENT_HASH,
    DEFINITIONS_CONFIGMAP,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    NAMESPACE_DEFINITIONS_CONFIGMAP,
    NAMESPACE_ROUTING_CONFIGMAP,
    ROUTING_CONFIGMAP,
    ROUTING_HASH,
)
from tflow_operator.runtime import Background, KopfIndices
from tflow_operator.workers import MAX_NAMESPACE_SHARDS
from tflow_workers.routing import RoutingTable

log = logging.getLogger("tflow.operator.publisher")

MAX_SYSTEM_SHARDS: Final = 64
WRITE_CONCURRENCY: Final = 4
STATUS_CONCURRENCY: Final = 16
# A burst waits at most this many times the last pass's duration between passes.
PACE: Final = 2.0
MANAGED_SELECTOR: Final = (
    f"{MANAGED_BY}={MANAGED_BY_VALUE},{COMPONENT} in ({COMPONENT_DEFINITIONS},{COMPONENT_ROUTING})"
)

Key = tuple[str, str]


@dataclass
class PublishReport:
    """What one pass did (for logs and tests)."""

    routing_hash: str = ""
    routes: int = 0
    configmaps_written: int = 0
    configmaps_deleted: int = 0
    statuses_written: int = 0


REASON_TABLE_TOO_LARGE: Final = "RoutingTableTooLarge"


def _is_routing(name: str, base: str = ROUTING_CONFIGMAP) -> bool:
    return name == base or name.startswith(base + "-")


def _hash_annotation(name: str) -> str:
    # A table's first shard (tflow-routing, tflow-namespace-routing) carries the table's
    # hash; every other ConfigMap the hash of its own content.
    return ROUTING_HASH if name.endswith("routing") else CONTENT_HASH


class Publisher:
    def __init__(self, config: Config, kube: KubeClient, indices: KopfIndices) -> None:
        self.config = config
        self.kube = kube
        self.indices = indices
        self._dirty = asyncio.Event()
        self._indexed = asyncio.Event()
        self._routes_listed = asyncio.Event()
        self._known: dict[Key, str] = {}  # (namespace, name) -> stored content hash
        self._listed = False
        self._fingerprints: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._background = Background("tflow-publisher")
        # Route statuses written but maybe not yet seen back through the watch.
        self._written: dict[Key, _Written] = {}
        self.passes = 0
        self.last_pass_seconds = 0.0
        self.routing_hash = ""
        self.max_routing_shards = MAX_ROUTING_SHARDS
        self.max_namespace_routing_shards = MAX_NAMESPACE_ROUTING_SHARDS

    # ----------------------------------------------------------------- triggers

    def mark_indexed(self) -> None:
        """A resource handler ran, so kopf has populated every index."""
        self._indexed.set()

    def poke(self) -> None:
        self._dirty.set()

    def observe(self, kind: str, body_key: tuple[str, str], fingerprint: tuple[Any, ...]) -> None:
        """A kopf event of a definition or Listener: recompile only when what the
        publisher reads changed (not on a status or annotation update)."""
        self.mark_indexed()
        self._note(kind, body_key, fingerprint)

    def forget(self, kind: str, body_key: tuple[str, str]) -> None:
        self.mark_indexed()
        self._drop(kind, body_key)

    def observe_route(self, key: Key, fingerprint: tuple[Any, ...]) -> None:
        """A route seen by the route watch (which says nothing of kopf's indices)."""
        self._note("er", key, fingerprint)

    def forget_route(self, key: Key) -> None:
        self._drop("er", key)

    def routes_listed(self) -> None:
        """The route watch holds every route."""
        self._routes_listed.set()

    def _note(self, kind: str, body_key: tuple[str, str], fingerprint: tuple[Any, ...]) -> None:
        key = (kind, *body_key)
        if self._fingerprints.get(key) != fingerprint:
            self._fingerprints[key] = fingerprint
            self.poke()

    def _drop(self, kind: str, body_key: tuple[str, str]) -> None:
        self._fingerprints.pop((kind, *body_key), None)
        self.poke()

    # ----------------------------------------------------------------- loop

    def start(self) -> None:
        self._background.start(self.run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _wait_until_indexed(self) -> None:
        """Publishing from half-filled indices would write a partial table (and tell
        routes their definitions are missing): wait until the route watch has listed
        every route, and until a definition or Listener handler ran (kopf calls none
        before every index is filled) unless there are no definitions (then none may
        ever run, and every route is judged without one anyway)."""
        await self._routes_listed.wait()
        while not self._indexed.is_set():
            try:
                if not await self.kube.list_metadata(API_VERSION, "WorkflowDefinition"):
                    self._indexed.set()
                    break
            except KubeError as err:
                log.warning("cannot list the WorkflowDefinitions yet: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._indexed.wait(), 2.0)

    async def run(self) -> None:
        await self._wait_until_indexed()
        next_resync = 0.0
        failures = 0
        while True:
            wait = max(0.0, next_resync - time.monotonic())
            try:
                await asyncio.wait_for(self._dirty.wait(), wait)
                await self._debounce()
            except TimeoutError:
                pass
            full = time.monotonic() >= next_resync
            started = time.perf_counter()
            try:
                await self.publish(full=full)
                self.last_pass_seconds = time.perf_counter() - started
                metrics.PUBLISHES.labels("ok").inc()
                metrics.PUBLISH_SECONDS.observe(self.last_pass_seconds)
                failures = 0
                if full:
                    next_resync = time.monotonic() + self.config.resync_seconds
            except asyncio.CancelledError:
                raise
            except Exception as err:
                metrics.PUBLISHES.labels("error").inc()
                metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.warning(
                    "publishing failed (retry in %.1fs): %s",
                    delay,
                    err,
                    exc_info=not isinstance(err, KubeError),
                )
                self._listed = False
                await asyncio.sleep(delay)
                self._dirty.set()

    async def _debounce(self) -> None:
        first = time.monotonic()
        longest = max(self.config.routing_max_delay_seconds, PACE * self.last_pass_seconds)
        while True:
            self._dirty.clear()
            remaining = longest - (time.monotonic() - first)
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(
                    self._dirty.wait(), min(self.config.routing_debounce_seconds, remaining)
                )
            except TimeoutError:
                return

    # ----------------------------------------------------------------- one pass

    async def publish(self, full: bool = False) -> PublishReport:
        """Compute everything from the indices and write what differs."""
        self.passes += 1
        report = PublishReport()
        if full or not self._listed:
            await self._list_stored()
            horizon = time.monotonic() - self.config.resync_seconds
            self._written = {k: v for k, v in self._written.items() if v.at > horizon}
        snapshot = self.indices.snapshot()
        valid = snapshot.valid()
        routes = self.indices.all_routes()
        table, verdicts = compile_routes(routes, snapshot.lookup, self.indices.sharing())
        report.routes = len(table.routes)
        report.routing_hash = table.content_hash()

        try:
            table_cms = routing_configmaps(
                table, self.config.system_namespace, self.max_routing_shards
            )
        except PublishError as err:
            # Too large to store: the stored table stays in force (its ConfigMaps are
            # neither written nor deleted), definitions are still published, and routes
            # say they are not in it.
            in_force = self._known.get((self.config.system_namespace, ROUTING_CONFIGMAP), "")
            log.error("routing table not published, %s stays: %s", in_force[:12], err)
            table_cms = []
            report.routing_hash = in_force
            message = f"{err}; the routing table in force is {in_force[:12] or 'none'}"
            verdicts = {
                key: RouteVerdict(False, REASON_TABLE_TOO_LARGE, message) if v.ready else v
                for key, v in verdicts.items()
            }
        if table_cms:
            metrics.ROUTING_TABLE_ROUTES.set(len(table.routes))
            metrics.ROUTING_TABLE_BYTES.set(metrics.configmaps_bytes(table_cms))
        metrics.set_not_ready("EventRoute", sum(1 for v in verdicts.values() if not v.ready))
        namespace_cms, kept = self._namespace_routing(table)
        desired = self._desired_configmaps(valid, [*table_cms, *namespace_cms])
        writes = [cm for cm in desired if self._known.get(_key(cm)) != _desired_hash(cm)]
        desired_keys = {_key(cm) for cm in desired}
        if not table_cms:
            kept |= {k for k in self._known if _is_routing(k[1])}
        stale = [key for key in self._known if key not in desired_keys and key not in kept]
        # A routing table's first ConfigMap holds the index naming the other shards'
        # files: written after them, so it never names a file that is not stored yet.
        indexes = {
            _key(cm)
            for cm in [*table_cms, *namespace_cms]
            if cm["metadata"]["name"] in (ROUTING_CONFIGMAP, NAMESPACE_ROUTING_CONFIGMAP)
        }
        await _bounded(
            WRITE_CONCURRENCY, [self._write(cm) for cm in writes if _key(cm) not in indexes]
        )
        await _bounded(WRITE_CONCURRENCY, [self._write(cm) for cm in writes if _key(cm) in indexes])
        await _bounded(WRITE_CONCURRENCY, [self._delete(key) for key in stale])
        report.configmaps_written, report.configmaps_deleted = len(writes), len(stale)
        if writes or stale:
            log.info(
                "published: %d routes (hash %s), %d definitions; %d ConfigMaps written, %d deleted",
                len(table.routes),
                report.routing_hash[:12],
                len(valid),
                len(writes),
                len(stale),
            )
        self.routing_hash = report.routing_hash
        report.statuses_written = await self._route_statuses(routes, verdicts, report.routing_hash)
        return report

    def _namespace_routing(self, table: RoutingTable) -> tuple[list[dict[str, Any]], set[Key]]:
        """The ConfigMaps of each direct-routing namespace's part of the table, and the
        stored ones to keep where a part is too large: as with the cluster's table, the
        stored part stays in force rather than none. Route statuses do not depend on it
        (the cluster's table is what they report)."""
        configmaps: list[dict[str, Any]] = []
        kept: set[Key] = set()
        parts = namespace_tables(table, self.indices.direct_routing_namespaces())
        for namespace, part in sorted(parts.items()):
            try:
                configmaps.extend(
                    routing_configmaps(
                        part,
                        namespace,
                        self.max_namespace_routing_shards,
                        base=NAMESPACE_ROUTING_CONFIGMAP,
                        scope="namespace",
                    )
                )
            except PublishError as err:
                stored = {
                    k
                    for k in self._known
                    if k[0] == namespace and _is_routing(k[1], NAMESPACE_ROUTING_CONFIGMAP)
                }
                in_force = self._known.get((namespace, NAMESPACE_ROUTING_CONFIGMAP), "")
                log.error(
                    "routing table of namespace %s not published, %s stays: %s",
                    namespace,
                    in_force[:12] or "none",
                    err,
                )
                kept |= stored
        return configmaps, kept

    def _desired_configmaps(
        self, valid: Iterable[DefinitionInfo], routing_cms: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        valid = list(valid)
        desired = list(routing_cms)
        desired.extend(
            self._shards(
                DEFINITIONS_CONFIGMAP,
                self.config.system_namespace,
                "cluster",
                valid,
                MAX_SYSTEM_SHARDS,
            )
        )
        by_namespace: dict[str, list[DefinitionInfo]] = {}
        for definition in valid:
            by_namespace.setdefault(definition.namespace, []).append(definition)
        for namespace, members in sorted(by_namespace.items()):
            desired.extend(
                self._shards(
                    NAMESPACE_DEFINITIONS_CONFIGMAP,
                    namespace,
                    "namespace",
                    members,
                    MAX_NAMESPACE_SHARDS,
                )
            )
        return desired

    def _shards(
        self,
        base: str,
        namespace: str,
        scope: str,
        definitions: list[DefinitionInfo],
        max_shards: int,
    ) -> list[dict[str, Any]]:
        files = definition_files(definitions)
        try:
            return definitions_configmaps(base, namespace, scope, files, max_shards)
        except PublishError as err:
            # Publish what fits rather than nothing: drop the largest until it does.
            log.error("cannot publish every definition of %s: %s", namespace, err)
            for key in sorted(files, key=lambda k: len(files[k]), reverse=True):
                files.pop(key)
                try:
                    return definitions_configmaps(base, namespace, scope, files, max_shards)
                except PublishError:
                    continue
            return definitions_configmaps(base, namespace, scope, {}, max_shards)

    async def _list_stored(self) -> None:
        items = await self.kube.list_metadata("v1", "ConfigMap", None, MANAGED_SELECTOR)
        known: dict[Key, str] = {}
        for item in items:
            meta = item.get("metadata") or {}
            name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
            if meta.get("deletionTimestamp"):
                continue
            known[(namespace, name)] = stored_hash(item, _hash_annotation(name)) or ""
        self._known = known
        self._listed = True

    async def _write(self, cm: dict[str, Any]) -> None:
        key = _key(cm)
        try:
            # Replaced, not applied: these are the largest objects the operator writes,
            # it alone writes them, and a replace costs the apiserver less than half an apply.
            await self.kube.replace(cm)
        except KubeError as err:
            if err.status == 404:  # the namespace is gone (or not there yet)
                log.warning("cannot write ConfigMap %s/%s: %s", key[0], key[1], err)
                self._known.pop(key, None)
                return
            raise
        self._known[key] = _desired_hash(cm)

    async def _delete(self, key: Key) -> None:
        await self.kube.delete("v1", "ConfigMap", key[0], key[1])
        self._known.pop(key, None)

    # ----------------------------------------------------------------- route statuses

    async def _route_statuses(
        self,
        routes: list[RouteInfo],
        verdicts: dict[Key, RouteVerdict],
        table_hash: str,
    ) -> int:
        jobs: list[tuple[Key, Callable[[], Awaitable[bool]]]] = []
        for route in routes:
            verdict = verdicts.get(route.key)
            if verdict is None or route.deleting:
                continue
            if _status_in_step(route, verdict):
                self._written.pop(route.key, None)
                continue
            last = self._written.get(route.key)
            if last is not None and last.uid == route.uid:
                # The watch has not brought the last write back yet (in a burst it can
                # lag the apiserver by several passes): judge what was written, or
                # every pass with a new table hash would rewrite every such route.
                route = replace(route, status=last.status)
                if _status_in_step(route, verdict):
                    continue
            desired = route_status(route, verdict, table_hash)
            changes = status_changes(route.status, desired)
            if not changes:
                continue
            digest = _status_digest(changes)
            if last is not None and last.digest == digest:
                continue  # written already; the watch has not brought it back yet
            jobs.append((route.key, self._status_job(route, verdict, changes, digest)))
        if not jobs:
            return 0
        written: list[Key] = []
        pending = iter(jobs)

        async def worker() -> None:
            # A few workers draining one list, not a task per route: ten thousand
            # waiting tasks (with their contexts and closures) made the operator's
            # peak memory.
            for key, job in pending:
                # A newer change is pending: its pass writes newer statuses.
                if self._dirty.is_set():
                    return
                if await job():
                    written.append(key)

        await asyncio.gather(*(worker() for _ in range(STATUS_CONCURRENCY)))
        if written:
            # Which routes, so an unexpected write (a restart should make none) can be
            # traced; a few names are enough when thousands change at once.
            names = [f"{namespace}/{name}" for namespace, name in written[:5]]
            more = f" and {len(written) - len(names)} more" if len(written) > len(names) else ""
            log.info("route statuses written: %d (%s%s)", len(written), ", ".join(names), more)
        return len(written)

    def _status_job(
        self, route: RouteInfo, verdict: RouteVerdict, changes: dict[str, Any], digest: str
    ) -> Callable[[], Awaitable[bool]]:
        async def job() -> bool:
            try:
                await self.kube.patch_status(
                    API_VERSION, "EventRoute", route.namespace, route.name, changes
                )
            except KubeError as err:
                if err.status == 404:
                    return False
                raise
            self._written[route.key] = _Written(
                route.uid, digest, time.monotonic(), {**route.status, **changes}
            )
            previous = _ready_reason(route.status)
            if not verdict.ready and previous != verdict.reason:
                await post_event(
                    self.kube, route.reference(), "Warning", verdict.reason, verdict.message
                )
            return True

        return job


@dataclass(frozen=True)
class _Written:
    """A route status this publisher wrote: for the route with this uid, the digest of the
    change, when, and the whole status as it then stood."""

    uid: str
    digest: str
    at: float
    status: dict[str, Any]


def route_status(route: RouteInfo, verdict: RouteVerdict, table_hash: str) -> dict[str, Any]:
    """A route's status. ``routingTableHash`` names the table its current generation was
    first compiled into; it is kept while the route stays ready, because rewriting every
    route's status whenever any route changes would cost a write per route per change."""
    condition = make_condition(
        "Ready", verdict.ready, verdict.reason, verdict.message, route.generation
    )
    compiled_into = table_hash if verdict.ready else None
    previous = route.status.get("routingTableHash")
    if (
        verdict.ready
        and previous
        and route.status.get("observedGeneration") == route.generation
        and _ready_reason(route.status) == verdict.reason
    ):
        compiled_into = previous
    return {
        "conditions": merge_conditions(route.status.get("conditions"), [condition]),
        "observedGeneration": route.generation,
        "routingTableHash": compiled_into,
    }


_OWN_CONDITION_KEYS: Final = frozenset(
    ("type", "status", "reason", "message", "lastTransitionTime", "observedGeneration")
)


def _status_in_step(route: RouteInfo, verdict: RouteVerdict) -> bool:
    """Whether ``route_status`` would change nothing, decided without building it: the
    status holds only the Ready condition, as this operator writes it, saying what the
    verdict says for the current generation. Every pass asks this of every route, and
    building the status (two pydantic round trips) cost most of a pass at 10,000 routes.
    Anything else, or anything unusual, goes the long way."""
    status = route.status
    conditions = status.get("conditions")
    if not isinstance(conditions, list) or len(conditions) != 1:
        return False
    ready = conditions[0]
    if not isinstance(ready, dict) or ready.keys() != _OWN_CONDITION_KEYS:
        return False
    expected = make_condition(
        "Ready", verdict.ready, verdict.reason, verdict.message, route.generation
    )
    table_hash = status.get("routingTableHash")
    return (
        ready["type"] == "Ready"
        and ready["status"] == expected.status.value
        and ready["reason"] == expected.reason
        and ready["message"] == expected.message
        and ready["observedGeneration"] == route.generation
        and isinstance(ready["lastTransitionTime"], str)
        and status.get("observedGeneration") == route.generation
        and (bool(table_hash) if verdict.ready else table_hash is None)
    )


def _status_digest(changes: dict[str, Any]) -> str:
    """A digest of a status change that ignores when a condition was computed."""
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in changes.get("conditions") or []
    ]
    return stable_hash({**changes, "conditions": conditions})


def _ready_reason(status: dict[str, Any]) -> str | None:
    for item in status.get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == "Ready":
            return str(item.get("reason"))
    return None


def _key(cm: dict[str, Any]) -> Key:
    return (cm["metadata"]["namespace"], cm["metadata"]["name"])


def _desired_hash(cm: dict[str, Any]) -> str:
    name = cm["metadata"]["name"]
    return stored_hash(cm, _hash_annotation(name)) or ""


async def _bounded(limit: int, coros: list[Awaitable[None]]) -> None:
    pending = iter(coros)

    async def worker() -> None:
        for coro in pending:
            await coro

    await asyncio.gather(*(worker() for _ in range(limit)))
