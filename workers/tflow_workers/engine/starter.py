"""Starting a flow run: the one place that decides a run's id, task queue, search
attributes and memo, for every starter (the CLI, schedules, the root orchestrator, a
parent run's `run: workflow`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tflow_workers.engine.errors import ErrorType, WorkflowError, check_payload
from tflow_workers.engine.model import (
    SA_DEFINITION,
    SA_EVENT_SOURCE,
    SA_EVENT_TYPE,
    SA_NAMESPACE,
    SA_VERSION,
    WORKFLOW_TYPE,
    RunInput,
)


def run_identity(run: RunInput) -> tuple[str, str]:
    """The (name, version) a run is indexed under: the WorkflowDefinition's when there is
    one, else the document's own namespace/name."""
    document = run.document.get("document") or {}
    if run.definition is not None:
        name = f"{run.definition.namespace}/{run.definition.name}"
        version = run.definition.version or str(document.get("version", ""))
    else:
        name = f"{document.get('namespace', 'default')}/{document.get('name', 'unnamed')}"
        version = str(document.get("version", ""))
    return name, version


def search_attributes(run: RunInput) -> TypedSearchAttributes:
    name, version = run_identity(run)
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(SA_DEFINITION, name),
        SearchAttributePair(SA_VERSION, version),
    ]
    if run.definition is not None:
        # Only a WorkflowDefinition's run belongs to a Kubernetes namespace; an ad-hoc
        # document's own `namespace` is a label its author chose, not a tenant.
        pairs.append(SearchAttributePair(SA_NAMESPACE, run.definition.namespace))
    if run.event:
        if run.event.get("type"):
            pairs.append(SearchAttributePair(SA_EVENT_TYPE, str(run.event["type"])))
        if run.event.get("source"):
            pairs.append(SearchAttributePair(SA_EVENT_SOURCE, str(run.event["source"])))
    return TypedSearchAttributes(pairs)


def child_start_options(
    child: RunInput, temporal_namespace: str | None, ref: str
) -> dict[str, Any]:
    """Search attributes and memo of a child run, for ``start_child_workflow`` (called in
    the parent's workflow code).

    The child is indexed as its own definition and version, but it belongs to its
    parent's tenant: it carries the parent's ``TflowNamespace`` (so the run-control API
    and event delivery reach it as they reach the parent) and the event that started the
    parent. A child runs in its parent's Temporal namespace (child workflows cannot cross
    namespaces), so a definition that lives in another one (``temporal_namespace``) is
    refused rather than started where no worker of its polls.
    """
    info = workflow.info()
    if temporal_namespace and temporal_namespace != info.namespace:
        raise WorkflowError.of(
            ErrorType.CONFIGURATION,
            f"workflow {child.definition.name if child.definition else '?'} runs in Temporal "
            f"namespace {temporal_namespace!r}, this run in {info.namespace!r}: "
            "`run: workflow` starts a child in its parent's Temporal namespace only",
            instance=f"{ref}/run",
        )
    attributes = search_attributes(child)
    pairs = {pair.key.name: pair for pair in attributes}
    for key in (SA_NAMESPACE, SA_EVENT_TYPE, SA_EVENT_SOURCE):
        value = info.typed_search_attributes.get(key)
        if value is not None:
            pairs[key.name] = SearchAttributePair(key, value)
    attributes = TypedSearchAttributes(list(pairs.values()))
    return {"search_attributes": attributes, "memo": memo(child)}


def memo(run: RunInput) -> dict[str, Any]:
    name, version = run_identity(run)
    return {"definition": name, "version": version}


def new_run_id(run: RunInput) -> str:
    document = run.document.get("document") or {}
    base = run.definition.name if run.definition else str(document.get("name", "run"))
    return f"{base}-{uuid.uuid4()}"


def check_run_input(run: RunInput) -> None:
    """Refuse a run whose start would exceed Temporal's payload limit, naming the limit."""
    check_payload(run.input, "the run's input")
    check_payload(run.model_dump(mode="json"), "the run's input with its document")


async def start_run(
    client: Client,
    run: RunInput,
    task_queue: str,
    workflow_id: str | None = None,
    execution_timeout: timedelta | None = None,
) -> WorkflowHandle[Any, Any]:
    check_run_input(run)
    return await client.start_workflow(
        WORKFLOW_TYPE,
        run,
        id=workflow_id or new_run_id(run),
        task_queue=task_queue,
        search_attributes=search_attributes(run),
        memo=memo(run),
        execution_timeout=execution_timeout,
    )
