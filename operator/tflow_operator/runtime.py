"""The operator's process-wide state, created by the startup handler and kept in kopf's
memo: settings, the Kubernetes and Temporal clients, the publisher, and the locks that
serialise writes to a shared worker Deployment.

What a task queue's definitions decide together (its owner namespace, its Temporal
namespace, its valid members) is computed once per change of the queue's index entries,
not per definition: with a thousand definitions on a queue, recomputing it at each of
their reconciles made a burst quadratic."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tflow_operator.config import Config
from tflow_operator.kube import KubeClient
from tflow_operator.model import (
    DefinitionInfo,
    DefinitionVerdict,
    RouteInfo,
    judge,
    judge_with_owner,
    queue_facts,
    queue_head,
)
from tflow_operator.pods import PodTrouble
from tflow_operator.temporal import TemporalGateway
from tflow_workers.temporal_namespaces import TemporalNamespaces

# A kopf index (``kopf.Index``) as KopfIndices reads it: key -> the values stored under it.
Index = Mapping[Any, Iterable[Any]]


class Background:
    """One named task the operator runs beside kopf's handlers (the publisher, the
    resync loop, the route watch): started once, cancelled and awaited when the operator
    stops."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.create_task(work, name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class QueueFacts:
    """What a task queue's definitions decide together."""

    owner: str | None
    temporal_namespace: str | None
    # The valid, live definitions of the owner namespace that share the queue's
    # workers, oldest first.
    members: tuple[DefinitionInfo, ...]


@dataclass
class KopfIndices:
    """Typed access to what the operator knows of its objects: kopf's indices of the
    definitions and Listeners, and the EventRoutes its own watch keeps
    (``tflow_operator.eventroute``)."""

    definitions: Index = field(default_factory=dict)
    # (namespace, name) -> the route, as RouteWatch.routes holds it.
    routes: Mapping[tuple[str, str], RouteInfo] = field(default_factory=dict)
    router_task_queue: str = ""
    temporal_namespaces: TemporalNamespaces = field(default_factory=TemporalNamespaces)
    # Namespace -> one tuple per Listener there: the namespaces it shares events with.
    listener_sharing: Index = field(default_factory=dict)
    # Namespace -> one True per Listener there with spec.routing direct.
    listener_routing: Index = field(default_factory=dict)
    # Task queue -> (its index entries when computed, what they decide). kopf keeps an
    # entry's object while it is unchanged, so comparing the entries is mostly identity.
    _queues: dict[str, tuple[tuple[Any, ...], QueueFacts]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def sharing(self) -> dict[str, frozenset[str]]:
        """Namespace -> every namespace one of its Listeners shares its events with."""
        return {
            str(namespace): frozenset(
                ns for shared in self.listener_sharing[namespace] for ns in shared
            )
            for namespace in list(self.listener_sharing)
        }

    def direct_routing_namespaces(self) -> frozenset[str]:
        """The namespaces with a Listener that routes its events itself, each of which
        gets its own part of the routing table."""
        return frozenset(
            str(namespace)
            for namespace in list(self.listener_routing)
            if any(self.listener_routing[namespace])
        )

    def definition(self, namespace: str, name: str) -> DefinitionInfo | None:
        store = self.definitions.get(("name", namespace, name))
        if not store:
            return None
        for info in store:
            if isinstance(info, DefinitionInfo):
                return info
        return None

    def on_queue(self, task_queue: str) -> list[DefinitionInfo]:
        store = self.definitions.get(("queue", task_queue))
        return [d for d in store or () if isinstance(d, DefinitionInfo)]

    def all_definitions(self) -> list[DefinitionInfo]:
        found: list[DefinitionInfo] = []
        for key in list(self.definitions):
            if isinstance(key, tuple) and key and key[0] == "name":
                found.extend(d for d in self.definitions[key] if isinstance(d, DefinitionInfo))
        return found

    def all_routes(self) -> list[RouteInfo]:
        return list(self.routes.values())

    def queue(self, task_queue: str) -> QueueFacts:
        """The queue's owner, Temporal namespace and members, from the index as it is."""
        store = self.definitions.get(("queue", task_queue))
        entries = tuple(store) if store else ()
        cached = self._queues.get(task_queue)
        if cached is not None and cached[0] == entries:
            return cached[1]
        on_queue = [d for d in entries if isinstance(d, DefinitionInfo)]
        owner, temporal, members = queue_facts(on_queue, self.temporal_namespaces)
        facts = QueueFacts(owner, temporal, members)
        if entries:
            self._queues[task_queue] = (entries, facts)
        else:
            self._queues.pop(task_queue, None)
        return facts

    def verdict(self, info: DefinitionInfo) -> DefinitionVerdict:
        indexed = self.definition(info.namespace, info.name)
        if indexed is not None and indexed == info:
            # As indexed: the queue's cached facts already count it.
            facts = self.queue(info.task_queue)
            return judge_with_owner(
                info,
                facts.owner,
                self.router_task_queue,
                self.temporal_namespaces,
                facts.temporal_namespace,
            )
        same_queue = [d for d in self.on_queue(info.task_queue) if d.uid != info.uid]
        return judge(info, same_queue, self.router_task_queue, self.temporal_namespaces)

    def lookup(self, namespace: str, name: str) -> tuple[DefinitionInfo, DefinitionVerdict] | None:
        info = self.definition(namespace, name)
        if info is None or info.deleting:
            return None
        return info, self.verdict(info)

    def members(self, namespace: str, task_queue: str) -> list[DefinitionInfo]:
        """The valid, live definitions sharing the worker Deployment of a queue, oldest
        first (all of them in the queue's owner namespace)."""
        if task_queue == self.router_task_queue:
            return []
        facts = self.queue(task_queue)
        if facts.owner != namespace:
            return []
        return list(facts.members)

    def snapshot(self) -> Snapshot:
        """Every live definition with its verdict, computed in one pass (for the
        publisher, which judges them all)."""
        live = [d for d in self.all_definitions() if not d.deleting]
        by_queue: dict[str, list[DefinitionInfo]] = {}
        for definition in live:
            by_queue.setdefault(definition.task_queue, []).append(definition)
        mapping = self.temporal_namespaces
        heads = {queue: queue_head(members, mapping) for queue, members in by_queue.items()}
        return Snapshot(
            {
                d.key: (
                    d,
                    judge_with_owner(
                        d,
                        heads[d.task_queue][0],
                        self.router_task_queue,
                        mapping,
                        heads[d.task_queue][1],
                    ),
                )
                for d in live
            }
        )


@dataclass(frozen=True)
class Snapshot:
    judged: dict[tuple[str, str], tuple[DefinitionInfo, DefinitionVerdict]]

    def valid(self) -> list[DefinitionInfo]:
        return [d for d, verdict in self.judged.values() if verdict.valid]

    def lookup(self, namespace: str, name: str) -> tuple[DefinitionInfo, DefinitionVerdict] | None:
        return self.judged.get((namespace, name))


@dataclass
class GroupState:
    """Coalesces applies of one worker group: a request is served by the first apply that
    starts after it (which reads the index as it is then), so a burst of a hundred new
    definitions on a queue costs a few applies, not a hundred."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requested: int = 0
    completed: int = 0
    result: Any = None


@dataclass
class GroupMemo:
    """What was last applied for one worker group, so sibling timers skip re-applying,
    and what its Deployment said then about its pods (``tflow_operator.pods``)."""

    digest: str
    applied_at: float
    trouble: PodTrouble | None = None
    # The members it was rendered from: the same members render the same objects, so a
    # sibling's reconcile need not render them again to compare digests.
    members: tuple[DefinitionInfo, ...] = ()


@dataclass
class Runtime:
    config: Config
    kube: KubeClient
    temporal: TemporalGateway
    indices: KopfIndices
    publisher: Any = None  # tflow_operator.publisher.Publisher, set at startup
    groups: dict[tuple[str, str], GroupState] = field(default_factory=dict)
    group_memos: dict[tuple[str, str], GroupMemo] = field(default_factory=dict)
    keda_available: bool = True
    stats_at: dict[str, float] = field(default_factory=dict)
    # Run-statistics refreshes left in the operator-wide budget (a token bucket that
    # fills at stats_rate, up to one statistics period's worth), and when it was filled.
    stats_tokens: float | None = None
    stats_filled_at: float = 0.0
    # How many definitions the last resync pass saw (tflow_operator.resync).
    stats_population: int = 0
    # When a change handler last reconciled each definition (by uid): the resync pass
    # leaves those reconciled within its period alone.
    handled_at: dict[str, float] = field(default_factory=dict)

    def group(self, namespace: str, task_queue: str) -> GroupState:
        return self.groups.setdefault((namespace, task_queue), GroupState())

    def recently_applied(self, namespace: str, task_queue: str, digest: str) -> bool:
        memo = self.group_memos.get((namespace, task_queue))
        return (
            memo is not None
            and memo.digest == digest
            and time.monotonic() - memo.applied_at < self.config.resync_seconds / 2
        )

    def recently_rendered(
        self, namespace: str, task_queue: str, members: tuple[DefinitionInfo, ...]
    ) -> bool:
        """Whether the group was applied recently from these very members."""
        memo = self.group_memos.get((namespace, task_queue))
        return (
            memo is not None
            and memo.members == members
            and time.monotonic() - memo.applied_at < self.config.resync_seconds / 2
        )

    def remember_applied(
        self,
        namespace: str,
        task_queue: str,
        digest: str,
        trouble: PodTrouble | None = None,
        members: tuple[DefinitionInfo, ...] = (),
    ) -> None:
        self.group_memos[(namespace, task_queue)] = GroupMemo(
            digest, time.monotonic(), trouble, members
        )

    def remember_rendered(
        self, namespace: str, task_queue: str, members: tuple[DefinitionInfo, ...]
    ) -> None:
        """The members rendered what was applied last (same digest)."""
        memo = self.group_memos.get((namespace, task_queue))
        if memo is not None:
            memo.members = members

    def remembered_trouble(self, namespace: str, task_queue: str) -> PodTrouble | None:
        memo = self.group_memos.get((namespace, task_queue))
        return memo.trouble if memo is not None else None

    def forget_applied(self, namespace: str, task_queue: str) -> None:
        self.group_memos.pop((namespace, task_queue), None)

    def stats_due(self, uid: str, now: float | None = None) -> bool:
        """Whether to refresh a definition's run statistics now: not more often than
        ``stats_seconds`` per definition, nor ``stats_rate`` per second in all.

        The budget is a bucket of one statistics period's worth of refreshes, not a
        minimum gap between two: with a gap, a pass that reaches the definitions in the
        same order every time gave the one after a refreshed one none, ever. With more
        definitions than a period's budget, each one's interval stretches to
        population / rate, so the ones refreshed lately leave the budget to the rest."""
        now = time.monotonic() if now is None else now
        config = self.config
        capacity = max(1.0, config.stats_rate * config.stats_seconds)
        interval = max(config.stats_seconds, self.stats_population / config.stats_rate)
        last = self.stats_at.get(uid)
        if last is not None and now - last < interval * 0.9:
            return False
        if self.stats_tokens is None:
            self.stats_tokens = capacity
        else:
            refill = (now - self.stats_filled_at) * config.stats_rate
            self.stats_tokens = min(capacity, self.stats_tokens + refill)
        self.stats_filled_at = now
        if self.stats_tokens < 1.0:
            return False
        self.stats_tokens -= 1.0
        self.stats_at[uid] = now
        return True
