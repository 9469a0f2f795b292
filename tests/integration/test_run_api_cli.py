"""`tflow run-api` as the process the chart runs (Temporal from its flags, the apiserver
from the kubeconfig), driven by `tflow api ...` as a person would: start twice with one
key, list, show, history, signal, event, cancel, terminate; refusals exit 1 with the
problem on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_harness import EngineHarness
from polling import eventually, eventually_async
from run_api_objects import ALL_VERBS, definition, grant

from tflow_cli.main import main
from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer

pytestmark = pytest.mark.integration


@pytest.fixture
def run_api(
    kube: ControlPlane, crds: None, temporal: TemporalServer, tmp_path: Path
) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "run-api.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tflow_cli",
            "run-api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--address",
            temporal.address,
            "--namespace",
            temporal.namespace,
            "--log-format",
            "json",
        ],
        env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "run-api.log").read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(ready, timeout=60, what="the run API to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _argv(url: str, token_file: Path, args: tuple[str, ...]) -> list[str]:
    return ["api", "--url", url, "--token-file", str(token_file), *args]


def _answer(code: int, stdout: str, stderr: str) -> tuple[int, Any, str]:
    out = stdout if code == 0 else stderr
    try:
        return code, json.loads(out), stderr
    except ValueError:
        return code, None, stderr


async def api(url: str, token_file: Path, *args: str) -> tuple[int, Any, str]:
    """`tflow api ...`: the CLI's `main` in a thread of this process (the test's worker
    keeps its event loop), its output captured. A process per call cost about a second of
    start-up each, most of this test's time; `api_process` runs the real entry point."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(_argv(url, token_file, args))
        return code, out.getvalue(), err.getvalue()

    # stdout and stderr are the process's: the test runs one command at a time.
    code, stdout, stderr = await asyncio.to_thread(run)
    return _answer(code, stdout, stderr)


async def api_process(url: str, token_file: Path, *args: str) -> tuple[int, Any, str]:
    """`tflow api ...` as a process, as a person runs it."""
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tflow_cli", *_argv(url, token_file, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return _answer(result.returncode, result.stdout, result.stderr)


async def test_tflow_api_against_the_run_api_process(
    run_api: str,
    kube: ControlPlane,
    namespace: str,
    engine: EngineHarness,
    tmp_path: Path,
) -> None:
    definition(kube, namespace, "approval", engine.task_queue)
    token_file = tmp_path / "token"
    token_file.write_text(grant(kube, namespace, "alice", ALL_VERBS))
    ref = f"{namespace}/approval"
    key = uuid.uuid4().hex[:10]

    code, first, _ = await api_process(
        run_api, token_file, "start", ref, "--input", '{"orderId": "1"}', "--id", key
    )
    assert code == 0
    assert first["started"] is True
    code, again, _ = await api(
        run_api, token_file, "start", ref, "--input", '{"orderId": "1"}', "--id", key
    )
    assert (code, again["runId"], again["started"]) == (0, first["runId"], False)
    run_id = first["workflowId"]

    async def listening() -> bool:
        code, state, _ = await api(run_api, token_file, "show", namespace, run_id)
        return code == 0 and state["currentTask"] == "awaitApproval"

    await eventually_async(listening, "the run to listen")
    code, page, _ = await api(run_api, token_file, "history", namespace, run_id, "--page-size", "3")
    assert code == 0
    assert page["events"][0]["eventType"] == "WORKFLOW_EXECUTION_STARTED"
    code, answer, _ = await api(
        run_api, token_file, "signal", namespace, run_id, "approve", "--input", '{"by": "cli"}'
    )
    assert (code, answer["action"]) == (0, "signal approve")

    async def completed() -> bool:
        code, state, _ = await api(run_api, token_file, "show", namespace, run_id)
        return code == 0 and state["status"] == "completed"

    await eventually_async(completed, "the run to complete")
    code, state, _ = await api(run_api, token_file, "show", namespace, run_id)
    assert state["output"] == {"approvedBy": "cli"}
    code, page, _ = await api(run_api, token_file, "runs", ref, "--status", "completed")
    assert [r["workflowId"] for r in page["runs"]] == [run_id]

    # An event, a cancel and a terminate on fresh runs.
    ids = []
    for i in range(3):
        code, started, _ = await api(
            run_api, token_file, "start", ref, "--input", f'{{"orderId": "{i}"}}'
        )
        assert code == 0
        ids.append(started["workflowId"])
    code, _, _ = await api(
        run_api,
        token_file,
        "event",
        namespace,
        ids[0],
        "--type",
        "approve",
        "--data",
        '{"by": "e"}',
    )
    assert code == 0
    assert (await api(run_api, token_file, "cancel", namespace, ids[1]))[0] == 0
    assert (await api(run_api, token_file, "terminate", namespace, ids[2], "--reason", "no"))[
        0
    ] == 0

    async def settled() -> bool:
        states = [(await api(run_api, token_file, "show", namespace, i))[1]["status"] for i in ids]
        return states == ["completed", "cancelled", "terminated"]

    await eventually_async(settled, "the three runs to settle")

    # Refusals: the problem on stderr, exit 1.
    code, problem, _ = await api(
        run_api, token_file, "start", f"{namespace}/missing", "--input", "{}"
    )
    assert (code, problem["status"], problem["reason"]) == (1, 404, "no-such-definition")
    code, problem, _ = await api(run_api, token_file, "start", ref, "--input", '{"orderId": 1}')
    assert (code, problem["status"], problem["reason"]) == (1, 400, "invalid-input")
    forged = tmp_path / "forged"
    forged.write_text("not-a-token")
    code, problem, _ = await api_process(run_api, forged, "runs", ref)
    assert (code, problem["status"]) == (1, 401)
