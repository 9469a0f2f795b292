"""Operations on flow runs: the one implementation behind every front end that starts,
finds or steers runs (the run API service, the webhook's run-control routes, `tflow`,
`tflow ui`). Each function talks to Temporal only; what a caller may reach is decided
here by the namespace rule, never by a workflow id a caller could choose.

The namespace rule. A run belongs to the Kubernetes namespace in its `TflowNamespace`
search attribute (set at start from its WorkflowDefinition). A caller holds a
`NamespaceRule` (the namespaces it may reach); a run outside it is answered exactly as a
run that does not exist (`RunRefused` 404 `no-such-run`), so no answer tells a caller
which ids exist in another tenant.

Functions (all raise `RunRefused`, whose `status` is the HTTP status a front end answers):

- `start_run(client, definition, input, key=None)`: start a run of a WorkflowDefinition
  (`Definition`, looked up by the caller, e.g. through a `DefinitionSource`). Refuses a
  definition that is not Ready (409 `definition-not-ready`) and an input its
  `input.schema` rejects (400 `invalid-input`, with the JSON pointer) before anything
  starts. The run's id is `run_id_for(namespace, name, key)`; the same key twice starts
  one run and answers with it (`StartedRun.started` False the second time).
- `check_input(document, input)`: the `input.schema` check alone.
- `list_runs(client, rule, definition=None, status=None, page_token=None, page_size=50)`:
  one page of runs newest first (`RunPage`, `next_page_token` opaque), filtered by
  definition (`namespace/name`) and status through the search attributes.
- `allowed(names)`: a `NamespaceRule` from a flag's list, `*` meaning every namespace;
  `list_query(rule, definition, status)`: the visibility query `list_runs` sends.
- `run_summary(run)`: a listed or described run as every front end shows it;
  `status_name(status)`: the one spelling of a run's state (`cancelled`, as `STATUSES`).
- `own_run(client, rule, workflow_id)`: the run's description, if the rule reaches it.
- `run_status(client, described)`: the `status` query of a described run, or why there
  is none (no worker polls its task queue, none answered, not a flow run).
- `describe_run(client, rule, workflow_id)`: its state, output or error, and task log
  (`RunDetail`; the task log comes from the `status` query, which needs a worker).
- `run_history(client, rule, workflow_id, page_token=None, page_size=100)`: Temporal's
  events, paged (`HistoryPage`), with the task log on the first page.
- `signal_run(client, rule, workflow_id, name, payload)`: a signal (the interpreter takes
  any signal as an event of that type); `send_event(client, rule, workflow_id, event)`: a
  CloudEvent, as the router delivers it (the `event` signal).
- `cancel_run(client, rule, workflow_id)`, `terminate_run(client, rule, workflow_id,
  reason)`.

Every steering call is bound to the run id that was checked, so a later run reusing the
workflow id is never reached by a check made on an earlier one.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from temporalio.api.enums.v1 import EventType, TaskQueueKind, TaskQueueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tflow_workers.dsl.schemas import schema_errors
from tflow_workers.engine.errors import WorkflowError
from tflow_workers.engine.events import EVENT_SIGNAL
from tflow_workers.engine.model import (
    SA_CURRENT_TASK,
    SA_DEFINITION,
    SA_EVENT_SOURCE,
    SA_EVENT_TYPE,
    SA_NAMESPACE,
    WORKFLOW_TYPE,
    DefinitionRef,
    RunInput,
    RunStatus,
    TaskLogEntry,
)
from tflow_workers.engine.starter import check_run_input, memo, search_attributes

__all__ = [
    "STATUSES",
    "Definition",
    "DefinitionSource",
    "HistoryEventView",
    "HistoryPage",
    "NamespaceRule",
    "RunDetail",
    "RunPage",
    "RunRefused",
    "RunSummary",
    "StartedRun",
    "allowed",
    "cancel_run",
    "check_input",
    "describe_run",
    "list_query",
    "list_runs",
    "own_run",
    "run_history",
    "run_id_for",
    "run_status",
    "run_summary",
    "send_event",
    "signal_run",
    "start_run",
    "status_name",
    "terminate_run",
]

# The API's status names and Temporal's ExecutionStatus values they filter on.
STATUSES: dict[str, str] = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timedout": "TimedOut",
    "continuedasnew": "ContinuedAsNew",
}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_HISTORY_PAGE_SIZE = 100
QUERY_TIMEOUT = timedelta(seconds=10)
# A query waits for a worker polling the run's task queue. Where Temporal has seen none
# lately, the query gets this long only: Temporal's answer covers the queue's root
# partition (a worker polling another may be missing from it) and a worker that has just
# started, so the query is still tried, and a worker that is there answers well within
# it; a caller does not wait out the whole timeout for a worker that is not.
UNPOLLED_QUERY_TIMEOUT = timedelta(seconds=2)
# A run key a caller picks: short, printable, no separators that could make two
# (namespace, definition, key) triples collide.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Kubernetes names never hold ':', so the prefix `<namespace>:<name>:` is unambiguous.
_SEPARATOR = ":"


class RunRefused(Exception):
    """An operation that cannot be carried out: HTTP status, a reason slug, a sentence."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


# ---- the namespace rule -----------------------------------------------------------------


class NamespaceRule:
    """The Kubernetes namespaces whose runs a caller may reach; `every()` for all."""

    def __init__(self, namespaces: Iterable[str], every: bool = False) -> None:
        self.namespaces = frozenset(namespaces)
        self.every = every

    @classmethod
    def only(cls, *namespaces: str) -> NamespaceRule:
        return cls(namespaces)

    @classmethod
    def everywhere(cls) -> NamespaceRule:
        return cls((), every=True)

    def reaches(self, namespace: str | None) -> bool:
        return self.every or (namespace is not None and namespace in self.namespaces)

    def clause(self) -> str | None:
        """The visibility query clause that keeps a listing inside the rule."""
        if self.every:
            return None
        if not self.namespaces:
            return f'{SA_NAMESPACE.name} = ""'  # reaches nothing: matches nothing
        quoted = ", ".join(_quoted(n, "namespace") for n in sorted(self.namespaces))
        return f"{SA_NAMESPACE.name} IN ({quoted})"

    def __repr__(self) -> str:
        return "NamespaceRule(every)" if self.every else f"NamespaceRule({sorted(self.namespaces)})"


# ---- definitions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Definition:
    """What starting a run of a WorkflowDefinition needs, as its source read it."""

    namespace: str
    name: str
    document: dict[str, Any]
    task_queue: str
    ready: bool
    # The Ready condition's reason and message, said when a start is refused.
    reason: str | None = None
    message: str | None = None
    version: str | None = None
    # The Temporal namespace its runs live in, when the definition names one.
    temporal_namespace: str | None = None


class DefinitionSource(Protocol):
    """Where definitions are looked up (the apiserver, in the run API service)."""

    async def definition(self, namespace: str, name: str) -> Definition | None: ...


# ---- what the operations answer -----------------------------------------------------------


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StartedRun(ApiModel):
    workflow_id: str
    run_id: str
    # False when a run with this id had already been started (an idempotent repeat).
    started: bool
    definition: str
    namespace: str


class RunSummary(ApiModel):
    workflow_id: str
    run_id: str
    definition: str | None = None
    namespace: str | None = None
    status: str
    current_task: str | None = None
    event_type: str | None = None
    event_source: str | None = None
    started: datetime | None = None
    closed: datetime | None = None


class RunPage(ApiModel):
    runs: list[RunSummary]
    # Opaque; pass it back for the next page. None on the last page.
    next_page_token: str | None = None


class RunDetail(RunSummary):
    workflow_type: str
    task_queue: str
    phase: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    log: list[TaskLogEntry] | None = None
    log_dropped: int = 0
    # Why there is no task log (no worker answered the status query), when there is none.
    note: str | None = None


class HistoryEventView(ApiModel):
    event_id: int
    event_type: str
    event_time: datetime | None = None
    # The event's attributes in Temporal's JSON form (payloads as Temporal stores them).
    attributes: dict[str, Any] = Field(default_factory=dict)


class HistoryPage(ApiModel):
    workflow_id: str
    run_id: str
    events: list[HistoryEventView]
    next_page_token: str | None = None
    # The task log, on the first page only (None when no worker answered).
    log: list[TaskLogEntry] | None = None


# ---- helpers ------------------------------------------------------------------------------


def _quoted(value: str, what: str) -> str:
    # Visibility queries are a SQL-like language: a quote or backslash in a value could
    # change the query, so such values are refused rather than escaped.
    if re.search(r'["\\\n]', value):
        raise RunRefused(400, "bad-filter", f"{what} may not contain quotes or backslashes")
    return f'"{value}"'


def status_name(value: WorkflowExecutionStatus | None) -> str:
    """The name of a run's state every front end shows: the names `list_runs` filters
    on (`STATUSES`), so `cancelled` rather than Temporal's `Canceled`."""
    if value is None:
        return "unknown"
    name = value.name.lower().replace("_", "")
    return "cancelled" if name == "canceled" else name


def run_summary(run: WorkflowExecution) -> RunSummary:
    """A run as listings show it, from its visibility record (or its description)."""
    attrs = run.typed_search_attributes
    return RunSummary(
        workflow_id=run.id,
        run_id=run.run_id,
        definition=attrs.get(SA_DEFINITION),
        namespace=attrs.get(SA_NAMESPACE),
        status=status_name(run.status),
        current_task=attrs.get(SA_CURRENT_TASK),
        event_type=attrs.get(SA_EVENT_TYPE),
        event_source=attrs.get(SA_EVENT_SOURCE),
        started=run.start_time,
        closed=run.close_time,
    )


def _unavailable(err: Exception) -> RunRefused:
    return RunRefused(503, "temporal-unavailable", f"Temporal is not reachable: {err}")


def _rpc_refusal(err: RPCError, what: str) -> RunRefused:
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        return RunRefused(400, "invalid-argument", f"Temporal refused {what}: {err.message}")
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return RunRefused(503, "temporal-unavailable", f"Temporal did not answer: {err.message}")
    return RunRefused(502, "temporal-error", f"Temporal failed {what}: {err.message}")


def _no_such_run(workflow_id: str) -> RunRefused:
    return RunRefused(404, "no-such-run", f"no run {workflow_id!r} is reachable")


def _token_in(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        # Strict: a token with characters outside the alphabet is refused, not trimmed
        # into another (or no) token.
        token = base64.b64decode(text.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        token = b""
    if not token:
        raise RunRefused(400, "bad-page-token", "the page token is not valid")
    return token


def _token_out(token: bytes | None) -> str | None:
    return base64.urlsafe_b64encode(token).decode() if token else None


def _page_size(value: int, limit: int) -> int:
    if value < 1 or value > limit:
        raise RunRefused(400, "bad-page-size", f"the page size must be 1 to {limit}")
    return value


# ---- starting -----------------------------------------------------------------------------


def run_id_for(namespace: str, name: str, key: str | None = None) -> str:
    """The workflow id of a run started through the API: `<namespace>:<name>:<key>`.

    The namespace and definition are part of it, so one tenant's key can never collide
    with (or claim first) another's; a new key is made when none is given."""
    if key is None:
        key = uuid.uuid4().hex
    elif not _KEY.match(key):
        raise RunRefused(
            400,
            "invalid-workflow-id",
            "a workflow id is 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return _SEPARATOR.join((namespace, name, key))


def check_input(document: dict[str, Any], value: Any) -> None:
    """Refuse an input the document's `input.schema` rejects, naming where (400)."""
    spec = document.get("input")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict) or "document" not in schema:
        return
    problems = schema_errors(schema["document"], value)
    if problems:
        raise RunRefused(
            400,
            "invalid-input",
            "the input does not match the definition's input.schema: " + "; ".join(problems),
        )


async def start_run(
    client: Client, definition: Definition, value: Any, key: str | None = None
) -> StartedRun:
    """Start a run of `definition` with `value` as its input (see the module docstring)."""
    ref = f"{definition.namespace}/{definition.name}"
    if not definition.ready:
        why = definition.message or definition.reason or "it has no Ready condition yet"
        raise RunRefused(
            409, "definition-not-ready", f"WorkflowDefinition {ref} is not Ready: {why}"
        )
    if definition.temporal_namespace and definition.temporal_namespace != client.namespace:
        raise RunRefused(
            409,
            "other-temporal-namespace",
            f"WorkflowDefinition {ref} runs in Temporal namespace "
            f"{definition.temporal_namespace!r}, not {client.namespace!r}",
        )
    check_input(definition.document, value)
    run = RunInput(
        document=definition.document,
        input=value,
        definition=DefinitionRef(
            name=definition.name, namespace=definition.namespace, version=definition.version
        ),
    )
    try:
        check_run_input(run)
    except WorkflowError as err:
        raise RunRefused(413, "too-large", str(err)) from None
    workflow_id = run_id_for(definition.namespace, definition.name, key)
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            run,
            id=workflow_id,
            task_queue=definition.task_queue,
            # A closed run keeps its id: the same key never starts the flow a second time.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(run),
            memo=memo(run),
        )
    except WorkflowAlreadyStartedError:
        existing = await own_run(client, NamespaceRule.only(definition.namespace), workflow_id)
        return StartedRun(
            workflow_id=workflow_id,
            run_id=existing.run_id or "",
            started=False,
            definition=ref,
            namespace=definition.namespace,
        )
    except RPCError as err:
        raise _rpc_refusal(err, f"starting {workflow_id!r}") from None
    except RuntimeError as err:
        raise _unavailable(err) from None
    return StartedRun(
        workflow_id=workflow_id,
        run_id=handle.first_execution_run_id or handle.result_run_id or "",
        started=True,
        definition=ref,
        namespace=definition.namespace,
    )


# ---- reading ------------------------------------------------------------------------------


def list_query(rule: NamespaceRule, definition: str | None, status: str | None) -> str:
    clauses = [f'WorkflowType = "{WORKFLOW_TYPE}"']
    inside = rule.clause()
    if inside:
        clauses.append(inside)
    if definition:
        clauses.append(f"{SA_DEFINITION.name} = {_quoted(definition, 'definition')}")
    if status:
        if status not in STATUSES:
            raise RunRefused(
                400, "bad-filter", f"status {status!r} is not one of {', '.join(STATUSES)}"
            )
        clauses.append(f'ExecutionStatus = "{STATUSES[status]}"')
    return " AND ".join(clauses)


async def list_runs(
    client: Client,
    rule: NamespaceRule,
    definition: str | None = None,
    status: str | None = None,
    page_token: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> RunPage:
    """One page of runs, newest first; only that page is read from visibility."""
    query = list_query(rule, definition, status)
    size = _page_size(page_size, MAX_PAGE_SIZE)
    iterator = client.list_workflows(query, page_size=size, next_page_token=_token_in(page_token))
    try:
        await iterator.fetch_next_page(page_size=size)
    except RPCError as err:
        raise _rpc_refusal(err, "listing runs") from None
    except RuntimeError as err:
        raise _unavailable(err) from None
    runs = [run_summary(found) for found in iterator.current_page or []]
    return RunPage(runs=runs, next_page_token=_token_out(iterator.next_page_token))


async def own_run(
    client: Client, rule: NamespaceRule, workflow_id: str
) -> WorkflowExecutionDescription:
    """The run's description, when it exists and the rule reaches its namespace; else
    the same 404 either way."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _no_such_run(workflow_id) from None
        raise _rpc_refusal(err, f"describing {workflow_id!r}") from None
    except RuntimeError as err:
        raise _unavailable(err) from None
    if not rule.reaches(described.typed_search_attributes.get(SA_NAMESPACE)):
        raise _no_such_run(workflow_id)
    return described


async def run_status(
    client: Client, described: WorkflowExecutionDescription, query_timeout: timedelta
) -> tuple[RunStatus | None, str | None]:
    """The `status` query's answer, or why there is none."""
    if described.workflow_type != WORKFLOW_TYPE:
        return None, f"a {described.workflow_type} run has no task log"
    queue = described.task_queue
    polled = await _polled(client, queue, query_timeout)
    handle = client.get_workflow_handle(described.id, run_id=described.run_id)
    try:
        status = await handle.query(
            "status",
            result_type=RunStatus,
            rpc_timeout=query_timeout if polled else min(query_timeout, UNPOLLED_QUERY_TIMEOUT),
        )
    except WorkflowQueryFailedError as err:
        return None, f"the status query failed: {err}"
    except RPCError as err:
        if not polled:
            return None, f"no task log: no worker polls task queue {queue!r}"
        return None, f"no task log: {err.message} (is a worker polling task queue {queue!r}?)"
    return status, None


async def _polled(client: Client, task_queue: str, rpc_timeout: timedelta) -> bool:
    """Whether Temporal saw a worker poll the task queue's workflow tasks lately (it keeps
    a poller for a few minutes after its last poll). True when it cannot say."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        answer = await client.workflow_service.describe_task_queue(request, timeout=rpc_timeout)
    except RPCError:
        return True
    return bool(answer.pollers)


async def describe_run(
    client: Client, rule: NamespaceRule, workflow_id: str, query_timeout: timedelta = QUERY_TIMEOUT
) -> RunDetail:
    """A run's state, output or error, and task log."""
    described = await own_run(client, rule, workflow_id)
    status, note = await run_status(client, described, query_timeout)
    summary = run_summary(described)
    if status is not None:
        summary.current_task = status.current_task
    return RunDetail(
        **dict(summary),
        workflow_type=described.workflow_type,
        task_queue=described.task_queue,
        phase=status.phase if status else None,
        output=status.output if status else None,
        error=status.error.as_data() if status and status.error else None,
        log=status.log if status else None,
        log_dropped=status.log_dropped if status else 0,
        note=note,
    )


def _event_view(event: HistoryEvent) -> HistoryEventView:
    which = event.WhichOneof("attributes")
    attributes = MessageToDict(getattr(event, which)) if which else {}
    return HistoryEventView(
        event_id=event.event_id,
        event_type=EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"),
        event_time=event.event_time.ToDatetime() if event.HasField("event_time") else None,
        attributes=attributes,
    )


async def run_history(
    client: Client,
    rule: NamespaceRule,
    workflow_id: str,
    page_token: str | None = None,
    page_size: int = DEFAULT_HISTORY_PAGE_SIZE,
    query_timeout: timedelta = QUERY_TIMEOUT,
) -> HistoryPage:
    """One page of the run's Temporal events; the first page carries the task log."""
    described = await own_run(client, rule, workflow_id)
    size = _page_size(page_size, MAX_PAGE_SIZE)
    handle = client.get_workflow_handle(described.id, run_id=described.run_id)
    iterator = handle.fetch_history_events(page_size=size, next_page_token=_token_in(page_token))
    try:
        await iterator.fetch_next_page(page_size=size)
    except RPCError as err:
        raise _rpc_refusal(err, f"reading the history of {workflow_id!r}") from None
    except RuntimeError as err:
        raise _unavailable(err) from None
    log = None
    if not page_token:
        status, _ = await run_status(client, described, query_timeout)
        log = status.log if status else None
    return HistoryPage(
        workflow_id=described.id,
        run_id=described.run_id,
        events=[_event_view(e) for e in iterator.current_page or []],
        next_page_token=_token_out(iterator.next_page_token),
        log=log,
    )


# ---- steering -----------------------------------------------------------------------------


async def _steer(
    client: Client, rule: NamespaceRule, workflow_id: str, what: str, action: str, *args: Any
) -> str:
    """Check the run (reachable, still open), then act on exactly that run; its run id."""
    described = await own_run(client, rule, workflow_id)
    if described.status not in (None, WorkflowExecutionStatus.RUNNING):
        raise RunRefused(
            409, "run-closed", f"run {workflow_id!r} is {status_name(described.status)}: {what}"
        )
    handle = client.get_workflow_handle(workflow_id, run_id=described.run_id)
    try:
        if action == "signal":
            await handle.signal(args[0], args[1])
        elif action == "cancel":
            await handle.cancel()
        else:
            await handle.terminate(reason=args[0])
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # Open a moment ago, gone now: it closed in between.
            raise RunRefused(409, "run-closed", f"run {workflow_id!r} has closed: {what}") from None
        raise _rpc_refusal(err, f"{action} of {workflow_id!r}") from None
    except RuntimeError as err:
        raise _unavailable(err) from None
    return described.run_id or ""


async def signal_run(
    client: Client, rule: NamespaceRule, workflow_id: str, name: str, payload: Any
) -> str:
    """Send signal `name` with `payload` to the run; its run id."""
    if not name or len(name) > 200:
        raise RunRefused(400, "invalid-signal", "a signal name is 1 to 200 characters")
    return await _steer(client, rule, workflow_id, "it takes no signals", "signal", name, payload)


async def send_event(
    client: Client, rule: NamespaceRule, workflow_id: str, event: dict[str, Any]
) -> str:
    """Deliver a CloudEvent (at least `type`) to the run, as the router does."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
        raise RunRefused(400, "invalid-event", "an event is a JSON object with a string type")
    return await signal_run(client, rule, workflow_id, EVENT_SIGNAL, event)


async def cancel_run(client: Client, rule: NamespaceRule, workflow_id: str) -> str:
    """Request cancellation (the run's `try`/`catch` and cleanup still run)."""
    return await _steer(client, rule, workflow_id, "there is nothing to cancel", "cancel")


async def terminate_run(
    client: Client, rule: NamespaceRule, workflow_id: str, reason: str | None = None
) -> str:
    """Stop the run at once, without cleanup."""
    return await _steer(
        client, rule, workflow_id, "there is nothing to terminate", "terminate", reason
    )


def allowed(namespaces: Collection[str]) -> NamespaceRule:
    """A rule from a list where `*` means every namespace (the CLI's and UI's flags)."""
    names = set(namespaces)
    return NamespaceRule.everywhere() if "*" in names else NamespaceRule(names)
