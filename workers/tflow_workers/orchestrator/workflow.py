"""The RootOrchestratorWorkflow: turns an event into flow runs, and says what it did.

Two forms, one workflow type (the seed's `RootOrchestratorWorkflow`):

- per event (`RootInput(event=...)`, what listeners start, one workflow per event with an
  id derived from the event's source and id): validate the event, ask the routing
  activity which flow runs it starts, start each as a child `ServerlessWorkflow` that
  outlives this workflow, return the `Decision`;
- long-running (`RootInput()`, or `{}` from the Temporal CLI): route every event
  signalled as `trigger` the same way, and continue as new, carrying the events not
  routed yet, before its history grows large.

A child's workflow id derives from the event (`event_workflow_id(source, id)/<namespace>/
<definition>`) and is never reused, so an event that arrives twice, by either form,
starts each flow run once.

Nothing about an event fails this workflow: an input that is not an event, an event no
route matches and a route whose jq fails all complete with the reason in the decision. A
poison event must not retry forever.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from tflow_workers.cloudevents import (
        LOCAL_STARTS_MEMO,
        ROOT_MEMO,
        ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
        EventFormatError,
        RootInput,
        event_workflow_id,
        from_plain_json,
    )
    from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput
    from tflow_workers.engine.starter import memo, search_attributes
    from tflow_workers.orchestrator.model import (
        ACTIVITY_DELIVER,
        ACTIVITY_ROUTE,
        ACTIVITY_START_RUN,
        EVENTS_PER_RUN,
        QUERY_DECISION,
        QUERY_DECISIONS,
        RECENT_DECISIONS,
        SIGNAL_TRIGGER,
        Decision,
        EventScope,
        MatchOutcome,
        RecentDecisions,
        RouteTarget,
        RoutingResult,
        StartedRun,
        StartRequest,
        decide,
        started_outcome,
    )

ROUTE_TIMEOUT = timedelta(seconds=30)
# Reading the table only fails while it is unreadable: keep trying, the event waits.
ROUTE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
DELIVER_RETRY = RetryPolicy(maximum_attempts=5)
# With `RootInput.local_routing`, routing and delivery run as local activities: an event
# costs two workflow tasks and no activity tasks, where it cost four and two
# (docs/benchmarks.md). The input, not `workflow.patched`, says which: a patch marker
# comes with a core-originated search attribute upsert, and a replay of a run with the
# marker, that upsert and the route's local activity marker in one workflow task failed
# as nondeterministic, rarely and not reproducibly. The input is fixed for the run, so
# both kinds of run replay as they ran.
# Well under Temporal's 2 MiB payload limit, for the events carried to the next run.
CARRY_LIMIT_BYTES = 1024 * 1024
# Starting a run in another Temporal namespace: retried while Temporal is unavailable.
START_TIMEOUT = timedelta(seconds=30)
START_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20)
# An event without a source (plain JSON) gets this one.
SIGNAL_SOURCE = "root-orchestrator"
_ROOT_INPUT_FIELDS = frozenset(RootInput.model_fields)


# Outside Temporal's sandbox: every event is a new run, so a new workflow instance, and the
# sandbox's per-instance setup (this module run again in a fresh namespace, its imports
# checked) was about a third of the orchestrator's CPU per event (docs/benchmarks.md,
# *Real pods*). This module reads no clock, randomness or environment except through
# `workflow`, and does no I/O; the replay tests over recorded histories guard its
# determinism, as they guard the interpreter's.
@workflow.defn(name=ROOT_ORCHESTRATOR_WORKFLOW_TYPE, sandboxed=False)
class RootOrchestratorWorkflow:
    """See the module docstring. The input is a `RootInput`; it is decoded here rather than
    by the SDK so that a malformed one completes as `invalid` instead of failing the
    workflow task over and over."""

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] = []
        self._decisions: list[Decision] = []
        self._routed = 0
        # Events routed by this run (the long-running form continues as new after
        # EVENTS_PER_RUN of them).
        self._handled = 0
        # The per-event form's decision about its event.
        self._event_decision: Decision | None = None
        # Where this run's events come from. Every event it routes has it, the ones
        # signalled later too: a signal must not be a way around a tenant's boundary.
        self._scope: EventScope | None = None
        self._local_routing = False
        # Whether flow runs are started by local activities (the run's memo says so)
        # rather than as children; fixed for the run, so it replays as it ran.
        self._local_starts = False

    @workflow.run
    async def run(self, params: Any = None) -> Decision:
        root, problem = parse_root_input(params)
        if root is None:
            return self._remember(problem or Decision(status="invalid"))
        self._routed += root.routed
        self._local_routing = root.local_routing
        self._local_starts = workflow.memo_value(LOCAL_STARTS_MEMO, False, type_hint=bool)
        if root.namespace is not None:
            self._scope = EventScope(namespace=root.namespace, share_with=root.share_with)
        # Carried over from the previous run first: they were signalled earlier.
        self._pending[:0] = root.pending
        if root.event is not None:
            decision = self._remember(await self._route(root.event))
            self._event_decision = decision
            # Events signalled to a per-event run are routed too, never dropped.
            while self._pending:
                self._remember(await self._route(self._pending.pop(0)))
            return decision
        while True:
            await workflow.wait_condition(lambda: bool(self._pending) or self._should_continue())
            if self._should_continue() and self._can_carry():
                break
            self._remember(await self._route(self._pending.pop(0)))
            self._handled += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.logger.info(
            "continuing as new after %d events, %d pending", self._handled, len(self._pending)
        )
        scope = self._scope
        workflow.continue_as_new(
            RootInput(
                pending=self._pending,
                routed=self._routed,
                namespace=scope.namespace if scope else None,
                share_with=scope.share_with if scope else [],
                local_routing=True,
            ),
            memo=ROOT_MEMO if self._local_starts else None,
        )

    @workflow.signal(name=SIGNAL_TRIGGER)
    def trigger(self, payload: Any = None) -> None:
        if isinstance(payload, dict):
            self._pending.append(payload)
            return
        kind = "nothing" if payload is None else type(payload).__name__
        self._remember(
            Decision(status="invalid", reason=f"an event must be a JSON object, got {kind}")
        )

    @workflow.query(name=QUERY_DECISION)
    def decision(self) -> Decision | None:
        """The event's decision for a per-event run, else the latest one."""
        if self._event_decision is not None:
            return self._event_decision
        return self._decisions[-1] if self._decisions else None

    @workflow.query(name=QUERY_DECISIONS)
    def decisions(self) -> RecentDecisions:
        return RecentDecisions(
            routed=self._routed, pending=len(self._pending), decisions=list(self._decisions)
        )

    # ---- routing ----------------------------------------------------------------------

    def _should_continue(self) -> bool:
        # A run routes at least one event before it follows Temporal's suggestion, so a
        # large carried-over backlog cannot make it continue as new without progress.
        suggested = self._handled > 0 and workflow.info().is_continue_as_new_suggested()
        return self._handled >= EVENTS_PER_RUN or suggested

    def _can_carry(self) -> bool:
        """Whether the events not routed yet fit the next run's input. While they do not
        (a burst faster than routing), the run keeps routing and its history grows."""
        size = len(json.dumps(self._pending, separators=(",", ":"), default=str))
        return size <= CARRY_LIMIT_BYTES

    def _remember(self, decision: Decision) -> Decision:
        self._routed += 1
        self._decisions.append(decision)
        del self._decisions[:-RECENT_DECISIONS]
        return decision

    async def _route(self, raw: dict[str, Any]) -> Decision:
        try:
            event = from_plain_json(raw, default_source=SIGNAL_SOURCE)
        except EventFormatError as err:
            decision = Decision(status="invalid", reason=str(err), **_identity(raw))
            workflow.logger.warning("invalid event: %s", err)
            return decision
        data = event.as_data()
        # Without a scope the activities get the event alone, as runs recorded before
        # namespaces did: their histories replay unchanged.
        args: list[Any] = [data] if self._scope is None else [data, self._scope]
        local = self._local_routing
        result: RoutingResult = await _call(
            local,
            ACTIVITY_ROUTE,
            args,
            ROUTE_RETRY,
            RoutingResult,
            summary=f"{event.type} from {event.source}",
        )
        base = event_workflow_id(
            event.source, event.id, self._scope.namespace if self._scope else None
        )

        async def deliver() -> list[str]:
            delivered: list[str] = await _call(
                local,
                ACTIVITY_DELIVER,
                args,
                DELIVER_RETRY,
                list,
                summary=f"deliver {event.type} to waiting runs",
            )
            return delivered

        async def start_all() -> list[MatchOutcome]:
            local_starts = self._local_starts
            return list(
                await asyncio.gather(*(_start(t, data, base, local_starts) for t in result.targets))
            )

        if local:
            # Delivered first, in the workflow task of the route, so the run can complete
            # as soon as its children have started: a workflow task held open by a local
            # activity after the starts is often refused (UnhandledCommand) because a
            # child completed meanwhile, and the run is replayed to complete it. A run
            # this event starts is not waiting for it yet, so it is not delivered to.
            delivered = await deliver()
            outcomes = await start_all()
        else:
            outcomes = await start_all()
            delivered = await deliver()
        decision = decide(
            outcomes, result, event.type, event.source, event_id=event.id, delivered=delivered
        )
        workflow.logger.info(
            "event %s (%s from %s): %s%s",
            event.id,
            event.type,
            event.source,
            decision.status,
            f": {decision.reason}" if decision.reason else "",
            # Fields of a JSON line (tflow_workers.logs): the event, and its tenant.
            extra={
                "event_id": event.id,
                **({"namespace": self._scope.namespace} if self._scope else {}),
            },
        )
        return decision


async def _call(
    local: bool,
    name: str,
    args: list[Any],
    retry: RetryPolicy,
    result_type: type[Any],
    summary: str,
    start_to_close: timedelta = ROUTE_TIMEOUT,
) -> Any:
    """An activity of the orchestrator, local when `local` (the run's input or memo asks
    for it)."""
    options: dict[str, Any] = {
        "args": args,
        "start_to_close_timeout": start_to_close,
        "retry_policy": retry,
        "result_type": result_type,
        "summary": summary,
    }
    if local:
        return await workflow.execute_local_activity(name, **options)
    return await workflow.execute_activity(name, **options)


def parse_root_input(params: Any) -> tuple[RootInput | None, Decision | None]:
    """The run's `RootInput`. A bare event (a CloudEvent or the seed's plain JSON, as some
    starters send) is taken as `RootInput(event=...)`; anything else is invalid."""
    if params is None:
        return RootInput(), None
    if isinstance(params, RootInput):
        return params, None
    if not isinstance(params, dict):
        reason = f"the input must be a JSON object, got {type(params).__name__}"
        return None, Decision(status="invalid", reason=reason)
    if params and not set(params) <= _ROOT_INPUT_FIELDS:
        return RootInput(event=params), None
    try:
        return RootInput.model_validate(params), None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return None, Decision(status="invalid", reason=f"not a RootInput: {where}: {first['msg']}")


def _identity(raw: dict[str, Any]) -> dict[str, str | None]:
    def text(*keys: str) -> str | None:
        value = next((raw[k] for k in keys if raw.get(k)), None)
        return str(value) if value is not None else None

    return {
        "event_id": text("id", "eventId"),
        "event_type": text("type", "eventType"),
        "event_source": text("source"),
    }


async def _start(
    target: RouteTarget, event: dict[str, Any], base: str, local_starts: bool = False
) -> MatchOutcome:
    outcome = target.outcome()
    run = target.run(event)
    if run is None:
        return outcome
    child_id = target.run_id(base)
    if local_starts:
        return await _start_by_activity(target, run, child_id, outcome, local=True)
    if target.temporal_namespace and target.temporal_namespace != workflow.info().namespace:
        return await _start_by_activity(target, run, child_id, outcome)
    try:
        handle = await workflow.start_child_workflow(
            WORKFLOW_TYPE,
            run,
            id=child_id,
            task_queue=target.task_queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            # A closed run keeps its id: the same event never starts the flow again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(run),
            memo=memo(run),
        )
    except WorkflowAlreadyStartedError:
        return outcome.model_copy(
            update={"status": "duplicate", "child_workflow_id": child_id, "error": None}
        )
    return outcome.model_copy(
        update={
            "status": "started",
            "child_workflow_id": handle.id,
            "child_run_id": handle.first_execution_run_id,
        }
    )


async def _start_by_activity(
    target: RouteTarget, run: RunInput, run_id: str, outcome: MatchOutcome, local: bool = False
) -> MatchOutcome:
    """Start a run with the activity `tflow.start-run`: the run has the id, search
    attributes and memo a child would have, and no parent (an abandoned child outlives
    its parent anyway). Used for a run in another Temporal namespace, which a child
    cannot cross into, and, as a local activity, for every run of a root run whose memo
    asks for it. A local start retried after the worker was lost finds its run started
    and reports it as `duplicate`."""
    namespace = target.temporal_namespace or workflow.info().namespace
    request = StartRequest(
        temporal_namespace=namespace, workflow_id=run_id, task_queue=target.task_queue, run=run
    )
    summary = f"start {target.namespace}/{target.workflow} in {namespace}"
    try:
        started: StartedRun = await _call(
            local, ACTIVITY_START_RUN, [request], START_RETRY, StartedRun, summary, START_TIMEOUT
        )
    except ActivityError as err:
        cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
        return outcome.model_copy(
            update={
                "error": f"route {target.route}: could not start the run in Temporal namespace "
                f"{namespace}: {cause}"
            }
        )
    return started_outcome(outcome, run_id, started)
