"""The read side over Temporal, on top of `tflow_workers.run_operations` (which decides
what the namespace rule lets the UI reach): runs of a definition from visibility, paged
and filtered by the project's search attributes, and one run's view: its document and
graph from the history's first event, its task log from the `status` query, and each
call's input and output from its activity events."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from tflow_cli.ui.models import RunView, TaskData, Waiting
from tflow_workers import run_operations as ops
from tflow_workers.dsl.durations import parse_duration
from tflow_workers.engine.model import (
    SA_CURRENT_TASK,
    SA_DEFINITION,
    SA_EVENT_SOURCE,
    SA_EVENT_TYPE,
    SA_LISTENING,
    SA_NAMESPACE,
    WORKFLOW_TYPE,
    RunInput,
    RunStatus,
)
from tflow_workers.graph import to_data
from tflow_workers.run_operations import NamespaceRule, RunRefused

# A run's history is read for its document and its calls' data; past this many events
# the rest is left unread (a long run's page must still answer quickly).
HISTORY_EVENT_LIMIT = 5000

# Filters beyond run_operations' definition and status, on the project's search attributes.
_FILTERS = {
    "namespace": SA_NAMESPACE.name,
    "currentTask": SA_CURRENT_TASK.name,
    "eventType": SA_EVENT_TYPE.name,
    "eventSource": SA_EVENT_SOURCE.name,
}
_WAITING_KINDS = ("listen", "wait")


def _quoted(value: str, what: str) -> str:
    # Visibility queries are a SQL-like language: a quote or backslash in a filter value
    # could change the query, so such values are refused rather than escaped.
    if re.search(r'["\\\n]', value):
        raise RunRefused(400, "bad-filter", f"{what} may not contain quotes or backslashes")
    return f'"{value}"'


def list_query(rule: NamespaceRule, filters: Mapping[str, str]) -> str:
    """The visibility query for the runs page's filters (empty values are ignored)."""
    query = ops.list_query(rule, filters.get("definition") or None, filters.get("status") or None)
    for key, attribute in _FILTERS.items():
        if filters.get(key):
            query += f" AND {attribute} = {_quoted(filters[key], key)}"
    return query


async def list_page(
    client: Client,
    rule: NamespaceRule,
    filters: Mapping[str, str],
    page: str | None,
    page_size: int = ops.DEFAULT_PAGE_SIZE,
) -> ops.RunPage:
    """One page of runs, newest first. Only this page is fetched from visibility, so a
    definition with any number of runs answers in the time of one page."""
    if not any(filters.get(key) for key in _FILTERS):
        return await ops.list_runs(
            client,
            rule,
            filters.get("definition") or None,
            filters.get("status") or None,
            page,
            page_size,
        )
    query = list_query(rule, filters)
    try:
        token = base64.urlsafe_b64decode(page.encode()) if page else None
    except (binascii.Error, ValueError):
        raise RunRefused(400, "bad-page-token", "the page token is not valid") from None
    size = max(1, min(page_size, ops.MAX_PAGE_SIZE))
    iterator = client.list_workflows(query, page_size=size, next_page_token=token)
    try:
        await iterator.fetch_next_page(page_size=size)
    except RPCError as err:
        raise RunRefused(
            400, "invalid-argument", f"Temporal refused the query: {err.message}"
        ) from None
    except RuntimeError as err:
        raise unavailable(err) from None
    runs = [ops.run_summary(r) for r in iterator.current_page or []]
    after = iterator.next_page_token
    return ops.RunPage(
        runs=runs, next_page_token=base64.urlsafe_b64encode(after).decode() if after else None
    )


def unavailable(err: Exception) -> RunRefused:
    return RunRefused(503, "temporal-unavailable", f"Temporal is not reachable: {err}")


def task_at(document: Mapping[str, Any], reference: str) -> Mapping[str, Any] | None:
    """The task a log reference (a JSON pointer such as `/do/2/review`) points at."""
    node: Any = document
    for part in reference.strip("/").split("/"):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node if isinstance(node, Mapping) else None


def _event_types(listen: Mapping[str, Any]) -> list[str]:
    to = listen.get("to")
    if not isinstance(to, Mapping):
        return []
    filters: list[Any] = []
    for mode in ("one", "any", "all"):
        value = to.get(mode)
        filters.extend(value if isinstance(value, list) else [value] if value else [])
    types: list[str] = []
    for item in filters:
        with_ = item.get("with") if isinstance(item, Mapping) else None
        kind = with_.get("type") if isinstance(with_, Mapping) else None
        if isinstance(kind, str) and kind not in types:
            types.append(kind)
    return types


def waiting(document: Mapping[str, Any] | None, status: RunStatus) -> list[Waiting]:
    """The tasks that sit in a `listen` or a `wait`: what they wait for and until when."""
    found: list[Waiting] = []
    for entry in status.log:
        if entry.outcome != "running" or entry.kind not in _WAITING_KINDS:
            continue
        task = task_at(document, entry.reference) if document else None
        events: list[str] = []
        timeout: Any = None
        if task is not None:
            if entry.kind == "listen" and isinstance(task.get("listen"), Mapping):
                events = _event_types(task["listen"])
            after = task.get("timeout")
            timeout = after.get("after") if isinstance(after, Mapping) else None
            if entry.kind == "wait":
                timeout = task.get("wait")
        deadline: datetime | None = None
        if timeout is not None:
            try:
                deadline = entry.started_at + parse_duration(timeout)
            except (ValueError, TypeError):
                deadline = None
        found.append(
            Waiting(
                reference=entry.reference,
                name=entry.name,
                kind=entry.kind,
                events=events,
                timeout=timeout if isinstance(timeout, str) else None,
                deadline=deadline,
            )
        )
    return found


async def _decoded(client: Client, payloads: list[Payload], hint: Any = None) -> list[Any]:
    hints = [hint] * len(payloads) if hint is not None else None
    return await client.data_converter.decode(payloads, hints)


async def read_history(
    client: Client, workflow_id: str, run_id: str
) -> tuple[RunInput | None, list[TaskData], list[str]]:
    """The run's input (with its document) and its calls' data, decoded through the
    client's data converter (so through the payload codec when a key is configured)."""
    notes: list[str] = []
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    run_input: RunInput | None = None
    calls: dict[int, TaskData] = {}
    seen = 0
    try:
        async for event in handle.fetch_history_events():
            seen += 1
            if seen > HISTORY_EVENT_LIMIT:
                notes.append(
                    f"only the first {HISTORY_EVENT_LIMIT} history events were read for "
                    "the calls' inputs and outputs"
                )
                break
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
                run_input = await _run_input(client, payloads, notes)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                reference = ""
                if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
                    (summary,) = await _decoded(client, [event.user_metadata.summary])
                    reference = str(summary)
                (argument,) = await _decoded(client, list(attrs.input.payloads)[:1]) or [None]
                calls[event.event_id] = TaskData(
                    reference=reference, activity=attrs.activity_type.name, input=argument
                )
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                if done.scheduled_event_id in calls:
                    result = await _decoded(client, list(done.result.payloads))
                    calls[done.scheduled_event_id].output = result[0] if result else None
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                failed = event.activity_task_failed_event_attributes
                if failed.scheduled_event_id in calls:
                    calls[failed.scheduled_event_id].failure = failed.failure.message
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            notes.append("the run's history is gone (past the namespace's retention)")
        else:
            raise RunRefused(
                503, "temporal-unavailable", f"reading the history failed: {err.message}"
            ) from None
    except RuntimeError as err:
        raise unavailable(err) from None
    return run_input, list(calls.values()), notes


async def _run_input(client: Client, payloads: list[Payload], notes: list[str]) -> RunInput | None:
    if not payloads:
        notes.append("the run's history carries no input, so no document to draw")
        return None
    try:
        (value,) = await _decoded(client, payloads[:1])
        return RunInput.model_validate(value)
    except (ValidationError, ValueError, TypeError, RuntimeError) as err:
        # Runs started before the document travelled with the run, or by another engine.
        notes.append(
            "the run's history does not carry a Serverless Workflow document in the form "
            f"this version reads, so its graph cannot be drawn ({type(err).__name__})"
        )
        return None


async def run_view(
    client: Client,
    described: WorkflowExecutionDescription,
    *,
    query_timeout: float = 5.0,
    temporal_ui: str | None = None,
) -> RunView:
    """The run's page, for a run the caller was found to reach (`ops.own_run` and the
    server's access check)."""
    attrs = described.typed_search_attributes
    view = RunView(
        workflow_id=described.id,
        run_id=described.run_id,
        workflow_type=described.workflow_type,
        task_queue=described.task_queue,
        definition=attrs.get(SA_DEFINITION),
        namespace=attrs.get(SA_NAMESPACE),
        status=ops.status_name(described.status),
        started=described.start_time,
        closed=described.close_time,
        listening=list(attrs.get(SA_LISTENING) or []),
    )
    if temporal_ui:
        view.temporal_url = (
            f"{temporal_ui.rstrip('/')}/namespaces/{quote(client.namespace, safe='')}"
            f"/workflows/{quote(described.id, safe='')}/{described.run_id}/history"
        )
    if described.workflow_type != WORKFLOW_TYPE:
        view.notes.append(
            f"a {described.workflow_type} run, not a flow run: it has no document or task log"
        )
        return view
    run_input, view.task_data, notes = await read_history(client, described.id, described.run_id)
    view.notes.extend(notes)
    if run_input is not None:
        view.document = run_input.document
        try:
            view.graph = to_data(run_input.document)
        except ValueError as err:
            view.notes.append(f"the document cannot be drawn: {err}")
    try:
        status, note = await ops.run_status(client, described, timedelta(seconds=query_timeout))
    except RuntimeError as err:
        raise unavailable(err) from None
    if status is None:
        view.notes.append(note or "no task log")
        return view
    view.phase = status.phase
    view.current_task = status.current_task
    view.log = [e.model_dump(mode="json", exclude_none=True) for e in status.log]
    view.log_dropped = status.log_dropped
    view.output = status.output
    view.error = status.error.as_data() if status.error else None
    view.waiting = waiting(run_input.document if run_input else None, status)
    return view
