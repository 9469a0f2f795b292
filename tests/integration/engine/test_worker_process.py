"""The worker as a process: `tflow-worker` serves a document's run, answers health probes,
exports the SDK's Prometheus metrics, logs JSON lines that carry the run's ids, and shuts
down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from temporalio.client import Client

from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_workers.engine.model import WORKFLOW_TYPE, DefinitionRef, RunInput

pytestmark = pytest.mark.integration


def _spawn(argv: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return None


@asynccontextmanager
async def _start_worker(
    temporal: TemporalServer,
    task_queue: str,
    logs: Path,
    functions: str,
    *flags: str,
) -> AsyncIterator[tuple[subprocess.Popen[bytes], int]]:
    """`tflow-worker` serving ``task_queue`` with the test functions ``functions``, once
    its /readyz answers, logging to ``logs``/worker.log; the process and its health port.
    Killed on the way out."""
    health = free_port()
    env = {
        **os.environ,
        "TFLOW_FUNCTIONS": functions,
        "PYTHONPATH": str(Path(__file__).parents[2] / "support"),
    }
    argv = [
        sys.executable,
        "-m",
        "tflow_workers.worker",
        "--task-queue",
        task_queue,
        "--address",
        temporal.address,
        "--health-port",
        str(health),
        *flags,
    ]
    with (logs / "worker.log").open("w") as log:
        proc = _spawn(argv, log, env)
        try:
            # Generous: a busy two-core machine takes a while to import the SDKs.
            deadline = time.monotonic() + 120
            while (r := _get(f"http://127.0.0.1:{health}/readyz")) is None or r.status_code != 200:
                assert proc.poll() is None, (logs / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker never became ready"
                await asyncio.sleep(0.2)
            yield proc, health
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


async def test_worker_process_serves_probes_metrics_and_stops_on_sigterm(
    temporal: TemporalServer, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    metrics = free_port()
    async with _start_worker(
        temporal,
        task_queue,
        tmp_path,
        "shout=test_functions:shout",
        "--metrics-port",
        str(metrics),
        "--log-format",
        "json",
    ) as (proc, health):
        healthz = _get(f"http://127.0.0.1:{health}/healthz")
        assert healthz is not None
        assert healthz.status_code == 200
        unknown = _get(f"http://127.0.0.1:{health}/nothing")
        assert unknown is not None
        assert unknown.status_code == 404

        document = {
            "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
            "do": [{"loud": {"call": "shout", "with": {"text": "${ .text }"}}}],
        }
        workflow_id = f"w-{uuid.uuid4().hex[:8]}"
        handle = await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(
                document=document,
                input={"text": "hello"},
                definition=DefinitionRef(name="shouter", namespace="team-a"),
            ),
            id=workflow_id,
            task_queue=task_queue,
        )
        assert await handle.result() == "HELLO"

        # Its log is JSON lines; the run's start and end carry its ids as fields.
        def run_lines() -> list[dict[str, Any]]:
            text = (tmp_path / "worker.log").read_text()
            records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            return [r for r in records if r.get("workflow_id") == workflow_id]

        deadline = time.monotonic() + 10
        while not any(r["message"].startswith("run completed") for r in run_lines()):
            assert time.monotonic() < deadline, run_lines()
            await asyncio.sleep(0.2)
        lines = run_lines()
        assert [r["message"] for r in lines] == ["run started", "run completed"]
        for record in lines:
            assert record["run_id"] == handle.result_run_id
            assert record["definition"] == "team-a/shouter"
            assert record["namespace"] == "team-a"
            assert record["level"] == "INFO"
            # Temporal's own namespace stays in the SDK's object, apart from the tenant.
            assert record["temporal_workflow"]["namespace"] == temporal.namespace

        scraped = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert scraped is not None
        assert scraped.status_code == 200
        assert "temporal_workflow_completed" in scraped.text
        assert f'task_queue="{task_queue}"' in scraped.text

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "shutting down" in (tmp_path / "worker.log").read_text()


async def test_a_call_whose_worker_dies_is_retried_on_another_worker(
    temporal: TemporalServer, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    """The worker process is killed (SIGKILL: no graceful shutdown, nothing reported) while
    a call runs on it; the call stops heartbeating, and another worker on the task queue
    runs it again within the heartbeat timeout, long before the call's own timeout."""
    from test_functions import hang_once

    from tflow_workers.worker import build_worker

    marker = tmp_path / "first-call"
    async with _start_worker(temporal, task_queue, tmp_path, "hang=test_functions:hang_once") as (
        proc,
        _,
    ):
        document = {
            "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
            "do": [{"slow": {"call": "hang", "with": {"marker": str(marker)}}}],
        }
        handle = await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=document),
            id=f"w-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            await asyncio.sleep(0.2)
        proc.kill()
        proc.wait(timeout=30)
        killed_at = time.monotonic()
        async with build_worker(temporal_client, task_queue, functions={"hang": hang_once}):
            result = await asyncio.wait_for(handle.result(), timeout=90)
        assert result == {"answered": "after the first worker was lost"}
        # The heartbeat timeout (20 s), not the call's five minutes.
        assert time.monotonic() - killed_at < 80
        attempts = [
            e.activity_task_started_event_attributes.attempt
            async for e in handle.fetch_history_events()
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert attempts == [2]
