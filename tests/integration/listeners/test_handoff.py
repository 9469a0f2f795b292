"""Handing events to Temporal: one RootOrchestratorWorkflow per event, redelivery is a
duplicate, and an unreachable Temporal is an error the listener must not acknowledge."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.process import free_port
from tflow_listeners.handoff import HandOff
from tflow_workers.cloudevents import CloudEvent, event_workflow_id
from tflow_workers.connection import TemporalUnavailable

pytestmark = pytest.mark.integration


async def test_started_then_duplicate(temporal_client: Client, task_queue: str) -> None:
    event = CloudEvent(id=uuid.uuid4().hex, source="test/handoff", type="incident")
    handoff = HandOff(temporal_client, task_queue)
    assert await handoff.submit(event) == "started"
    assert await handoff.submit(event) == "duplicate"
    handle = temporal_client.get_workflow_handle(event_workflow_id(event.source, event.id))
    described = await handle.describe()
    assert described.workflow_type == "RootOrchestratorWorkflow"
    await handle.terminate("test done")
    # Even once its run is closed, the same event is not started again.
    assert await handoff.submit(event) == "duplicate"


async def test_temporal_down_is_not_accepted() -> None:
    client = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    handoff = HandOff(client, "q")
    with pytest.raises(TemporalUnavailable):
        await handoff.submit(CloudEvent(id="1", source="s", type="t"))
