"""What crosses the RootOrchestrator's boundaries: the routing activity's answer and the
decision the workflow records (its result, and the `decision` / `decisions` queries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tflow_workers.engine.model import DefinitionRef, RunInput

ACTIVITY_DELIVER = "tflow.deliver-event"
ACTIVITY_ROUTE = "tflow.route-event"
ACTIVITY_START_RUN = "tflow.start-run"

QUERY_DECISION = "decision"
QUERY_DECISIONS = "decisions"
SIGNAL_TRIGGER = "trigger"

# The long-running form continues as new after this many events even when Temporal does
# not suggest it yet, and keeps this many recent decisions for the `decisions` query.
EVENTS_PER_RUN = 500
RECENT_DECISIONS = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventScope(_Model):
    """Where an event comes from, for the routing and delivery activities: its Kubernetes
    namespace and the namespaces it is shared with (see `RootInput`)."""

    namespace: str
    share_with: list[str] = Field(default_factory=list)


class RouteTarget(_Model):
    """One flow run an event starts (or would have started): the route that chose it, the
    definition's document snapshot and the mapped input, or why it cannot start."""

    route: str
    namespace: str
    workflow: str
    task_queue: str
    priority: int = 0
    input: Any = None
    document: dict[str, Any] | None = None
    definition: DefinitionRef | None = None
    error: str | None = None
    # The Temporal namespace the run starts in, when the operator maps namespaces; None:
    # the orchestrator's own.
    temporal_namespace: str | None = None

    def outcome(self) -> MatchOutcome:
        """Its outcome before a start: failed, with the route's error if it has one."""
        return MatchOutcome(
            route=self.route,
            workflow=self.workflow,
            namespace=self.namespace,
            task_queue=self.task_queue,
            status="failed",
            error=self.error,
        )

    def run(self, event: dict[str, Any]) -> RunInput | None:
        """The run's input, or None when the target cannot start (see `error`)."""
        if self.error is not None or self.document is None:
            return None
        return RunInput(
            document=self.document, input=self.input, definition=self.definition, event=event
        )

    def run_id(self, base: str) -> str:
        """The run's workflow id, from the event's (``base``): never reused."""
        return f"{base}/{self.namespace}/{self.workflow}"


class StartRequest(_Model):
    """A run the orchestrator starts in another Temporal namespace, through an activity:
    a child workflow cannot cross namespaces."""

    temporal_namespace: str
    workflow_id: str
    task_queue: str
    run: RunInput


class StartedRun(_Model):
    status: Literal["started", "duplicate"]
    run_id: str | None = None


class RoutingResult(_Model):
    """The routing activity's answer for one event."""

    # The content hash of the routing table that decided, and its size.
    table: str
    routes: int
    # Highest priority first; a target with `error` set does not start (its route's jq
    # failed, or its definition is not published).
    targets: list[RouteTarget] = Field(default_factory=list)
    # Why the event may not be routed at all where it arrived (a tenant's Temporal
    # namespace speaking for another); no target then.
    refused: str | None = None


MatchStatus = Literal["started", "duplicate", "failed"]
DecisionStatus = Literal["routed", "unroutable", "invalid"]


class MatchOutcome(_Model):
    route: str
    workflow: str
    namespace: str
    task_queue: str
    status: MatchStatus
    child_workflow_id: str | None = None
    child_run_id: str | None = None
    error: str | None = None


def started_outcome(outcome: MatchOutcome, run_id: str, started: StartedRun) -> MatchOutcome:
    """``outcome`` once its run was started (or found started) with the id ``run_id``."""
    return outcome.model_copy(
        update={
            "status": started.status,
            "child_workflow_id": run_id,
            "child_run_id": started.run_id,
            "error": None,
        }
    )


class Decision(_Model):
    """What the orchestrator did with one event.

    `routed`: at least one flow run started (or had already started: a redelivery), or
    the event was delivered to runs waiting for it (`delivered`);
    `unroutable`: nothing started (no route matched, the target definitions are not
    published, or every matching route failed), `reason` says why; `invalid`: the input
    is not an event. None of them fails the workflow: a poison event must not retry.
    """

    status: DecisionStatus
    reason: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    event_source: str | None = None
    table: str | None = None
    matches: list[MatchOutcome] = Field(default_factory=list)
    # Runs that were waiting in a `listen` for this event type and were handed the event.
    delivered: list[str] = Field(default_factory=list)


class RecentDecisions(_Model):
    """The `decisions` query: events routed by this workflow id (across continue-as-new),
    events waiting, and the latest decisions of the current run, oldest first."""

    routed: int
    pending: int
    decisions: list[Decision] = Field(default_factory=list)


def decide(
    outcomes: list[MatchOutcome],
    result: RoutingResult,
    event_type: str,
    source: str,
    *,
    event_id: str | None = None,
    delivered: Sequence[str] = (),
) -> Decision:
    """The decision about one event from its routes' outcomes and the runs it was
    delivered to: an event that started nothing but reached a waiting run is routed."""
    decision = _from_outcomes(outcomes, result, event_type, source)
    if delivered and decision.status == "unroutable" and not outcomes:
        decision = decision.model_copy(update={"status": "routed", "reason": None})
    return decision.model_copy(
        update={
            "event_id": event_id,
            "event_type": event_type,
            "event_source": source,
            "delivered": list(delivered),
        }
    )


def _from_outcomes(
    outcomes: list[MatchOutcome], result: RoutingResult, event_type: str, source: str
) -> Decision:
    failed = [o for o in outcomes if o.status == "failed"]
    if len(failed) < len(outcomes):
        reason = None
        if failed:
            reason = f"{len(failed)} of {len(outcomes)} routes failed: " + "; ".join(
                str(o.error) for o in failed
            )
        return Decision(status="routed", reason=reason, table=result.table, matches=outcomes)
    if result.refused:
        reason = result.refused
    elif not outcomes:
        reason = (
            f"no route matches type {event_type!r} from source {source!r} "
            f"(routing table {result.table}, {result.routes} routes)"
        )
    else:
        reason = "; ".join(str(o.error) for o in failed)
    return Decision(status="unroutable", reason=reason, table=result.table, matches=outcomes)
