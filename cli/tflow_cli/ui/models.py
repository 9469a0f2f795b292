"""What the UI's JSON API answers beyond run_operations' models, as pydantic models
(camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Problem(ApiModel):
    """Every error the API answers: the page shows `detail` as it is."""

    status: int
    reason: str
    detail: str
    # On a 401: what token the sign-in box asks for.
    sign_in: str | None = None


class Waiting(ApiModel):
    """What a task that sits (listen, wait) waits for, and until when."""

    reference: str
    name: str
    kind: str
    events: list[str] = []
    timeout: str | None = None
    deadline: datetime | None = None


class TaskData(ApiModel):
    """A call's input and output as its activity recorded them in the history."""

    reference: str
    activity: str
    input: Any = None
    output: Any = None
    failure: str | None = None


class RunView(ApiModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    definition: str | None = None
    namespace: str | None = None
    status: str
    started: datetime | None = None
    closed: datetime | None = None
    listening: list[str] = []
    # From the document the run was started with (its history's first event).
    document: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    # From the `status` query, when a worker answers it.
    phase: str | None = None
    current_task: str | None = None
    log: list[dict[str, Any]] | None = None
    log_dropped: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    waiting: list[Waiting] = []
    task_data: list[TaskData] = []
    # Why a part is missing (no document in the history, no worker for the query...).
    notes: list[str] = []
    temporal_url: str | None = None


class Definition(ApiModel):
    namespace: str
    name: str
    ready: str | None = None
    ready_reason: str | None = None
    ready_message: str | None = None
    task_queue: str | None = None
    schedule: list[str] = []
    min_replicas: int | None = None
    max_replicas: int | None = None
    version: str | None = None
    running: int | None = None
    routes: list[dict[str, Any]] = []


class ListenerRow(ApiModel):
    namespace: str
    name: str
    type: str | None = None
    ready: str | None = None
    run_control: bool = False


class Catalogue(ApiModel):
    definitions: list[Definition]
    listeners: list[ListenerRow]
    notes: list[str] = []


class ActionDone(ApiModel):
    workflow_id: str
    action: str
    signal: str | None = None
