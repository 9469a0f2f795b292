"""Temporal Schedules for WorkflowDefinitions that carry a ``spec.schedule``.

Cron is Temporal's job: each scheduled WorkflowDefinition owns one Temporal Schedule whose
action starts the interpreter workflow with a snapshot of the definition's document. This
module keeps that schedule in sync ("create, else update", and an update only when
something differs), deletes it, and reads the run statistics the operator reports in the
definition's status. What the schedule should be is :mod:`tflow_operator.schedule_spec`;
what differs from the live one is :mod:`tflow_operator.schedule_diff`.

Errors the operator acts on are typed: ``TemporalUnavailable`` (set a condition, back off,
retry) and ``InvalidSchedule`` (the spec is wrong; the message names the field). Temporal
validates the cron expressions and the time zone itself; its answer is translated into
``InvalidSchedule``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from temporalio.client import (
    Client,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from tflow_operator.api.workflowdefinition import Schedule as ScheduleSpecModel
from tflow_operator.api.workflowdefinition import WorkflowDefinition
from tflow_operator.schedule_diff import differences
from tflow_operator.schedule_spec import (
    InvalidSchedule,
    ScheduleError,
    definition_query,
    desired_schedule,
    identity,
    schedule_id,
)
from tflow_workers.connection import TemporalUnavailable

__all__ = [
    "InvalidSchedule",
    "RunStats",
    "ScheduleError",
    "ScheduleState",
    "delete_schedule",
    "describe_schedule",
    "reconcile_schedule",
    "run_stats",
    "schedule_id",
]

MANAGED_BY: Final = "temporal-flow"

# How many of a definition's most recent runs are looked at to find the latest start.
LAST_RUN_SCAN: Final = 50

_UNAVAILABLE: Final = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


Outcome = Literal["created", "updated", "unchanged", "deleted", "absent"]


@dataclass(frozen=True)
class ScheduleState:
    """What ``reconcile_schedule`` did to the definition's Temporal Schedule.

    ``changes`` names what differed before an update (``cron/catchupWindow``, ``paused``,
    ``timezone``, ``jitter``, ``overlap``, ``workflow``, ``input``, ``definition``,
    ``taskQueue``, ``workflowId``, ``workflowType``, ``memo``, ``searchAttributes``,
    ``note``, ``action``).
    """

    schedule_id: str
    outcome: Outcome
    changes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.outcome in ("created", "updated", "deleted")


@dataclass(frozen=True)
class RunStats:
    """Run statistics of one definition, for its status."""

    last_run: datetime | None
    next_run: datetime | None
    running: int


_SPEC_REFUSED: Final = "Invalid schedule spec: "


@contextmanager
def _temporal_errors(spec: ScheduleSpecModel | None = None) -> Iterator[None]:
    """Turn Temporal's transport and validation failures into this module's errors."""
    try:
        yield
    except RPCError as err:
        if err.status in _UNAVAILABLE:
            raise TemporalUnavailable(f"Temporal is unavailable: {err.message}") from err
        if err.status != RPCStatusCode.INVALID_ARGUMENT:
            raise
        if spec is not None and err.message.startswith(_SPEC_REFUSED):
            raise _invalid_spec(err.message.removeprefix(_SPEC_REFUSED), spec) from err
        # Not the spec's fault: e.g. the Tflow search attributes are not registered.
        raise ScheduleError(f"Temporal refused the request: {err.message}") from err
    except RuntimeError as err:
        # A lazily connecting client reports its failed first connection this way.
        if "connect" in str(err).lower():
            raise TemporalUnavailable(f"Temporal is unavailable: {err}") from err
        raise


def _invalid_spec(reason: str, spec: ScheduleSpecModel) -> InvalidSchedule:
    """Name the field behind Temporal's "Invalid schedule spec" answer."""
    if "conflicting timezone" in reason.lower():
        # Temporal reads every expression in one zone: a CRON_TZ= prefix must name
        # spec.schedule.timezone's.
        for index, expression in enumerate(spec.cron):
            zone = _zone_prefix(expression)
            if zone is not None and zone != spec.timezone:
                return InvalidSchedule(
                    f"spec.schedule.cron[{index}]",
                    f"{expression!r}: {reason}: its CRON_TZ={zone} differs from "
                    f"spec.schedule.timezone {spec.timezone}",
                )
    if "time zone" in reason.lower():
        for index, expression in enumerate(spec.cron):
            if expression.strip().startswith(("TZ=", "CRON_TZ=")):
                return InvalidSchedule(f"spec.schedule.cron[{index}]", f"{expression!r}: {reason}")
        return InvalidSchedule(
            "spec.schedule.timezone",
            f"{reason} (use an IANA time zone name such as Europe/Paris)",
        )
    # Temporal names the cron field at fault ("Minute is not in range [0-59]") but not
    # which of several expressions holds it.
    if len(spec.cron) == 1:
        return InvalidSchedule("spec.schedule.cron[0]", f"{spec.cron[0]!r}: {reason}")
    quoted = ", ".join(repr(c) for c in spec.cron)
    return InvalidSchedule("spec.schedule.cron", f"one of {quoted}: {reason}")


def _zone_prefix(expression: str) -> str | None:
    """The zone of a ``CRON_TZ=Zone`` (or ``TZ=Zone``) prefix, or None."""
    head, _, _ = expression.strip().partition(" ")
    for prefix in ("CRON_TZ=", "TZ="):
        if head.startswith(prefix):
            return head.removeprefix(prefix)
    return None


async def reconcile_schedule(
    client: Client,
    definition: WorkflowDefinition,
    task_queue: str | None = None,
    *,
    version: str | None = None,
) -> ScheduleState:
    """Make the definition's Temporal Schedule match ``spec.schedule``.

    Creates the schedule when it does not exist, updates it when anything differs and
    leaves it untouched otherwise. A definition without ``spec.schedule`` has its
    schedule deleted (``deleted``, or ``absent`` when there was none).

    Scheduled runs start the interpreter with the document as it is now (a snapshot) and
    ``spec.schedule.input``, on ``task_queue`` (default: ``spec.taskQueue``), indexed
    under the definition and ``version`` (default: the document's version).

    Raises ``InvalidSchedule`` (the spec is wrong; the message names the field),
    ``TemporalUnavailable`` (retry later) or ``ScheduleError`` (Temporal refused for a
    reason outside the spec, such as unregistered search attributes).
    """
    namespace, name = identity(definition)
    spec = definition.spec.schedule
    if spec is None:
        deleted = await delete_schedule(client, namespace, name)
        return ScheduleState(schedule_id(namespace, name), "deleted" if deleted else "absent")
    desired = desired_schedule(definition, spec, task_queue, version)
    handle = client.get_schedule_handle(desired.schedule_id)
    changes: list[str] = []

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate | None:
        changes[:] = await differences(client, update.description, desired)
        return ScheduleUpdate(schedule=desired.schedule) if changes else None

    with _temporal_errors(spec):
        for _ in range(2):
            try:
                await handle.update(updater)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            else:
                outcome: Outcome = "updated" if changes else "unchanged"
                return ScheduleState(desired.schedule_id, outcome, tuple(changes))
            try:
                await client.create_schedule(
                    desired.schedule_id,
                    desired.schedule,
                    memo={"definition": f"{namespace}/{name}", "managedBy": MANAGED_BY},
                )
            except ScheduleAlreadyRunningError:
                continue  # created concurrently: compare with that one
            return ScheduleState(desired.schedule_id, "created")
    raise ScheduleError(f"schedule {desired.schedule_id} kept appearing and disappearing")


async def delete_schedule(client: Client, namespace: str, name: str) -> bool:
    """Delete the definition's schedule; False when there was none. Runs it started
    keep running."""
    with _temporal_errors():
        try:
            await client.get_schedule_handle(schedule_id(namespace, name)).delete()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
    return True


async def describe_schedule(
    client: Client, namespace: str, name: str
) -> ScheduleDescription | None:
    """The definition's schedule as Temporal describes it, or None when there is none."""
    with _temporal_errors():
        try:
            return await client.get_schedule_handle(schedule_id(namespace, name)).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise


async def run_stats(client: Client, namespace: str, name: str, has_schedule: bool) -> RunStats:
    """When the definition's last run started, when the schedule starts the next one
    (None when paused or unscheduled), and how many of its runs are open.

    The last run is the latest of the schedule's recent actions and of the definition's
    runs in Temporal's visibility store (any starter: schedule, events, the CLI).
    """
    last_run: datetime | None = None
    next_run: datetime | None = None
    if has_schedule:
        described = await describe_schedule(client, namespace, name)
        if described is not None:
            info = described.info
            if info.recent_actions:
                last_run = max(action.started_at for action in info.recent_actions)
            if not described.schedule.state.paused and info.next_action_times:
                next_run = min(info.next_action_times)
    query = definition_query(namespace, name)
    with _temporal_errors():
        running = await client.count_workflows(f'{query} AND ExecutionStatus = "Running"')
        # Visibility lists open runs first, then closed ones by close time (the dev
        # server cannot ORDER BY), so the latest start is the maximum of the first page.
        async for execution in client.list_workflows(
            query, limit=LAST_RUN_SCAN, page_size=LAST_RUN_SCAN
        ):
            if last_run is None or execution.start_time > last_run:
                last_run = execution.start_time
    return RunStats(last_run=last_run, next_run=next_run, running=running.count)
