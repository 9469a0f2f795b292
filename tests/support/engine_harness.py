"""Runs documents on the in-process worker the `engine` fixture starts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput


class EngineHarness:
    """Runs documents on an in-process worker serving the interpreter on `task_queue`."""

    def __init__(self, client: Client, task_queue: str, definitions: Path) -> None:
        self.client = client
        self.task_queue = task_queue
        self.definitions = definitions

    async def start(
        self, document: dict[str, Any], input: Any = None, **kw: Any
    ) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=document, input=input),
            id=kw.pop("id", f"run-{uuid.uuid4()}"),
            task_queue=self.task_queue,
            execution_timeout=kw.pop("execution_timeout", timedelta(seconds=60)),
            **kw,
        )

    async def run(self, document: dict[str, Any], input: Any = None, **kw: Any) -> Any:
        handle = await self.start(document, input, **kw)
        return await handle.result()
