"""EventRoutes: the operator's own list and watch of them; the publisher does the work.

Routes are cluster-wide: the EventRoutes of every namespace compile into one routing
table, the ConfigMap ``tflow-routing`` in the system namespace, which the root
orchestrator mounts. A route is in the table when its jq filter and input mapping
compile, its WorkflowDefinition (same namespace) exists and is valid, and it is enabled;
otherwise its ``Ready`` condition says why (``InvalidExpression``, ``WorkflowNotFound``,
``WorkflowInvalid``, ``Disabled``), and it is re-checked whenever definitions change.

A route needs no change handler, so kopf does not watch routes at all: :class:`RouteWatch`
lists them once, then follows one watch from the list's resourceVersion (listing again
when the apiserver says that version is too old, or the watch fails), and keeps each
route's :class:`RouteInfo`, nothing more. Through kopf, every route cost per-object state
(memories, a worker task per event burst, an index entry) and, with ten thousand routes,
its index stopped showing the statuses the publisher wrote, so the publisher wrote them
again (docs/benchmarks.md). Nothing writes on a route but the publisher, which writes its
status only when it changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, Protocol

from tflow_operator.api.common import API_VERSION
from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.model import RouteInfo, route_info
from tflow_operator.runtime import Background

KIND: Final = "EventRoute"

log = logging.getLogger("tflow.operator.eventroute")

Key = tuple[str, str]


class RouteListener(Protocol):
    """What the watch tells (the publisher)."""

    def observe_route(self, key: Key, fingerprint: tuple[Any, ...]) -> None: ...

    def forget_route(self, key: Key) -> None: ...

    def routes_listed(self) -> None: ...


class RouteWatch:
    """Every EventRoute in the cluster as a :class:`RouteInfo` by (namespace, name), in
    ``routes`` (the publisher reads that very dict)."""

    def __init__(
        self,
        kube: KubeClient,
        listener: RouteListener,
        routes: dict[Key, RouteInfo] | None = None,
        timeout_seconds: int = 300,
    ) -> None:
        self.kube = kube
        self.listener = listener
        self.timeout_seconds = timeout_seconds
        self.routes: dict[Key, RouteInfo] = {} if routes is None else routes
        self.lists = 0
        self._background = Background("tflow-route-watch")

    def start(self) -> None:
        self._background.start(self.run())

    async def stop(self) -> None:
        await self._background.stop()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                version = await self.relist()
                failures = 0
                while True:
                    version = await self.follow(version)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if isinstance(err, KubeError) and err.status == 410:
                    log.info("EventRoutes: the watch's resourceVersion is too old, listing again")
                    continue
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.warning(
                    "EventRoutes: watch failed (list again in %.1fs): %s",
                    delay,
                    err,
                    exc_info=not isinstance(err, KubeError),
                )
                await asyncio.sleep(delay)

    async def relist(self) -> str:
        """Read every route anew (what changed while nothing was watched is told as
        changes); returns the version to watch from."""
        items, version = await self.kube.list_at(API_VERSION, KIND)
        self.lists += 1
        seen: set[Key] = set()
        for body in items:
            seen.add(self._put(body))
        for key in [key for key in self.routes if key not in seen]:
            self._drop(key)
        self.listener.routes_listed()
        return version

    async def follow(self, version: str) -> str:
        """One watch from ``version`` until the apiserver ends it; returns the version to
        go on from."""
        async for event in self.kube.watch(API_VERSION, KIND, version, self.timeout_seconds):
            body = event["object"]
            meta = body.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            kind = event["type"]
            if kind == "DELETED":
                self._drop((str(meta.get("namespace")), str(meta.get("name"))))
            elif kind in ("ADDED", "MODIFIED"):
                self._put(body)
        return version

    def _put(self, body: dict[str, Any]) -> Key:
        info = route_info(body)
        self.routes[info.key] = info
        self.listener.observe_route(info.key, (info.uid, info.generation, info.deleting))
        return info.key

    def _drop(self, key: Key) -> None:
        if self.routes.pop(key, None) is not None:
            self.listener.forget_route(key)
