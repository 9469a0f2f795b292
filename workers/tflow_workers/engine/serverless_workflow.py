"""The Temporal workflow every document runs as: a thin shell around the interpreter.

The workflow sandbox imports this module afresh for every run it creates and keeps that
copy while the run is cached, so it holds only the `@workflow.defn` surface (run, the
dynamic signal, the status query). The interpreter itself is passed through and loaded
once per process (see `tflow_workers.engine.interpreter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from tflow_workers.engine.interpreter import DocumentInterpreter
    from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus


@workflow.defn(name=WORKFLOW_TYPE)
class ServerlessWorkflow:
    """Runs the Serverless Workflow document it was started with."""

    def __init__(self) -> None:
        self._interpreter = DocumentInterpreter()

    @workflow.run
    async def run(self, params: RunInput) -> Any:
        return await self._interpreter.run(params)

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal is an event for the run (`listen` tasks consume them)."""
        self._interpreter.on_signal(name, args)

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        return self._interpreter.status()
