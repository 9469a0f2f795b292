"""Direct routing: one event turned into its flow runs by the caller, with no workflow of
its own.

What a root run does in its one workflow task (route with the table, deliver to the runs
waiting in a `listen`, start each matching definition's run, decide), done here with a
Temporal client, for a Listener with `spec.routing: direct`. The runs are the ones a root
run would start (the same ids, derived from the event and never reused, so a repeated
event reports `duplicate`; the same search attributes and memo), so switching a Listener
between the two forms starts nothing twice. What is not kept is the root run itself: the
decision is logged and returned, not recorded in Temporal.

The caller acknowledges its event only once `route` returned. `TemporalUnavailable`
means some step was not accepted, or the event cannot be routed yet (no routing table
mounted, or a young table naming a definition not mounted yet): nothing may be
acknowledged, and a retry finds the runs already started as duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from tflow_workers.cloudevents import CloudEvent, event_workflow_id
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.orchestrator.activities import (
    EventRouter,
    TableUnavailable,
    deliver_to_waiting_runs,
    start_flow_run,
)
from tflow_workers.orchestrator.model import (
    Decision,
    EventScope,
    MatchOutcome,
    RouteTarget,
    StartRequest,
    decide,
    started_outcome,
)
from tflow_workers.temporal_namespaces import TemporalNamespaces, client_for

log = logging.getLogger("tflow.direct-routing")

# How long an event type that no run was waiting for is not asked about again. Delivery
# by type rests on visibility, which is eventually consistent already (a run that began
# listening a moment ago may be missed: an event meant for one run is better signalled to
# it by id); this widens that window by at most a second, and spares the visibility store
# a query per event of a busy type nobody listens to (about a tenth of the Temporal
# server's CPU per routed event, docs/benchmarks.md).
NOBODY_WAITS_SECONDS = 1.0
# Event types remembered at most (they come from outside): past it, the expired go.
NOBODY_WAITS_LIMIT = 10_000


@dataclass
class DirectRouter:
    """Routes the events of one Kubernetes namespace (never shared with another: a shared
    event needs the other namespace's routes, which only the root orchestrator holds)."""

    client: Client
    router: EventRouter
    namespace: str
    temporal_namespaces: TemporalNamespaces = field(default_factory=TemporalNamespaces)
    clock: Callable[[], float] = time.monotonic
    # Event type -> until when no run is taken to wait for it (see NOBODY_WAITS_SECONDS).
    _nobody_waits: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def workflow_id(self, event: CloudEvent) -> str:
        """The event's id: its runs' ids are ``<this>/<namespace>/<definition>``."""
        return event_workflow_id(event.source, event.id, self.namespace)

    async def route(self, event: CloudEvent) -> Decision:
        data = event.as_data()
        scope = EventScope(namespace=self.namespace)
        try:
            # File reads and YAML parsing stay off the event loop, as in the routing
            # activity.
            result, waiting = await asyncio.to_thread(self.router.route_or_wait, data, scope)
        except TableUnavailable as err:
            # Not routed nowhere: the event waits until the table is mounted.
            raise TemporalUnavailable(f"no routing table yet: {err}") from err
        if waiting:
            raise TemporalUnavailable(waiting)
        base = self.workflow_id(event)
        try:
            # Delivered first, as a root run does: a run this event starts is not waiting
            # for it yet.
            delivered = await self._deliver(event.type, data, scope)
            outcomes = list(
                await asyncio.gather(*(self._start(t, data, base) for t in result.targets))
            )
        except (RPCError, RuntimeError) as err:
            # RuntimeError: a lazy client's connection attempt failed.
            raise TemporalUnavailable(f"Temporal did not accept the event: {err}") from err
        decision = decide(
            outcomes, result, event.type, event.source, event_id=event.id, delivered=delivered
        )
        # The root run's record of the event, as a log line: its decision and runs.
        runs = [
            f"{m.child_workflow_id} ({m.status})" for m in decision.matches if m.child_workflow_id
        ]
        log.info(
            "event %s (%s from %s): %s%s%s",
            event.id,
            event.type,
            event.source,
            decision.status,
            f": {decision.reason}" if decision.reason else "",
            f"; runs: {', '.join(runs)}" if runs else "",
            extra={"event_id": event.id, "namespace": self.namespace},
        )
        return decision

    async def _deliver(self, event_type: str, data: dict[str, Any], scope: EventScope) -> list[str]:
        now = self.clock()
        if self._nobody_waits.get(event_type, -1.0) > now:
            return []
        delivered = await deliver_to_waiting_runs(
            self.temporal_namespaces.clients(self.client, self.namespace), data, scope
        )
        if not delivered:
            if len(self._nobody_waits) >= NOBODY_WAITS_LIMIT:
                self._nobody_waits = {t: u for t, u in self._nobody_waits.items() if u > now}
                if len(self._nobody_waits) >= NOBODY_WAITS_LIMIT:
                    self._nobody_waits.clear()
            self._nobody_waits[event_type] = now + NOBODY_WAITS_SECONDS
        return delivered

    async def _start(self, target: RouteTarget, event: dict[str, Any], base: str) -> MatchOutcome:
        outcome = target.outcome()
        run = target.run(event)
        if run is None:
            return outcome
        where = target.temporal_namespace or self.client.namespace
        if where not in (self.client.namespace, *self.temporal_namespaces.all()):
            # The table is the operator's; a namespace it does not map is not ours to use.
            return outcome.model_copy(
                update={
                    "error": f"route {target.route}: Temporal namespace {where!r} is not mapped"
                }
            )
        run_id = target.run_id(base)
        request = StartRequest(
            temporal_namespace=where, workflow_id=run_id, task_queue=target.task_queue, run=run
        )
        started = await start_flow_run(client_for(self.client, where), request)
        return started_outcome(outcome, run_id, started)
