"""What a WorkflowDefinition's Temporal Schedule should be: its id, the Schedule built
from ``spec.schedule`` (the interpreter started with a snapshot of the document), and the
note that carries a digest of what Temporal rewrites.

Temporal rewrites what it is given: cron strings come back as structured calendars and a
catch-up window is raised to its minimum. Those two cannot be compared with what was sent,
so a digest of them travels in the schedule's note (:mod:`tflow_operator.schedule_diff`
reads it back).

The cron expressions and the time zone are not checked here: Temporal's own validation
answers when the schedule is created or updated, and :mod:`tflow_operator.schedules`
turns its answer into ``InvalidSchedule`` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.client import ScheduleState as TemporalScheduleState
from temporalio.common import TypedSearchAttributes

from tflow_operator.api.common import parse_duration
from tflow_operator.api.workflowdefinition import OverlapPolicy, WorkflowDefinition
from tflow_operator.api.workflowdefinition import Schedule as ScheduleSpecModel
from tflow_workers.engine.errors import WorkflowError, check_payload
from tflow_workers.engine.model import SA_DEFINITION, WORKFLOW_TYPE, DefinitionRef, RunInput
from tflow_workers.engine.starter import memo, search_attributes

SCHEDULE_ID_PREFIX: Final = "tflow-"

# Temporal raises any shorter catch-up window, "0" included, to this minimum; the operator
# asks for the minimum itself so what it sends is what Temporal keeps.
MIN_CATCHUP_WINDOW: Final = timedelta(seconds=10)

_OVERLAP: Final[Mapping[OverlapPolicy, ScheduleOverlapPolicy]] = {
    OverlapPolicy.SKIP: ScheduleOverlapPolicy.SKIP,
    OverlapPolicy.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    OverlapPolicy.BUFFER_ALL: ScheduleOverlapPolicy.BUFFER_ALL,
    OverlapPolicy.CANCEL_OTHER: ScheduleOverlapPolicy.CANCEL_OTHER,
    OverlapPolicy.TERMINATE_OTHER: ScheduleOverlapPolicy.TERMINATE_OTHER,
    OverlapPolicy.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}

# The digest at the end of a note this module wrote.
NOTE_DIGEST: Final = re.compile(r"\[spec ([0-9a-f]+)\]\s*$")


class ScheduleError(Exception):
    """Base of the errors the schedule modules raise on purpose."""


class InvalidSchedule(ScheduleError, ValueError):
    """``spec.schedule`` (or what it makes) was refused; ``field`` says which part."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def schedule_id(namespace: str, name: str) -> str:
    """The Temporal Schedule id of a definition: ``tflow-<namespace>.<name>``.

    A Kubernetes namespace never contains a dot, so the id is unambiguous across
    namespaces. It is also the workflow id prefix of scheduled runs (Temporal appends
    ``-<scheduled time>``).
    """
    return f"{SCHEDULE_ID_PREFIX}{namespace}.{name}"


def definition_query(namespace: str, name: str) -> str:
    """The visibility query matching every run of a definition."""
    value = f"{namespace}/{name}".replace("\\", "\\\\").replace('"', '\\"')
    return f'{SA_DEFINITION.name} = "{value}"'


@dataclass(frozen=True)
class DesiredSchedule:
    """The Schedule to send, with the parts the comparison needs as values."""

    schedule_id: str
    schedule: Schedule
    run: RunInput
    memo: dict[str, Any]
    search_attributes: dict[str, Any]
    jitter: timedelta | None


def catchup_window(spec: ScheduleSpecModel) -> timedelta:
    return max(parse_duration(spec.catchup_window), MIN_CATCHUP_WINDOW)


def spec_digest(spec: ScheduleSpecModel) -> str:
    """A digest of what Temporal rewrites (cron strings, the catch-up window)."""
    basis = {
        "cron": list(spec.cron),
        "catchupWindow": catchup_window(spec).total_seconds(),
    }
    text = json.dumps(basis, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def schedule_note(namespace: str, name: str, spec: ScheduleSpecModel) -> str:
    """The schedule's note: who manages it, why it is paused, and the spec digest."""
    owner = f"WorkflowDefinition {namespace}/{name}"
    if spec.paused:
        text = f"Paused by spec.schedule.paused of {owner}; set it to false to resume."
    else:
        text = f"Managed by Temporal Flow for {owner}; edit the WorkflowDefinition, not this."
    return f"{text} [spec {spec_digest(spec)}]"


def identity(definition: WorkflowDefinition) -> tuple[str, str]:
    namespace, name = definition.metadata.namespace, definition.metadata.name
    if not namespace or not name:
        raise ValueError("the WorkflowDefinition needs metadata.namespace and metadata.name")
    return namespace, name


def desired_schedule(
    definition: WorkflowDefinition,
    spec: ScheduleSpecModel,
    task_queue: str | None,
    version: str | None,
) -> DesiredSchedule:
    """The Schedule a definition's ``spec.schedule`` asks for. Raises ``InvalidSchedule``
    when the document or the input is over Temporal's payload limit; the cron expressions
    and the time zone are Temporal's to check (``create`` or ``update`` refuses them)."""
    namespace, name = identity(definition)
    run = RunInput(
        document=definition.spec.workflow.model_dump(mode="json", by_alias=True),
        input=spec.input,
        definition=DefinitionRef(name=name, namespace=namespace, version=version),
    )
    for field, value, what in (
        ("spec.schedule.input", run.input, "the scheduled runs' input"),
        ("spec.workflow", run.model_dump(mode="json"), "the document with the scheduled input"),
    ):
        try:
            check_payload(value, what)
        except WorkflowError as err:
            raise InvalidSchedule(field, str(err)) from err
    sid = schedule_id(namespace, name)
    run_memo = memo(run)
    attributes = search_attributes(run)
    jitter = parse_duration(spec.jitter) if spec.jitter else None
    jitter = jitter or None  # a zero jitter is no jitter, as Temporal stores it
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE,
            run,
            id=sid,
            task_queue=task_queue or definition.spec.task_queue,
            memo=run_memo,
            typed_search_attributes=attributes,
        ),
        spec=ScheduleSpec(
            cron_expressions=list(spec.cron),
            time_zone_name=spec.timezone,
            jitter=jitter,
        ),
        policy=SchedulePolicy(
            overlap=_OVERLAP[spec.overlap],
            catchup_window=catchup_window(spec),
        ),
        state=TemporalScheduleState(
            paused=spec.paused,
            note=schedule_note(namespace, name, spec),
        ),
    )
    return DesiredSchedule(
        schedule_id=sid,
        schedule=schedule,
        run=run,
        memo=run_memo,
        search_attributes=attribute_values(attributes),
        jitter=jitter,
    )


def attribute_values(attributes: TypedSearchAttributes) -> dict[str, Any]:
    return {pair.key.name: pair.value for pair in attributes}
