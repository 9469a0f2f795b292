"""A worker interceptor that logs each interpreter run where it runs: one line when it
starts and one when it ends (completed, failed, cancelled, continued as new), with the
run's ``definition`` (``namespace/name`` of its WorkflowDefinition) and ``namespace`` as
fields beside the workflow and run ids the SDK's workflow logger adds.

The lines go through ``workflow.logger``, which is silent while a run's history is being
replayed, so a worker that picks up a run after a restart does not log its start again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import CancelledError as TemporalCancelledError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from tflow_workers.engine.model import DefinitionRef, RunInput


def run_fields(args: Sequence[Any]) -> dict[str, str]:
    """The log fields of a run from its input (a RunInput, or its JSON form)."""
    first = args[0] if args else None
    definition: DefinitionRef | None = None
    if isinstance(first, RunInput):
        definition = first.definition
    elif isinstance(first, dict) and isinstance(first.get("definition"), dict):
        try:
            definition = DefinitionRef.model_validate(first["definition"])
        except ValueError:
            definition = None
    if definition is None:
        return {}
    return {
        "definition": f"{definition.namespace}/{definition.name}",
        "namespace": definition.namespace,
    }


class _RunLogInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        fields = run_fields(input.args)
        workflow.logger.info("run started", extra=fields)
        try:
            result = await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            workflow.logger.info("run continued as new", extra=fields)
            raise
        except (asyncio.CancelledError, TemporalCancelledError):
            if workflow.in_workflow():
                workflow.logger.info("run cancelled", extra=fields)
            raise
        except Exception as err:
            # An evicted run's coroutine is closed by the garbage collector, outside the
            # workflow's event loop, where the workflow logger cannot ask about replay.
            if workflow.in_workflow():
                workflow.logger.warning("run failed: %s", err, extra=fields)
            raise
        workflow.logger.info("run completed", extra=fields)
        return result


class RunLogInterceptor(Interceptor):
    """Logs the start and end of every workflow run the worker executes."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RunLogInbound
