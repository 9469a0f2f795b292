"""A WorkflowDefinition's Temporal Schedule on the real dev server: created with the spec's
cron, time zone, policies, pause and a snapshot of the document; left alone when nothing
changed; updated when something did; triggered runs that the engine completes; run
statistics; deletion; an unreachable server; a spec Temporal refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from engine_harness import EngineHarness
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.process import free_port
from tflow_operator.api.workflowdefinition import WorkflowDefinition
from tflow_operator.schedules import (
    InvalidSchedule,
    RunStats,
    delete_schedule,
    describe_schedule,
    reconcile_schedule,
    run_stats,
    schedule_id,
)
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.model import SA_DEFINITION, SA_VERSION

pytestmark = pytest.mark.integration

NAMESPACE = "team-sched"
T = TypeVar("T")


def document(*tasks: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "nightly", "version": version},
        "do": list(tasks) or [{"hello": {"set": {"greeting": '${ "hi " + .who }'}}}],
    }


def definition(
    name: str,
    task_queue: str,
    schedule: dict[str, Any] | None,
    workflow: dict[str, Any] | None = None,
) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
            "spec": {
                "taskQueue": task_queue,
                "schedule": schedule,
                "workflow": workflow or document(),
            },
        }
    )


@pytest.fixture
async def name(temporal_client: Client) -> AsyncIterator[str]:
    """A fresh definition name; its schedule is deleted after the test."""
    value = f"nightly-{uuid.uuid4().hex[:8]}"
    yield value
    await delete_schedule(temporal_client, NAMESPACE, value)


async def described(client: Client, name: str) -> ScheduleDescription:
    found = await describe_schedule(client, NAMESPACE, name)
    assert found is not None
    return found


async def decode(client: Client, values: Sequence[Any]) -> list[Any]:
    payloads = [value for value in values if isinstance(value, Payload)]
    assert len(payloads) == len(values)
    return await client.data_converter.decode(payloads)


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], seconds: float = 20.0
) -> T:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if ok(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_create_then_unchanged(temporal_client: Client, name: str) -> None:
    wfd = definition(
        name,
        "nightly-queue",
        {
            "cron": ["0 3 * * *", "30 */6 * * MON-FRI"],
            "timezone": "Europe/Paris",
            "overlap": "BufferOne",
            "catchupWindow": "5m",
            "jitter": "30s",
            "input": {"who": "scheduler"},
        },
    )
    state = await reconcile_schedule(temporal_client, wfd, version="1.0.0-abc123")
    assert (state.schedule_id, state.outcome) == (schedule_id(NAMESPACE, name), "created")

    desc = await described(temporal_client, name)
    spec, policy, sched_state = desc.schedule.spec, desc.schedule.policy, desc.schedule.state
    # Temporal keeps cron strings as structured calendars: one per expression.
    assert len(spec.calendars) == 2
    assert [r.start for r in spec.calendars[0].hour] == [3]
    assert [(r.start, r.end) for r in spec.calendars[1].day_of_week] == [(1, 5)]
    assert spec.time_zone_name == "Europe/Paris"
    assert spec.jitter == timedelta(seconds=30)
    assert policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert policy.catchup_window == timedelta(minutes=5)
    assert not sched_state.paused
    assert f"WorkflowDefinition {NAMESPACE}/{name}" in (sched_state.note or "")
    assert desc.info.next_action_times

    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "ServerlessWorkflow"
    assert action.id == schedule_id(NAMESPACE, name)
    assert action.task_queue == "nightly-queue"
    [run] = await decode(temporal_client, action.args)
    assert run["document"] == document()
    assert run["input"] == {"who": "scheduler"}
    assert run["definition"] == {"name": name, "namespace": NAMESPACE, "version": "1.0.0-abc123"}
    attributes = action.typed_search_attributes
    assert attributes.get(SA_DEFINITION) == f"{NAMESPACE}/{name}"
    assert attributes.get(SA_VERSION) == "1.0.0-abc123"
    assert action.memo is not None
    memo = {k: (await decode(temporal_client, [v]))[0] for k, v in action.memo.items()}
    assert memo == {"definition": f"{NAMESPACE}/{name}", "version": "1.0.0-abc123"}
    assert await desc.memo() == {"definition": f"{NAMESPACE}/{name}", "managedBy": "temporal-flow"}

    # A resync with nothing changed does not touch the schedule.
    again = await reconcile_schedule(temporal_client, wfd, version="1.0.0-abc123")
    assert (again.outcome, again.changes) == ("unchanged", ())
    after = await described(temporal_client, name)
    assert after.raw_description.conflict_token == desc.raw_description.conflict_token
    assert after.info.last_updated_at == desc.info.last_updated_at is None


async def test_changes_are_updated(temporal_client: Client, name: str) -> None:
    base: dict[str, Any] = {"cron": ["0 3 * * *"], "input": {"who": "a"}}

    async def apply(schedule: dict[str, Any], **kw: Any) -> tuple[str, tuple[str, ...]]:
        workflow = kw.pop("workflow", None)
        state = await reconcile_schedule(
            temporal_client, definition(name, "q1", schedule, workflow), **kw
        )
        return state.outcome, state.changes

    assert await apply(base) == ("created", ())
    assert await apply(base) == ("unchanged", ())
    token = (await described(temporal_client, name)).raw_description.conflict_token

    assert await apply({**base, "cron": ["0 4 * * *"]}) == ("updated", ("cron/catchupWindow",))
    desc = await described(temporal_client, name)
    assert desc.raw_description.conflict_token != token
    assert [r.start for r in desc.schedule.spec.calendars[0].hour] == [4]
    assert desc.info.last_updated_at is not None
    base["cron"] = ["0 4 * * *"]

    assert await apply({**base, "catchupWindow": "1h"}) == ("updated", ("cron/catchupWindow",))
    desc = await described(temporal_client, name)
    assert desc.schedule.policy.catchup_window == timedelta(hours=1)
    base["catchupWindow"] = "1h"

    assert await apply({**base, "timezone": "America/New_York"}) == ("updated", ("timezone",))
    base["timezone"] = "America/New_York"
    assert await apply({**base, "overlap": "AllowAll"}) == ("updated", ("overlap",))
    base["overlap"] = "AllowAll"
    assert await apply({**base, "jitter": "1m"}) == ("updated", ("jitter",))
    base["jitter"] = "1m"

    # Pausing: the schedule stays, paused with a note saying why; no next run is reported.
    assert await apply({**base, "paused": True}) == ("updated", ("paused",))
    desc = await described(temporal_client, name)
    assert desc.schedule.state.paused
    assert "spec.schedule.paused" in (desc.schedule.state.note or "")
    stats = await run_stats(temporal_client, NAMESPACE, name, has_schedule=True)
    assert stats.next_run is None
    assert await apply({**base, "paused": True}) == ("unchanged", ())
    # Someone resumes it in the Temporal UI: the next reconcile restores the spec's pause.
    await temporal_client.get_schedule_handle(schedule_id(NAMESPACE, name)).unpause(note="ui")
    assert await apply({**base, "paused": True}) == ("updated", ("note", "paused"))
    assert (await described(temporal_client, name)).schedule.state.paused
    assert await apply(base) == ("updated", ("paused",))
    desc = await described(temporal_client, name)
    assert not desc.schedule.state.paused
    stats = await run_stats(temporal_client, NAMESPACE, name, has_schedule=True)
    assert stats.next_run is not None
    assert stats.next_run > datetime.now(UTC)

    # The action: input, the document snapshot, the version, the task queue.
    assert await apply({**base, "input": {"who": "b"}}) == ("updated", ("input",))
    base["input"] = {"who": "b"}
    edited = document({"bye": {"set": {"done": True}}}, version="1.1.0")
    # Without an explicit version runs are indexed under the document's, which moved too.
    outcome, changes = await apply(base, workflow=edited)
    assert (outcome, set(changes)) == ("updated", {"workflow", "memo", "searchAttributes"})
    action = (await described(temporal_client, name)).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [run] = await decode(temporal_client, action.args)
    assert run["document"] == edited
    assert run["input"] == {"who": "b"}
    outcome, changes = await apply(base, workflow=edited, version="1.1.0-ff")
    assert outcome == "updated"
    assert set(changes) == {"definition", "memo", "searchAttributes"}
    outcome, changes = await apply(base, workflow=edited, version="1.1.0-ff", task_queue="q2")
    assert (outcome, changes) == ("updated", ("taskQueue",))
    assert await apply(base, workflow=edited, version="1.1.0-ff", task_queue="q2") == (
        "unchanged",
        (),
    )


async def test_trigger_runs_and_stats(
    temporal_client: Client, engine: EngineHarness, name: str
) -> None:
    waits = document(
        {"wait": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}},
        {"done": {"set": {"who": "${ $workflow.input.who }"}}},
    )
    wfd = definition(
        name, engine.task_queue, {"cron": ["0 0 1 1 *"], "input": {"who": "cron"}}, waits
    )
    assert (await reconcile_schedule(temporal_client, wfd)).outcome == "created"
    before = await run_stats(temporal_client, NAMESPACE, name, has_schedule=True)
    assert before == RunStats(last_run=None, next_run=before.next_run, running=0)
    assert before.next_run is not None

    triggered_at = datetime.now(UTC) - timedelta(seconds=1)
    await temporal_client.get_schedule_handle(schedule_id(NAMESPACE, name)).trigger()
    desc = await eventually(
        lambda: described(temporal_client, name), lambda d: bool(d.info.running_actions)
    )
    [execution] = desc.info.running_actions
    assert isinstance(execution, ScheduleActionExecutionStartWorkflow)
    workflow_id = execution.workflow_id
    assert workflow_id.startswith(schedule_id(NAMESPACE, name) + "-")

    stats = await eventually(
        lambda: run_stats(temporal_client, NAMESPACE, name, has_schedule=True),
        lambda s: s.running == 1,
    )
    assert stats.running == 1
    assert stats.last_run is not None
    assert stats.last_run >= triggered_at
    assert stats.next_run == before.next_run

    handle = temporal_client.get_workflow_handle(workflow_id)
    run_info = await handle.describe()
    assert run_info.typed_search_attributes.get(SA_DEFINITION) == f"{NAMESPACE}/{name}"
    assert await run_info.memo() == {"definition": f"{NAMESPACE}/{name}", "version": "1.0.0"}
    await handle.signal("go", {"ok": True})
    assert await handle.result() == {"who": "cron"}

    done = await eventually(
        lambda: run_stats(temporal_client, NAMESPACE, name, has_schedule=True),
        lambda s: s.running == 0,
    )
    assert done.running == 0
    assert done.last_run == stats.last_run

    # Without a schedule the last run still comes from the definition's runs.
    assert await delete_schedule(temporal_client, NAMESPACE, name)
    unscheduled = await eventually(
        lambda: run_stats(temporal_client, NAMESPACE, name, has_schedule=False),
        lambda s: s.last_run is not None,
    )
    assert unscheduled.next_run is None
    assert unscheduled.last_run is not None
    assert abs(unscheduled.last_run - stats.last_run) < timedelta(seconds=2)
    # The run outlives its schedule.
    assert (await handle.describe()).status is not None


async def test_delete_is_idempotent(temporal_client: Client, name: str) -> None:
    wfd = definition(name, "q", {"cron": ["@hourly"]})
    assert (await reconcile_schedule(temporal_client, wfd)).outcome == "created"
    assert await delete_schedule(temporal_client, NAMESPACE, name) is True
    assert await describe_schedule(temporal_client, NAMESPACE, name) is None
    assert await delete_schedule(temporal_client, NAMESPACE, name) is False
    # Created again after a delete, then removed by dropping spec.schedule.
    assert (await reconcile_schedule(temporal_client, wfd)).outcome == "created"
    unscheduled = definition(name, "q", None)
    assert (await reconcile_schedule(temporal_client, unscheduled)).outcome == "deleted"
    assert (await reconcile_schedule(temporal_client, unscheduled)).outcome == "absent"
    stats = await run_stats(temporal_client, NAMESPACE, name, has_schedule=True)
    assert stats == RunStats(last_run=None, next_run=None, running=0)


async def test_temporal_unreachable() -> None:
    client = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    wfd = definition("x", "q", {"cron": ["@daily"]})
    with pytest.raises(TemporalUnavailable):
        await reconcile_schedule(client, wfd)
    with pytest.raises(TemporalUnavailable):
        await delete_schedule(client, NAMESPACE, "x")
    with pytest.raises(TemporalUnavailable):
        await run_stats(client, NAMESPACE, "x", has_schedule=True)


@pytest.mark.parametrize(
    ("cron", "timezone", "field", "words"),
    [
        # Temporal names the cron field, not which of several expressions holds it.
        (["0 * * * *", "61 * * * *"], "UTC", "spec.schedule.cron", "Minute is not in range"),
        (["0 * * * * * * *"], "UTC", "spec.schedule.cron[0]", "5-7 fields"),
        (["@sometimes"], "UTC", "spec.schedule.cron[0]", "'@sometimes'"),
        (["0 12 * * FUNDAY"], "UTC", "spec.schedule.cron[0]", "DayOfWeek"),
        (["@every soon"], "UTC", "spec.schedule.cron[0]", "@every soon"),
        (["0 * * * *"], "Mars/Olympus_Mons", "spec.schedule.timezone", "Mars/Olympus_Mons"),
    ],
)
async def test_invalid_spec_names_the_field(
    temporal_client: Client, name: str, cron: list[str], timezone: str, field: str, words: str
) -> None:
    wfd = definition(name, "q", {"cron": cron, "timezone": timezone})
    with pytest.raises(InvalidSchedule) as caught:
        await reconcile_schedule(temporal_client, wfd)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in str(caught.value)
    assert await describe_schedule(temporal_client, NAMESPACE, name) is None
