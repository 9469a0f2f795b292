"""The RootOrchestrator's I/O: the routing table and the published definitions, both
mounted directories that change under a running worker, and the steps a routed event
takes (route, deliver to waiting runs, start a run), which a listener routing directly
(`tflow_workers.orchestrator.direct`) takes too.

`tflow.route-event` answers, for one CloudEvent, which flow runs it starts: each matching
route with its mapped input and the document snapshot of its target WorkflowDefinition.
Both directories are re-read when their content changes (checked at most once per
`reload_interval`), so a new routing table or definition applies without a restart; a
table that cannot be read keeps the last good one in service.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tflow_workers.engine.activities import DirectoryRegistry
from tflow_workers.engine.errors import WorkflowError
from tflow_workers.engine.events import EVENT_SIGNAL
from tflow_workers.engine.model import (
    SA_LISTENING,
    SA_NAMESPACE,
    WORKFLOW_TYPE,
    ResolvedDefinition,
    RunInput,
)
from tflow_workers.engine.starter import check_run_input, memo, search_attributes
from tflow_workers.orchestrator.model import (
    ACTIVITY_DELIVER,
    ACTIVITY_ROUTE,
    ACTIVITY_START_RUN,
    EventScope,
    RouteTarget,
    RoutingResult,
    StartedRun,
    StartRequest,
)
from tflow_workers.routing import (
    ROUTING_INDEX,
    CompiledRoute,
    Router,
    load_table,
    table_fingerprint,
)
from tflow_workers.temporal_namespaces import TemporalNamespaces, client_for

log = logging.getLogger("tflow.orchestrator")

RELOAD_INTERVAL = 1.0
# How long after a table loaded a definition it names may still be missing from the
# mounted definitions. The operator stores a definition before the table that routes to
# it, but the kubelet refreshes the two mounted volumes each in its own time (within its
# sync period, a minute by default), so for a while a new route's definition may not be
# there yet: the event waits (a routing activity is retried, a listener routing directly
# refuses it, so it comes back) rather than being routed nowhere. Past this, the
# definition is taken as gone and the route as failed.
DEFINITIONS_GRACE_SECONDS = 120.0
# The routing activity's error type while it waits for such a definition.
NOT_MOUNTED_YET = "DefinitionNotMountedYet"
PROBLEMS_LOGGED = 20
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")

Clock = Callable[[], float]


class TableUnavailable(RuntimeError):
    """No routing table could be loaded yet (the activity retries until one can)."""


class RoutingTableSource:
    """The routing table of a mounted directory, rebuilt only when its content changes."""

    def __init__(
        self,
        directory: Path,
        reload_interval: float = RELOAD_INTERVAL,
        clock: Clock | None = None,
        require_index: bool = False,
    ) -> None:
        self.directory = directory
        # A directory without the operator's index is not a table yet (its ConfigMap is
        # not written or not mounted yet): with this set, it is unavailable rather than
        # empty, so an event waits instead of being routed nowhere.
        self.require_index = require_index
        self.reload_interval = reload_interval
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._fingerprint: str | None = None
        self._router: Router | None = None
        self._hash = ""
        self.loads = 0
        # When the table in use was loaded (this source's clock), for its age.
        self.loaded_at = -math.inf

    def age(self) -> float:
        """Seconds since the table in use was loaded (infinite before one was)."""
        return self._clock() - self.loaded_at

    def current(self) -> tuple[Router, str]:
        """The router and the content hash of the table it was built from."""
        with self._lock:
            now = self._clock()
            if self._router is None or now - self._checked >= self.reload_interval:
                self._checked = now
                self._refresh()
            if self._router is None:  # pragma: no cover - _refresh raises instead
                raise TableUnavailable(f"no routing table in {self.directory}")
            return self._router, self._hash

    def _refresh(self) -> None:
        try:
            fingerprint = table_fingerprint(self.directory)
            if self.require_index and not (self.directory / ROUTING_INDEX).is_file():
                raise FileNotFoundError(f"no {ROUTING_INDEX} in {self.directory}")
        except OSError as err:
            self._keep(err)
            return
        if fingerprint == self._fingerprint:
            return
        try:
            table = load_table(self.directory)
        except (OSError, ValueError) as err:
            self._keep(err)
            # Not retried until the content changes again.
            self._fingerprint = fingerprint
            return
        if not self.directory.is_dir():
            log.warning("routing table directory %s does not exist: no routes", self.directory)
        self._router = Router(table)
        self._fingerprint = fingerprint
        self._hash = table.content_hash()[:16]
        self.loads += 1
        self.loaded_at = self._clock()
        log.info("routing table %s loaded: %d routes", self._hash, len(table.routes))
        # The operator refuses such routes; a table written by other means may hold some.
        # Said once here, and again on each event that reaches the route.
        problems = self._router.problems
        for problem in problems[:PROBLEMS_LOGGED]:
            log.error("routing table %s: %s", self._hash, problem)
        if len(problems) > PROBLEMS_LOGGED:
            log.error(
                "routing table %s: %d more routes whose jq does not compile",
                self._hash,
                len(problems) - PROBLEMS_LOGGED,
            )

    def _keep(self, err: Exception) -> None:
        """A table that cannot be read: keep routing with the last good one, if any."""
        if self._router is None:
            raise TableUnavailable(
                f"cannot load the routing table from {self.directory}: {err}"
            ) from err
        log.error("routing table unreadable, keeping %s: %s", self._hash, err)


class DefinitionSource:
    """Published WorkflowDefinitions by Kubernetes namespace and name, re-read when the
    directory's content changes."""

    def __init__(
        self,
        directory: Path | None,
        reload_interval: float = RELOAD_INTERVAL,
        clock: Clock | None = None,
    ) -> None:
        self.directory = directory
        self.registry = DirectoryRegistry(directory)
        self.reload_interval = reload_interval
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._fingerprint: str | None = None
        self._index: dict[tuple[str, str], ResolvedDefinition] = {}

    def get(self, namespace: str, name: str) -> ResolvedDefinition | None:
        with self._lock:
            now = self._clock()
            if now - self._checked >= self.reload_interval:
                self._checked = now
                fingerprint = definitions_fingerprint(self.directory)
                if fingerprint != self._fingerprint:
                    self._index = self.registry.workflow_definitions()
                    self._fingerprint = fingerprint
            return self._index.get((namespace, name))


def definitions_fingerprint(directory: Path | None) -> str:
    """Changes whenever a definition file the registry would read changes."""
    digest = hashlib.sha256()
    if directory is None or not directory.is_dir():
        return ""
    for path in sorted(directory.iterdir()):
        if path.suffix in DEFINITION_SUFFIXES and path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def match_routes(
    router: Router, event: dict[str, Any], scope: EventScope | None = None
) -> list[tuple[CompiledRoute, Any, str]]:
    """`Router.match`, except that a route whose jq fails does not stop the others: it is
    returned with its error (and no input) and does not count as a match, so another route
    to the same definition may still start it. Each item is (route, input, error)."""
    matches = router.match(
        event,
        tolerant=True,
        namespace=scope.namespace if scope else None,
        share_with=scope.share_with if scope else (),
    )
    return [(m.route, m.input, m.error) for m in matches]


class EventRouter:
    """Which flow runs an event starts, from a mounted routing table and the published
    definitions: what the routing activity answers, and what a listener routing events
    itself (`tflow_workers.orchestrator.direct`) asks."""

    def __init__(
        self,
        routes_dir: Path,
        definitions_dir: Path | None,
        reload_interval: float = RELOAD_INTERVAL,
        require_index: bool = False,
        clock: Clock | None = None,
        definitions_grace: float = DEFINITIONS_GRACE_SECONDS,
    ) -> None:
        self.table = RoutingTableSource(
            routes_dir, reload_interval, clock, require_index=require_index
        )
        self.definitions = DefinitionSource(definitions_dir, reload_interval, clock)
        self.definitions_grace = definitions_grace

    def route(self, event: dict[str, Any], scope: EventScope | None = None) -> RoutingResult:
        return self._route(event, scope)[0]

    def route_or_wait(
        self, event: dict[str, Any], scope: EventScope | None = None
    ) -> tuple[RoutingResult, str]:
        """`route`, and why the event must wait instead: a matching route's definition is
        missing from the mounted definitions while the table is younger than
        `definitions_grace` ("" when it need not). Reads mounted files: callers run it
        off their event loop."""
        result, unpublished = self._route(event, scope)
        if not unpublished or self.table.age() >= self.definitions_grace:
            return result, ""
        target = unpublished[0]
        return result, (
            f"route {target.route}: WorkflowDefinition "
            f"{target.namespace}/{target.workflow} is not mounted yet"
        )

    def _route(
        self, event: dict[str, Any], scope: EventScope | None
    ) -> tuple[RoutingResult, list[RouteTarget]]:
        """The routing result, and its targets whose definition is not published."""
        router, table_hash = self.table.current()
        targets: list[RouteTarget] = []
        unpublished: list[RouteTarget] = []
        for route, mapped, error in match_routes(router, event, scope):
            target, published = self._target(route, mapped, error, event)
            targets.append(target)
            if not published:
                unpublished.append(target)
        result = RoutingResult(table=table_hash, routes=len(router.table.routes), targets=targets)
        return result, unpublished

    def _target(
        self, route: CompiledRoute, mapped: Any, error: str, event: dict[str, Any]
    ) -> tuple[RouteTarget, bool]:
        """The route's target, and False when its definition is not published (a route
        whose jq failed is not asked about)."""
        target = RouteTarget(
            route=route.id,
            namespace=route.namespace,
            workflow=route.workflow,
            task_queue=route.task_queue,
            priority=route.priority,
            temporal_namespace=route.temporal_namespace,
        )
        if error:
            return target.model_copy(update={"error": error}), True
        resolved = self.definitions.get(route.namespace, route.workflow)
        if resolved is None:
            return target.model_copy(
                update={
                    "error": f"route {route.id}: WorkflowDefinition {route.target} is not published"
                }
            ), False
        run = RunInput(
            document=resolved.document, input=mapped, definition=resolved.definition, event=event
        )
        try:
            check_run_input(run)
        except WorkflowError as err:
            return target.model_copy(
                update={"error": f"route {route.id}: {err.problem.detail or err.problem.title}"}
            ), True
        return target.model_copy(
            update={
                "input": mapped,
                "document": resolved.document,
                "definition": resolved.definition,
            }
        ), True


class OrchestratorActivities:
    def __init__(
        self,
        routes_dir: Path,
        definitions_dir: Path | None,
        reload_interval: float = RELOAD_INTERVAL,
        temporal_namespaces: TemporalNamespaces | None = None,
        definitions_grace: float = DEFINITIONS_GRACE_SECONDS,
    ) -> None:
        self.router = EventRouter(
            routes_dir, definitions_dir, reload_interval, definitions_grace=definitions_grace
        )
        self.temporal_namespaces = temporal_namespaces or TemporalNamespaces()

    def all(self) -> list[Any]:
        return [self.route_event, self.deliver_event, self.start_run]

    def _scope_here(self, scope: EventScope | None, here: str) -> tuple[EventScope | None, str]:
        """The scope an event is routed with in Temporal namespace ``here``, or why it
        may not be routed from there.

        With namespaces mapped, a tenant's Temporal namespace is its own boundary: an
        event started there may only speak for a Kubernetes namespace that uses it (else
        anyone allowed to start workflows in one tenant's namespace could route events as
        another's), and an event without a namespace is that tenant's."""
        mapping = self.temporal_namespaces
        if not mapping.enabled or here == mapping.shared:
            return scope, ""
        owners = sorted(k for k, names in mapping.mapped.items() if here in names)
        if scope is not None:
            if scope.namespace in owners:
                return scope, ""
            return None, (
                f"an event of namespace {scope.namespace!r} may not be routed from Temporal "
                f"namespace {here!r}, which belongs to {', '.join(owners) or 'no namespace'}"
            )
        if len(owners) == 1:
            return EventScope(namespace=owners[0]), ""
        return None, (
            f"an event without a namespace may not be routed from Temporal namespace {here!r}"
            f" (used by {', '.join(owners) or 'no namespace'}): send it through a Listener"
        )

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver_event(
        self, event: dict[str, Any], scope: EventScope | None = None
    ) -> list[str]:
        """Signal the event to every run whose `listen` waits for its type.

        Runs say what they wait for in the `TflowListening` search attribute. Visibility
        is eventually consistent: a run that started listening a moment ago may be
        missed, which is why an event meant for one run is better signalled to it by id.
        A retried delivery may signal a run twice; runs ignore an event id they have seen.
        An event from a namespace reaches only runs of that namespace (`TflowNamespace`):
        delivery to a waiting run never crosses a tenant's boundary, whatever is shared.
        """
        scope, refused = self._scope_here(scope, activity.info().namespace)
        if refused:
            return []
        # Where the runs it may be delivered to live: every Temporal namespace of its
        # Kubernetes namespace, else this worker's own.
        clients = self.temporal_namespaces.clients(
            activity.client(), scope.namespace if scope else None
        )
        return await deliver_to_waiting_runs(clients, event, scope)

    @activity.defn(name=ACTIVITY_START_RUN)
    async def start_run(self, request: StartRequest) -> StartedRun:
        """Start a routed run in another Temporal namespace, as the workflow would start a
        child here: same id (so a retried or repeated event starts it once), same search
        attributes and memo; it outlives the orchestrator as an abandoned child would."""
        if request.temporal_namespace not in self.temporal_namespaces.all():
            # The table is the operator's; a namespace it does not map is not ours to use.
            raise ApplicationError(
                f"Temporal namespace {request.temporal_namespace!r} is not mapped",
                non_retryable=True,
            )
        return await start_flow_run(
            client_for(activity.client(), request.temporal_namespace), request
        )

    @activity.defn(name=ACTIVITY_ROUTE)
    async def route_event(
        self, event: dict[str, Any], scope: EventScope | None = None
    ) -> RoutingResult:
        scope, refused = self._scope_here(scope, activity.info().namespace)
        if refused:
            router, table_hash = self.router.table.current()
            return RoutingResult(table=table_hash, routes=len(router.table.routes), refused=refused)
        # File reads and YAML parsing stay off the worker's event loop.
        result, waiting = await asyncio.to_thread(self.router.route_or_wait, event, scope)
        if waiting:
            # Retried by the root run's policy until the kubelet has mounted it (or the
            # grace is over and the route fails as unpublished).
            raise ApplicationError(waiting, type=NOT_MOUNTED_YET)
        return result


async def start_flow_run(client: Client, request: StartRequest) -> StartedRun:
    """Start a routed flow run with ``client`` (of the request's Temporal namespace): the
    id derived from the event, never reused, so a repeated event reports `duplicate`."""
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            request.run,
            id=request.workflow_id,
            task_queue=request.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(request.run),
            memo=memo(request.run),
        )
    except WorkflowAlreadyStartedError:
        return StartedRun(status="duplicate")
    return StartedRun(status="started", run_id=handle.first_execution_run_id)


async def deliver_to_waiting_runs(
    clients: list[Client], event: dict[str, Any], scope: EventScope | None
) -> list[str]:
    """Signal ``event`` to every running flow run, in the Temporal namespaces of
    ``clients``, whose `listen` waits for its type (and of its namespace, with a scope)."""
    query = delivery_query(str(event.get("type", "")), scope)
    delivered: list[str] = []
    for client in clients:
        async for run in client.list_workflows(query):
            try:
                await client.get_workflow_handle(run.id).signal(EVENT_SIGNAL, event)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    continue  # it finished in the meantime
                raise
            delivered.append(run.id)
    return sorted(delivered)


def delivery_query(event_type: str, scope: EventScope | None) -> str:
    """The visibility query for the runs an event of `event_type` is delivered to."""
    query = (
        f'WorkflowType = "{WORKFLOW_TYPE}" AND ExecutionStatus = "Running" '
        f'AND {SA_LISTENING.name} = "{_quoted(event_type)}"'
    )
    if scope is not None:
        query += f' AND {SA_NAMESPACE.name} = "{_quoted(scope.namespace)}"'
    return query


def _quoted(text: str) -> str:
    """Text safe inside a double-quoted visibility query literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
