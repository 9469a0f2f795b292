"""Temporal is the cron validator: every expression the dev server accepts, the operator's
reconcile turns into a schedule; every one it refuses comes back as `InvalidSchedule`
naming `spec.schedule.cron[0]` with Temporal's reason, when the schedule is created and
when an existing one is updated (which then keeps its previous spec)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from tflow_operator.api.workflowdefinition import WorkflowDefinition
from tflow_operator.schedules import (
    InvalidSchedule,
    delete_schedule,
    describe_schedule,
    reconcile_schedule,
)

pytestmark = pytest.mark.integration

NAMESPACE = "team-cron"

VALID = [
    "0 * * * *",
    "*/15 9-17 * * MON-FRI",
    "0 0 1 jan,jul *",
    "5,35 */2 1-31/3 * sun",
    "0 12 * * 7",
    "0 0 * * * 2030",
    "30 0 0 * * * *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@every 90m",
    "CRON_TZ=UTC 0 9 * * *",
    "0 9 * * Tu",
]
# Each with a word of Temporal's answer.
INVALID = [
    ("0 * * *", "5-7 fields"),
    ("0 * * * * * * *", "5-7 fields"),
    ("60 * * * *", "Minute"),
    ("0 24 * * *", "Hour"),
    ("0 0 0 * *", "DayOfMonth"),
    ("0 0 * 13 *", "Month"),
    ("0 0 * * 8", "DayOfWeek"),
    ("0 0 * * * 1999", "Year"),
    ("*/0 * * * *", "Step"),
    ("5-2 * * * *", "Minute"),
    ("1-2-3 * * * *", "dashes"),
    ("a * * * *", "Minute"),
    ("0 0 * * FUNDAY", "DayOfWeek"),
    ("0 0 * ja *", "Month"),
    ("@often", "5-7 fields"),
    ("CRON_TZ=Mars/Olympus 0 9 * * *", "Mars/Olympus"),
]


def definition(name: str, cron: str, timezone: str = "UTC") -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
            "spec": {
                "taskQueue": "cron-check",
                "schedule": {"cron": [cron], "timezone": timezone},
                "workflow": {
                    "document": {"dsl": "1.0.0", "namespace": "t", "name": "c", "version": "1"},
                    "do": [{"noop": {"set": {"ok": True}}}],
                },
            },
        }
    )


@pytest.fixture
async def name(temporal_client: Client) -> AsyncIterator[str]:
    value = f"cron-{uuid.uuid4().hex[:8]}"
    yield value
    await delete_schedule(temporal_client, NAMESPACE, value)


@pytest.mark.parametrize("expression", VALID)
async def test_valid_expression_becomes_a_schedule(
    temporal_client: Client, name: str, expression: str
) -> None:
    state = await reconcile_schedule(temporal_client, definition(name, expression))
    assert state.outcome == "created"
    assert await describe_schedule(temporal_client, NAMESPACE, name) is not None


@pytest.mark.parametrize(("expression", "words"), INVALID)
async def test_refused_expression_names_the_field(
    temporal_client: Client, name: str, expression: str, words: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        await reconcile_schedule(temporal_client, definition(name, expression))
    assert caught.value.field == "spec.schedule.cron[0]"
    assert str(caught.value).startswith(f"spec.schedule.cron[0]: {expression!r}: ")
    assert words in caught.value.reason
    assert await describe_schedule(temporal_client, NAMESPACE, name) is None


async def test_refused_update_keeps_the_schedule(temporal_client: Client, name: str) -> None:
    assert (await reconcile_schedule(temporal_client, definition(name, "0 3 * * *"))).changed
    with pytest.raises(InvalidSchedule, match="Hour is not in range") as caught:
        await reconcile_schedule(temporal_client, definition(name, "0 25 * * *"))
    assert caught.value.field == "spec.schedule.cron[0]"
    described = await describe_schedule(temporal_client, NAMESPACE, name)
    assert described is not None
    assert [[r.start for r in c.hour] for c in described.schedule.spec.calendars] == [[3]]


async def test_cron_tz_must_name_the_spec_time_zone(temporal_client: Client, name: str) -> None:
    tokyo = "CRON_TZ=Asia/Tokyo 0 9 * * *"
    with pytest.raises(InvalidSchedule, match="conflicting timezone names") as caught:
        await reconcile_schedule(temporal_client, definition(name, tokyo))
    assert caught.value.field == "spec.schedule.cron[0]"
    assert "differs from spec.schedule.timezone UTC" in caught.value.reason
    state = await reconcile_schedule(temporal_client, definition(name, tokyo, "Asia/Tokyo"))
    assert state.outcome == "created"
