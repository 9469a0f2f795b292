"""`tflow runs`, `tflow signal`, `tflow cancel`, `tflow send`: finding and steering runs on a
Temporal server, and sending events in the way listeners do."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import httpx
from temporalio.client import Client

from tflow_cli import output
from tflow_workers.engine.model import (
    SA_CURRENT_TASK,
    SA_DEFINITION,
    WORKFLOW_TYPE,
)
from tflow_workers.run_operations import QUERY_TIMEOUT, STATUSES, run_status, status_name


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def list_query(definition: str | None, status: str | None) -> str:
    clauses = [f'WorkflowType = "{WORKFLOW_TYPE}"']
    if definition:
        clauses.append(f'TflowDefinition = "{definition}"')
    if status:
        clauses.append(f'ExecutionStatus = "{STATUSES[status]}"')
    return " AND ".join(clauses)


async def list_runs(
    client: Client, definition: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async for run in client.list_workflows(list_query(definition, status), limit=limit):
        attrs = run.typed_search_attributes
        rows.append(
            {
                "workflowId": run.id,
                "runId": run.run_id,
                "definition": attrs.get(SA_DEFINITION),
                "status": status_name(run.status),
                "currentTask": attrs.get(SA_CURRENT_TASK),
                "started": run.start_time.isoformat() if run.start_time else None,
                "closed": run.close_time.isoformat() if run.close_time else None,
            }
        )
    return rows


def print_runs(rows: list[dict[str, Any]]) -> None:
    output.table(
        [
            [
                r["workflowId"],
                r["definition"] or "-",
                r["status"],
                r["currentTask"] or "-",
                _when(datetime.fromisoformat(r["started"]) if r["started"] else None),
            ]
            for r in rows
        ],
        ["workflow id", "definition", "status", "current task", "started"],
        sys.stdout,
    )


async def show_run(client: Client, workflow_id: str) -> dict[str, Any]:
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    report: dict[str, Any] = {
        "workflowId": described.id,
        "runId": described.run_id,
        "type": described.workflow_type,
        "taskQueue": described.task_queue,
        "status": status_name(described.status),
        "definition": described.typed_search_attributes.get(SA_DEFINITION),
        "started": described.start_time.isoformat() if described.start_time else None,
        "closed": described.close_time.isoformat() if described.close_time else None,
    }
    status, note = await run_status(client, described, QUERY_TIMEOUT)
    if status is None:
        report["log"] = None
        report["note"] = note
        return report
    report["phase"] = status.phase
    report["currentTask"] = status.current_task
    report["output"] = status.output
    report["error"] = status.error.as_data() if status.error else None
    report["log"] = [e.model_dump(mode="json", exclude_none=True) for e in status.log]
    report["logDropped"] = status.log_dropped
    return report


def print_run(report: dict[str, Any]) -> None:
    for key in (
        "workflowId",
        "definition",
        "status",
        "phase",
        "currentTask",
        "taskQueue",
        "started",
        "closed",
    ):
        if report.get(key) is not None:
            print(f"{key + ':':14} {report[key]}")
    if report.get("error"):
        print(f"{'error:':14} {json.dumps(report['error'])}")
    elif report.get("output") is not None:
        print(f"{'output:':14} {json.dumps(report['output'])}")
    print()
    if report.get("log") is None:
        print(report.get("note", "no task log"))
    else:
        output.task_log(report["log"], sys.stdout)


async def send_via_webhook(url: str, event: Any, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json=event, headers=headers)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"body": response.text}
    body["httpStatus"] = response.status_code
    return body
