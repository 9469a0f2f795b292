"""The worker as a process: `tflow-worker` serves a document's run, answers health probes,
exports the SDK's Prometheus metrics, and shuts down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import httpx
import pytest
from temporalio.client import Client

from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput

pytestmark = pytest.mark.integration


def _spawn(argv: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return None


async def test_worker_process_serves_probes_metrics_and_stops_on_sigterm(
    temporal: TemporalServer, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    health, metrics = free_port(), free_port()
    log = (tmp_path / "worker.log").open("w")
    env = {
        **os.environ,
        "TFLOW_FUNCTIONS": "shout=test_functions:shout",
        "PYTHONPATH": str(Path(__file__).parents[2] / "support"),
    }
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "tflow_workers.worker",
            "--task-queue",
            task_queue,
            "--address",
            temporal.address,
            "--health-port",
            str(health),
            "--metrics-port",
            str(metrics),
        ],
        log,
        env,
    )
    try:
        # Generous: a busy two-core machine takes a while to import the SDKs.
        deadline = time.monotonic() + 120
        while (r := _get(f"http://127.0.0.1:{health}/readyz")) is None or r.status_code != 200:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never became ready"
            await asyncio.sleep(0.2)
        healthz = _get(f"http://127.0.0.1:{health}/healthz")
        assert healthz is not None
        assert healthz.status_code == 200

        document = {
            "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
            "do": [{"loud": {"call": "shout", "with": {"text": "${ .text }"}}}],
        }
        result = await temporal_client.execute_workflow(
            WORKFLOW_TYPE,
            RunInput(document=document, input={"text": "hello"}),
            id=f"w-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        assert result == "HELLO"

        scraped = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert scraped is not None
        assert scraped.status_code == 200
        assert "temporal_workflow_completed" in scraped.text
        assert f'task_queue="{task_queue}"' in scraped.text

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "shutting down" in (tmp_path / "worker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
