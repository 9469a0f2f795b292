"""`python -m tflow_listeners webhook` as the operator runs it: configured by environment
variables with its secret in a mounted file, it hands events to Temporal, logs JSON lines
naming the event, workflow and run, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import aiohttp
import pytest
from listener_process import start_listener, stop_listener
from temporalio.client import Client

from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_workers.cloudevents import event_workflow_id

pytestmark = pytest.mark.integration


async def test_cli_serves_events_from_env_configuration(
    temporal: TemporalServer, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    port = free_port()
    (tmp_path / "token").write_text("cli-token\n")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "TFLOW_LISTENER_PORT": str(port),
        "TFLOW_LISTENER_HOST": "127.0.0.1",
        "TFLOW_LISTENER_TASK_QUEUE": task_queue,
        "TFLOW_LISTENER_BEARER_TOKEN_FILE": str(tmp_path / "token"),
        "TFLOW_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "listener.log"
    process = await start_listener(env, "webhook", "--path", "/in", log_path=log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert process.returncode is None, log_path.read_text()
                try:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the listener never became ready")
            event_id = uuid.uuid4().hex
            body = {"specversion": "1.0", "id": event_id, "source": "cli", "type": "incident"}
            async with http.post(f"{base}/in", json=body) as response:
                assert response.status == 401
            async with http.post(
                f"{base}/in", json=body, headers={"Authorization": "Bearer cli-token"}
            ) as response:
                answer = await response.json()
                assert response.status == 202, answer
        workflow_id = event_workflow_id("cli", event_id)
        assert answer["events"][0]["workflowId"] == workflow_id
        handle = temporal_client.get_workflow_handle(workflow_id)
        described = await handle.describe()
        assert described.task_queue == task_queue
        await handle.terminate("test done")
    finally:
        code = await stop_listener(process)
    output = log_path.read_text()
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    serving = f"webhook listener on 127.0.0.1:{port}/in (auth: bearer; run control: off)"
    assert any(line["message"].startswith(serving) for line in lines)
    [started] = [line for line in lines if line.get("event_id") == event_id]
    assert started["workflow_id"] == workflow_id
    assert started["run_id"] == described.run_id
    assert started["level"] == "INFO"
