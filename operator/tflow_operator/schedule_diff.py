"""How a live Temporal Schedule differs from the one a definition asks for, by spec field:
what decides between "updated" and "unchanged".

Cron and the catch-up window are compared through the digest in the schedule's note
(Temporal rewrites both); the action's arguments and memo are decoded with the client's
converter and compared with the desired ones after the same round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleDescription

from tflow_operator.schedule_spec import NOTE_DIGEST, DesiredSchedule, attribute_values
from tflow_workers.engine.model import RunInput


async def _decode(client: Client, payloads: Sequence[Payload]) -> list[Any] | None:
    try:
        return await client.data_converter.decode(list(payloads))
    except Exception:  # an action someone else wrote may not decode; it differs then
        return None


def _canonical(client: Client, value: Any) -> Any:
    """``value`` as it reads back after a trip through the client's converter."""
    converter = client.data_converter.payload_converter
    return converter.from_payloads(converter.to_payloads([value]))[0]


async def differences(
    client: Client, current: ScheduleDescription, desired: DesiredSchedule
) -> list[str]:
    """What differs between the live schedule and the desired one, by spec field."""
    want = desired.schedule
    have = current.schedule
    changes: list[str] = []

    # The digest of cron and catch-up window rides in the note. A note without one was
    # written by someone else (a pause in the UI): the schedule is rewritten, cron and
    # all, without claiming to know that the cron differs.
    have_note, want_note = have.state.note or "", want.state.note or ""
    have_digest, want_digest = NOTE_DIGEST.search(have_note), NOTE_DIGEST.search(want_note)
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
    if attribute_values(action.typed_search_attributes) != desired.search_attributes:
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
