"""The seed's incident flow end to end: notify for normal incidents; page, wait for an
acknowledgement, and escalate after 15 minutes without one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import samples
from histories import check_replay
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

INCIDENT = "incident-workflow.yaml"


def _worker(client: Client, task_queue: str) -> Worker:
    return build_worker(
        client, task_queue, EngineActivities(client=client), samples.functions(INCIDENT)
    )


@pytest.fixture
def hooks(http_service: str, monkeypatch: pytest.MonkeyPatch) -> str:
    base = f"{http_service}/hooks/{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("INCIDENT_WEBHOOK_URL", base)
    return base


async def _posted(base: str, channel: str) -> list[Any]:
    async with httpx.AsyncClient() as http:
        body: list[Any] = (await http.get(f"{base}/{channel}")).json()
        return body


async def _run(client: Client, task_queue: str, event: dict[str, Any]) -> Any:
    return await client.start_workflow(
        WORKFLOW_TYPE,
        RunInput(document=samples.document(INCIDENT), input=event),
        id=f"incident-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )


@pytest.fixture
async def incidents(temporal_client: Client, task_queue: str) -> AsyncIterator[str]:
    async with _worker(temporal_client, task_queue):
        yield task_queue


async def test_normal_incident_notifies_the_team(
    temporal_client: Client, incidents: str, hooks: str
) -> None:
    handle = await _run(
        temporal_client,
        incidents,
        {"incidentId": "inc-1", "source": "monitoring", "message": "disk at 80%"},
    )
    assert await handle.result() == {
        "incidentId": "inc-1",
        "severity": "normal",
        "status": "notified",
    }
    assert await _posted(hooks, "team") == [
        {
            "channel": "team",
            "incidentId": "inc-1",
            "text": "Incident inc-1 from monitoring: disk at 80%",
        }
    ]
    assert await _posted(hooks, "pager") == []
    await check_replay(handle, "incident-notify")


async def test_critical_incident_pages_and_waits_for_ack(
    temporal_client: Client, incidents: str, hooks: str
) -> None:
    handle = await _run(
        temporal_client,
        incidents,
        {"incidentId": "inc-2", "source": "monitoring", "message": "Critical system failure"},
    )
    for _ in range(100):
        status = await handle.query("status", result_type=RunStatus)
        if status.current_task == "acknowledged":
            break
        await asyncio.sleep(0.1)
    assert [p["incidentId"] for p in await _posted(hooks, "pager")] == ["inc-2"]
    await handle.signal("incident.acknowledged", {"by": "alice"})
    assert await handle.result() == {
        "incidentId": "inc-2",
        "severity": "critical",
        "status": "acknowledged",
        "by": "alice",
    }
    await check_replay(handle, "incident-acknowledged")


async def test_unacknowledged_incident_escalates_after_15_minutes(
    time_skipping: WorkflowEnvironment, task_queue: str, hooks: str
) -> None:
    async with _worker(time_skipping.client, task_queue):
        handle = await _run(
            time_skipping.client,
            task_queue,
            {"incidentId": "inc-3", "severity": "critical", "message": "db down"},
        )
        assert await handle.result() == {
            "incidentId": "inc-3",
            "severity": "critical",
            "status": "escalated",
        }
        await check_replay(handle, "incident-escalated")
    pages = await _posted(hooks, "pager")
    assert [(p["incidentId"], p["escalation"]) for p in pages] == [
        ("inc-3", False),
        ("inc-3", True),
    ]
    assert pages[1]["summary"] == "UNACKNOWLEDGED: db down"
