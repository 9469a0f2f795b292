"""Temporal Schedules for WorkflowDefinitions that carry a ``spec.schedule``.

Cron is Temporal's job: each scheduled WorkflowDefinition owns one Temporal Schedule whose
action starts the interpreter workflow with a snapshot of the definition's document. This
module builds that schedule from the spec, keeps it in sync ("create, else update", and
an update only when something differs), deletes it, and reads the run statistics the
operator reports in the definition's status.

Temporal rewrites what it is given: cron strings come back as structured calendars and a
catch-up window is raised to its minimum. Those two cannot be compared with what was sent,
so a digest of them travels in the schedule's note; everything else is compared with the
schedule's description field by field.

Errors the operator acts on are typed: ``TemporalUnavailable`` (set a condition, back off,
retry) and ``InvalidSchedule`` (the spec is wrong; the message names the field).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.client import ScheduleState as TemporalScheduleState
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from tflow_operator.api.common import parse_duration
from tflow_operator.api.workflowdefinition import (
    OverlapPolicy,
    WorkflowDefinition,
)
from tflow_operator.api.workflowdefinition import (
    Schedule as ScheduleSpecModel,
)
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.errors import WorkflowError, check_payload
from tflow_workers.engine.model import SA_DEFINITION, WORKFLOW_TYPE, DefinitionRef, RunInput
from tflow_workers.engine.starter import memo, search_attributes

SCHEDULE_ID_PREFIX: Final = "tflow-"
MANAGED_BY: Final = "temporal-flow"

# Temporal raises any shorter catch-up window, "0" included, to this minimum; the operator
# asks for the minimum itself so what it sends is what Temporal keeps.
MIN_CATCHUP_WINDOW: Final = timedelta(seconds=10)

# How many of a definition's most recent runs are looked at to find the latest start.
LAST_RUN_SCAN: Final = 50

_OVERLAP: Final[Mapping[OverlapPolicy, ScheduleOverlapPolicy]] = {
    OverlapPolicy.SKIP: ScheduleOverlapPolicy.SKIP,
    OverlapPolicy.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    OverlapPolicy.BUFFER_ALL: ScheduleOverlapPolicy.BUFFER_ALL,
    OverlapPolicy.CANCEL_OTHER: ScheduleOverlapPolicy.CANCEL_OTHER,
    OverlapPolicy.TERMINATE_OTHER: ScheduleOverlapPolicy.TERMINATE_OTHER,
    OverlapPolicy.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}

_UNAVAILABLE: Final = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
_NOTE_DIGEST = re.compile(r"\[spec ([0-9a-f]+)\]\s*$")


# --------------------------------------------------------------------------- errors


class ScheduleError(Exception):
    """Base of the errors this module raises on purpose."""


class InvalidSchedule(ScheduleError, ValueError):
    """``spec.schedule`` (or what it makes) was refused; ``field`` says which part."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- names


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


# --------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    min_name_length: int = 0
    first_name_value: int = 0


_SECOND = _CronField("second", 0, 59)
_MINUTE = _CronField("minute", 0, 59)
_HOUR = _CronField("hour", 0, 23)
_DAY_OF_MONTH = _CronField("day-of-month", 1, 31)
_MONTH = _CronField(
    "month",
    1,
    12,
    names=(
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ),
    min_name_length=3,
    first_name_value=1,
)
_DAY_OF_WEEK = _CronField(
    "day-of-week",
    0,
    7,
    names=("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"),
    min_name_length=2,
)
_YEAR = _CronField("year", 2000, 2100)

_LAYOUTS: Final[Mapping[int, tuple[_CronField, ...]]] = {
    5: (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK),
    6: (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK, _YEAR),
    7: (_SECOND, _MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK, _YEAR),
}
_MACROS: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NUMBER = re.compile(r"\+?[0-9]+")


def cron_problem(expression: str) -> str | None:
    """Why Temporal would refuse this cron expression, or None when it looks valid.

    Accepted, as Temporal reads them: five fields (minute hour day-of-month month
    day-of-week), six (a year last) or seven (a second first and a year last); ``*``,
    values, ``a-b`` ranges, ``/step`` and ``,`` lists; month and weekday names; the
    macros ``@yearly``, ``@monthly``, ``@weekly``, ``@daily``, ``@hourly``; ``@every``
    intervals and a ``CRON_TZ=`` prefix (both left to Temporal to check).
    """
    text = expression.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        _, space, text = text.partition(" ")
        if not space:
            return "a CRON_TZ= prefix must be followed by the schedule"
        text = text.strip()
    if text.startswith("@every"):
        return None
    text = _MACROS.get(text, text)
    if text.startswith("@"):
        return (
            f"unknown macro {text.split()[0]}; use @yearly, @monthly, @weekly, @daily, "
            "@hourly or @every <duration>"
        )
    fields = text.split()
    layout = _LAYOUTS.get(len(fields))
    if layout is None:
        return (
            f"has {len(fields)} fields; expected 5 (minute hour day-of-month month "
            "day-of-week), 6 (with a year last) or 7 (with a second first and a year last)"
        )
    for value, field in zip(fields, layout, strict=True):
        problem = _field_problem(value, field)
        if problem is not None:
            return f"{field.name} field {value!r}: {problem}"
    return None


def _field_problem(text: str, field: _CronField) -> str | None:
    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and (not _NUMBER.fullmatch(step) or int(step) < 1):
            return f"step {step!r} must be a whole number of at least 1"
        if base == "*":
            continue
        low_text, dash, high_text = base.partition("-")
        low, problem = _cron_value(low_text, field, field.low)
        if problem is None and dash:
            if "-" in high_text:
                return f"{base!r} is not a range like 1-5"
            _, problem = _cron_value(high_text, field, low)
        if problem is not None:
            return problem
    return None


def _cron_value(text: str, field: _CronField, low: int) -> tuple[int, str | None]:
    value: int | None = None
    if field.names and len(text) >= field.min_name_length:
        lowered = text.lower()
        for index, name in enumerate(field.names):
            if name.startswith(lowered):
                value = index + field.first_name_value
                break
    if value is None:
        if not _NUMBER.fullmatch(text):
            return 0, f"{text!r} is not a number" + (" or a name" if field.names else "")
        value = int(text)
    if not low <= value <= field.high:
        return value, f"{text} is out of range {low}-{field.high}"
    return value, None


def validate_schedule(spec: ScheduleSpecModel) -> None:
    """Raise ``InvalidSchedule`` naming the first cron expression Temporal would refuse."""
    for index, expression in enumerate(spec.cron):
        problem = cron_problem(expression)
        if problem is not None:
            raise InvalidSchedule(f"spec.schedule.cron[{index}]", f"{expression!r} {problem}")


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class _Desired:
    schedule_id: str
    schedule: Schedule
    run: RunInput
    memo: dict[str, Any]
    search_attributes: dict[str, Any]
    jitter: timedelta | None


def _catchup_window(spec: ScheduleSpecModel) -> timedelta:
    return max(parse_duration(spec.catchup_window), MIN_CATCHUP_WINDOW)


def _digest(spec: ScheduleSpecModel) -> str:
    """A digest of what Temporal rewrites (cron strings, the catch-up window)."""
    basis = {
        "cron": list(spec.cron),
        "catchupWindow": _catchup_window(spec).total_seconds(),
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
    return f"{text} [spec {_digest(spec)}]"


def _identity(definition: WorkflowDefinition) -> tuple[str, str]:
    namespace, name = definition.metadata.namespace, definition.metadata.name
    if not namespace or not name:
        raise ValueError("the WorkflowDefinition needs metadata.namespace and metadata.name")
    return namespace, name


def _desired(
    definition: WorkflowDefinition,
    spec: ScheduleSpecModel,
    task_queue: str | None,
    version: str | None,
) -> _Desired:
    namespace, name = _identity(definition)
    validate_schedule(spec)
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
            catchup_window=_catchup_window(spec),
        ),
        state=TemporalScheduleState(
            paused=spec.paused,
            note=schedule_note(namespace, name, spec),
        ),
    )
    return _Desired(
        schedule_id=sid,
        schedule=schedule,
        run=run,
        memo=run_memo,
        search_attributes=_attribute_values(attributes),
        jitter=jitter,
    )


def _attribute_values(attributes: TypedSearchAttributes) -> dict[str, Any]:
    return {pair.key.name: pair.value for pair in attributes}


# --------------------------------------------------------------------------- comparison


async def _decode(client: Client, payloads: Sequence[Payload]) -> list[Any] | None:
    try:
        return await client.data_converter.decode(list(payloads))
    except Exception:  # an action someone else wrote may not decode; it differs then
        return None


def _canonical(client: Client, value: Any) -> Any:
    """``value`` as it reads back after a trip through the client's converter."""
    converter = client.data_converter.payload_converter
    return converter.from_payloads(converter.to_payloads([value]))[0]


async def _differences(
    client: Client, current: ScheduleDescription, desired: _Desired
) -> list[str]:
    """What differs between the live schedule and the desired one, by spec field."""
    want = desired.schedule
    have = current.schedule
    changes: list[str] = []

    # The digest of cron and catch-up window rides in the note. A note without one was
    # written by someone else (a pause in the UI): the schedule is rewritten, cron and
    # all, without claiming to know that the cron differs.
    have_note, want_note = have.state.note or "", want.state.note or ""
    have_digest, want_digest = _NOTE_DIGEST.search(have_note), _NOTE_DIGEST.search(want_note)
    if have_digest is None or want_digest is None:
        changes.append("note")
    elif have_digest.group(1) != want_digest.group(1):
        changes.append("cron/catchupWindow")
    elif have_note != want_note and have.state.paused == want.state.paused:
        changes.append("note")
    if have.state.paused != want.state.paused:
        changes.append("paused")
    if (have.spec.time_zone_name or None) != (want.spec.time_zone_name or None):
        changes.append("timezone")
    if (have.spec.jitter or None) != desired.jitter:
        changes.append("jitter")
    if have.policy.overlap != want.policy.overlap:
        changes.append("overlap")

    action = have.action
    wanted = want.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not isinstance(
        wanted, ScheduleActionStartWorkflow
    ):
        changes.append("action")
        return changes
    if action.workflow != wanted.workflow:
        changes.append("workflowType")
    if action.id != wanted.id:
        changes.append("workflowId")
    if action.task_queue != wanted.task_queue:
        changes.append("taskQueue")
    changes.extend(await _argument_differences(client, action, desired.run))
    if await _memo_values(client, action.memo) != _canonical(client, desired.memo):
        changes.append("memo")
    if _attribute_values(action.typed_search_attributes) != desired.search_attributes:
        changes.append("searchAttributes")
    return changes


async def _argument_differences(
    client: Client, action: ScheduleActionStartWorkflow, run: RunInput
) -> list[str]:
    payloads = [arg for arg in action.args if isinstance(arg, Payload)]
    decoded = await _decode(client, payloads) if len(payloads) == len(action.args) else None
    wanted = _canonical(client, run)
    if decoded is None or len(decoded) != 1 or not isinstance(decoded[0], dict):
        return ["workflow", "input"]
    have: dict[str, Any] = decoded[0]
    labels = {"document": "workflow", "input": "input", "definition": "definition"}
    changes = [label for key, label in labels.items() if have.get(key) != wanted.get(key)]
    others = {k: v for k, v in have.items() if k not in labels}
    if not changes and others != {k: v for k, v in wanted.items() if k not in labels}:
        changes.append("action")
    return changes


async def _memo_values(client: Client, fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for key, value in (fields or {}).items():
        if not isinstance(value, Payload):
            values[key] = value
            continue
        decoded = await _decode(client, [value])
        if decoded is None:
            return None
        values[key] = decoded[0]
    return values


# --------------------------------------------------------------------------- operations


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
    if "time zone" in reason.lower():
        for index, expression in enumerate(spec.cron):
            if expression.strip().startswith(("TZ=", "CRON_TZ=")):
                return InvalidSchedule(f"spec.schedule.cron[{index}]", f"{expression!r}: {reason}")
        return InvalidSchedule(
            "spec.schedule.timezone",
            f"{reason} (use an IANA time zone name such as Europe/Paris)",
        )
    # The local check already passed every expression; Temporal does not say which one
    # it refused unless there is only one.
    if len(spec.cron) == 1:
        return InvalidSchedule("spec.schedule.cron[0]", f"{spec.cron[0]!r}: {reason}")
    return InvalidSchedule("spec.schedule.cron", reason)


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
    namespace, name = _identity(definition)
    spec = definition.spec.schedule
    if spec is None:
        deleted = await delete_schedule(client, namespace, name)
        return ScheduleState(schedule_id(namespace, name), "deleted" if deleted else "absent")
    desired = _desired(definition, spec, task_queue, version)
    handle = client.get_schedule_handle(desired.schedule_id)
    changes: list[str] = []

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate | None:
        changes[:] = await _differences(client, update.description, desired)
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
