"""The one thing every listener does with an event: hand it to Temporal, and say whether
Temporal accepted it.

`HandOff` (a Listener's default, `spec.routing: orchestrator`) starts the event's
RootOrchestratorWorkflow, whose id derives from the event's source and id; it routes the
event. `DirectHandOff` (`spec.routing: direct`) routes the event here, with the
namespace's mounted routing table, and starts its flow runs itself
(`tflow_workers.orchestrator.direct`).

A listener acknowledges its source (HTTP 202, SQS delete, Service Bus complete) only after
`submit` returned: "started", "duplicate" when that event's runs already exist (a
redelivery), or, routing directly, "unroutable" when nothing matched it (acknowledged all
the same: a poison event must not come back forever). `TemporalUnavailable` means not
everything was accepted: do not acknowledge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from tflow_workers.cloudevents import (
    DEFAULT_ROUTER_TASK_QUEUE,
    ROOT_MEMO,
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    CloudEvent,
    RootInput,
    event_workflow_id,
)
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.model import SA_NAMESPACE

if TYPE_CHECKING:
    # The orchestrator's modules load the DSL's models and jq; a listener that routes
    # through the root orchestrator never needs them (its import takes half the time).
    from tflow_workers.orchestrator.direct import DirectRouter

log = logging.getLogger("tflow_listeners.handoff")

Outcome = Literal["started", "duplicate", "unroutable"]


@dataclass
class HandOff:
    client: Client
    task_queue: str = DEFAULT_ROUTER_TASK_QUEUE
    # The Kubernetes namespace of the Listener, recorded on each run it starts so that
    # the run-control API can tell its own runs from another namespace's.
    namespace: str | None = None
    # The namespaces whose routes may see this listener's events too (its side of the
    # opt-in; the routes' side is theirs). Empty: its events stay in its namespace.
    share_with: tuple[str, ...] = ()

    def workflow_id(self, event: CloudEvent) -> str:
        return event_workflow_id(event.source, event.id, self.namespace)

    async def submit(self, event: CloudEvent) -> Outcome:
        attributes = (
            TypedSearchAttributes([SearchAttributePair(SA_NAMESPACE, self.namespace)])
            if self.namespace
            else None
        )
        workflow_id = self.workflow_id(event)
        try:
            handle = await self.client.start_workflow(
                ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
                RootInput(
                    event=event.as_data(),
                    namespace=self.namespace,
                    share_with=list(self.share_with),
                    local_routing=True,
                ),
                id=workflow_id,
                task_queue=self.task_queue,
                # A closed run keeps its id too: an event redelivered after its run
                # finished is still the same event.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=attributes,
                memo=ROOT_MEMO,
            )
        except WorkflowAlreadyStartedError:
            log.info(
                "event %s is a duplicate of workflow %s",
                event.id,
                workflow_id,
                extra={"event_id": event.id, "workflow_id": workflow_id, **self._where()},
            )
            return "duplicate"
        except (RPCError, RuntimeError) as err:
            # RuntimeError: a lazy client's connection attempt failed.
            raise TemporalUnavailable(f"Temporal did not accept the start: {err}") from err
        log.info(
            "event %s started workflow %s",
            event.id,
            workflow_id,
            extra={
                "event_id": event.id,
                "workflow_id": workflow_id,
                "run_id": handle.result_run_id,
                **self._where(),
            },
        )
        return "started"

    def _where(self) -> dict[str, str]:
        return {"namespace": self.namespace} if self.namespace else {}


@dataclass
class DirectHandOff:
    """Routes each event in the listener and starts its flow runs: no workflow per event."""

    router: DirectRouter

    def workflow_id(self, event: CloudEvent) -> str:
        return self.router.workflow_id(event)

    def not_ready(self) -> str | None:
        """Why no event can be routed yet (no table loaded), or None: the readiness probe
        says it."""
        from tflow_workers.orchestrator.activities import TableUnavailable

        try:
            self.router.router.table.current()
        except TableUnavailable as err:
            return str(err)
        return None

    async def submit(self, event: CloudEvent) -> Outcome:
        decision = await self.router.route(event)
        statuses = {m.status for m in decision.matches}
        if "started" in statuses or (decision.delivered and "duplicate" not in statuses):
            return "started"
        if "duplicate" in statuses:
            return "duplicate"
        return "unroutable"
