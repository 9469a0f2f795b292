"""Replaying the histories of sample runs against the current interpreter.

Every sample-flow test hands its finished run to `check_replay`, which replays the run's
history with temporalio's Replayer (a nondeterminism error fails the test). With
TFLOW_RECORD_HISTORIES=1 (`make record-histories`) the history is also stored under
tests/data/histories/, and tests/unit/test_replay_histories.py replays every stored one,
so a change to the interpreter that breaks runs recorded by older code fails the suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tflow_devstack.tools import REPO_ROOT
from tflow_workers.engine.serverless_workflow import ServerlessWorkflow
from tflow_workers.orchestrator.workflow import RootOrchestratorWorkflow

HISTORY_DIR = REPO_ROOT / "tests" / "data" / "histories"


def replayer() -> Replayer:
    return Replayer(
        workflows=[ServerlessWorkflow, RootOrchestratorWorkflow],
        data_converter=pydantic_data_converter,
    )


async def check_replay(handle: WorkflowHandle[Any, Any], name: str | None = None) -> None:
    """Replay the run's history; with a name, `make record-histories` also stores it."""
    history = await handle.fetch_history()
    await replayer().replay_workflow(history)
    if name is not None and os.environ.get("TFLOW_RECORD_HISTORIES") == "1":
        store(name, history)


def store(name: str, history: WorkflowHistory) -> None:
    HISTORY_DIR.mkdir(parents=True, exist_ok=True)
    # The workflow id is kept with the events: a replay must use the original one (child
    # workflow ids derive from it).
    data = {"workflowId": history.workflow_id, **json.loads(history.to_json())}
    (HISTORY_DIR / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data.pop("workflowId"), data)
