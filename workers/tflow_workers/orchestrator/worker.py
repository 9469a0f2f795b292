"""The workers serving the RootOrchestratorWorkflow and its routing activities.

The process is `tflow-worker --serve-orchestrator --routes-dir DIR --definitions-dir DIR`
(or `python -m tflow_workers.orchestrator ...`): the same entry point, probes, metrics
and graceful shutdown as the flow workers, on the router's task queue. When the operator
maps Kubernetes namespaces to Temporal namespaces, one process polls the router's queue
in every one of them (listeners hand events to their own namespace's Temporal namespace,
and a flow's emitted events start the orchestrator where the flow runs).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from types import TracebackType
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from tflow_workers.orchestrator.activities import OrchestratorActivities
from tflow_workers.orchestrator.workflow import RootOrchestratorWorkflow
from tflow_workers.temporal_namespaces import client_for


def build_orchestrator_worker(
    client: Client, task_queue: str, activities: OrchestratorActivities, **options: Any
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RootOrchestratorWorkflow],
        activities=activities.all(),
        graceful_shutdown_timeout=options.pop("graceful_shutdown_timeout", timedelta(seconds=20)),
        **options,
    )


class OrchestratorWorkers:
    """One orchestrator worker per Temporal namespace in use, run as one: ``async with``
    starts them all and stops them all."""

    def __init__(
        self, client: Client, task_queue: str, activities: OrchestratorActivities, **options: Any
    ) -> None:
        self.namespaces = activities.temporal_namespaces.all()
        if client.namespace not in self.namespaces:
            self.namespaces = (client.namespace, *self.namespaces)
        self.workers = [
            build_orchestrator_worker(client_for(client, ns), task_queue, activities, **options)
            for ns in self.namespaces
        ]
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> OrchestratorWorkers:
        async with contextlib.AsyncExitStack() as stack:
            for worker in self.workers:
                await stack.enter_async_context(worker)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(kind, error, trace)
