"""A worker serving the RootOrchestratorWorkflow and its routing activity.

The process is `tflow-worker --serve-orchestrator --routes-dir DIR --definitions-dir DIR`
(or `python -m tflow_workers.orchestrator ...`): the same entry point, probes, metrics
and graceful shutdown as the flow workers, on the router's task queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from tflow_workers.orchestrator.activities import OrchestratorActivities
from tflow_workers.orchestrator.workflow import RootOrchestratorWorkflow


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
