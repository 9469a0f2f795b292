"""The interpreter: runs any valid Serverless Workflow 1.0 document, task by task.

`DocumentInterpreter` holds one run's state and walks its document's typed model
(`tflow_workers.dsl.models`, validated and loaded once per worker process by
`plan.prepare`): task lists, flow directives, and each task through the one table from
task kind to handler, `TASK_HANDLERS`. The data flow (runtime expressions,
`input`/`output`/`export`, schemas) is `dataflow`'s, the requests of HTTP and OpenAPI
calls `calls`'s, event matching `events`'s.

The Temporal workflow class (`serverless_workflow.ServerlessWorkflow`) is a thin shell
around it. This module is imported through `workflow.unsafe.imports_passed_through()`,
so it is loaded once per worker process rather than once per run by the workflow
sandbox; the sandbox's checks therefore do not guard it, and its determinism rests on
its own discipline (and on the replay tests): jq evaluation is pure, time comes from
`workflow.now()`, randomness from `workflow.random()`, waits are Temporal timers, events
arrive as signals, every call that touches the outside world is an activity, and
module-level state is limited to caches of pure functions.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from tflow_workers.dsl.durations import parse_duration
from tflow_workers.dsl.models import (
    PROCESS_KINDS,
    TASK_KINDS,
    CallFunction,
    CallHTTP,
    CallOpenAPI,
    Catch,
    DoTask,
    DurationInline,
    EmitConfiguration,
    EmitTask,
    EventFilter,
    ForkConfiguration,
    ForkTask,
    ForTask,
    ListenTask,
    RaiseConfiguration,
    RaiseTask,
    RunTask,
    RunWorkflow,
    SetTask,
    SwitchCase,
    SwitchTask,
    TaskBase,
    TaskList,
    Timeout,
    TryTask,
    Use,
    WaitTask,
    WorkflowDocument,
    named_tasks,
)
from tflow_workers.dsl.models import RetryPolicy as RetryPolicySpec
from tflow_workers.engine.calls import Credentials, http_request, openapi_request
from tflow_workers.engine.dataflow import DataFlow, TaskDescriptor, truthy
from tflow_workers.engine.errors import (
    APPLICATION_ERROR_TYPE,
    ErrorType,
    Problem,
    WorkflowError,
    check_payload,
    check_payload_size,
    same_error_type,
)
from tflow_workers.engine.events import Consumption, event_from_signal, matches_filter
from tflow_workers.engine.model import (
    ACTIVITY_EMIT,
    ACTIVITY_HTTP,
    ACTIVITY_OPENAPI,
    ACTIVITY_RESOLVE,
    ACTIVITY_SECRETS,
    SA_CURRENT_TASK,
    SA_DEFINITION,
    SA_LISTENING,
    TASK_LOG_LIMIT,
    WORKFLOW_TYPE,
    ResolvedDefinition,
    ResolveRequest,
    ResumeState,
    RunInput,
    RunPhase,
    RunStatus,
    TaskOutcome,
)
from tflow_workers.engine.plan import PreparedDocument, prepare
from tflow_workers.engine.starter import child_start_options
from tflow_workers.engine.tasklog import LogRecord, PreviewBudget

DEFAULT_CALL_TIMEOUT = timedelta(minutes=5)
# How soon a call on a worker that died is noticed and handed to another worker.
ACTIVITY_HEARTBEAT_TIMEOUT = timedelta(seconds=20)
# Attempts of an activity whose worker was lost, stopped or crashed (not the call's own
# failures, which are never retried by Temporal).
LOST_WORKER_ATTEMPTS = 5
SEEN_EVENTS_LIMIT = 1000
# Runs recorded before this patch upserted TflowCurrentTask at every top-level task; newer
# runs upsert it only when a task starts to wait (see `_waiting_in`).
PATCH_CURRENT_TASK_ON_WAIT = "tflow-current-task-on-wait"
# Runs recorded before this patch passed an emit task's input on as its output; newer runs
# output the emitted event, as the spec says.
PATCH_EMIT_OUTPUT = "tflow-emit-output"
# Runs recorded before this patch matched event filter strings for equality only; newer
# runs also read them as regular expressions, which can consume other events.
PATCH_FILTER_REGEX = "tflow-event-filter-regex"
# Runs recorded before this patch started `run: workflow` children without search
# attributes; newer children carry their definition's and their parent's tenant.
PATCH_CHILD_ATTRIBUTES = "tflow-child-search-attributes"
# Waiting kinds: a run can sit in these for long, so they are what TflowCurrentTask shows.
WAITING_KINDS = frozenset({"wait", "listen", "run"})
# The metadata encoding of a payload whose data is JSON text (the payload converter's).
JSON_ENCODING = b"json/plain"


class _End(Exception):
    """`then: end`: the workflow completes now, with this output."""

    def __init__(self, output: Any) -> None:
        self.output = output


class _ContinueAsNew(Exception):
    def __init__(self, state: ResumeState) -> None:
        self.state = state


def _given(model: BaseModel, field: str) -> bool:
    """Whether the document sets `field`, null included: an explicit null has always
    counted as given (a null `if` skips the task, a null `when` never matches), and runs
    that met one must replay as they ran."""
    return field in model.model_fields_set


class DocumentInterpreter:
    """One run of a document: its state, the task kinds, the task log."""

    def __init__(self) -> None:
        self._prepared: PreparedDocument | None = None
        self._use = Use()
        self._data = DataFlow()
        self._events: list[dict[str, Any]] = []
        self._log: list[LogRecord] = []
        self._log_dropped = 0
        self._previews = PreviewBudget()
        self._phase: RunPhase = "pending"
        self._current: str | None = None
        self._output: Any = None
        self._error: Problem | None = None
        self._workflow_input: Any = None
        self._started_at = ""
        self._indexed = False
        # Whether TflowCurrentTask follows waiting tasks (new runs) or every top-level task
        # (runs recorded before the patch), and the value last upserted.
        self._current_on_wait = False
        self._indexed_task: str | None = None
        # The top-level task running now: (index, raw input), for continue-as-new.
        self._top: tuple[int, Any] = (0, None)
        self._resume_loop: tuple[int, Any] | None = None
        # Ids of the events received, oldest first, to drop a redelivered one.
        self._seen_events: dict[str, None] = {}
        # The workflow's payload converter, looked up once per run.
        self._converter: PayloadConverter | None = None

    # ---- what the workflow class delegates to -----------------------------------------

    async def run(self, params: RunInput) -> Any:
        info = workflow.info()
        resume = params.resume
        started = resume.started_at if resume else workflow.now()
        self._started_at = started.isoformat()
        if resume is not None:
            if resume.loop_index is not None:
                self._resume_loop = (resume.loop_index, resume.loop_data)
            self._data.context = dict(resume.context)
            self._log = [LogRecord.of(entry) for entry in resume.log]
            self._log_dropped = resume.log_dropped
            self._events = list(resume.pending_events) + self._events
            self._workflow_input = resume.workflow_input
        self._phase = "running"
        # Only runs started with the engine's search attributes (so they are registered on
        # the namespace) track their current task there.
        self._indexed = _keyword_at_start(info, SA_DEFINITION.name) is not None
        if self._indexed:
            self._current_on_wait = workflow.patched(PATCH_CURRENT_TASK_ON_WAIT)
            self._indexed_task = _keyword_at_start(info, SA_CURRENT_TASK.name)
        self._data.workflow = {
            "id": info.workflow_id,
            "definition": params.document,
            "input": params.input,
            "startedAt": {
                "iso8601": self._started_at,
                "epoch": {
                    "seconds": int(started.timestamp()),
                    "milliseconds": int(started.timestamp() * 1000),
                },
            },
        }
        try:
            document = self._load(params.document, resumed=resume is not None)
            secret_names = sorted(self._use.secrets or [])
            if secret_names:
                self._data.secrets = await workflow.execute_activity(
                    ACTIVITY_SECRETS,
                    secret_names,
                    result_type=dict,
                    start_to_close_timeout=timedelta(seconds=30),
                )
            output = await self._run_document(document, params, resume)
        except _ContinueAsNew as can:
            workflow.continue_as_new(
                RunInput(
                    document=params.document,
                    input=params.input,
                    definition=params.definition,
                    event=params.event,
                    resume=can.state,
                )
            )
        except WorkflowError as err:
            self._phase = "faulted"
            self._error = err.problem
            raise ApplicationError(
                err.problem.title or err.problem.detail or err.problem.type,
                err.problem.as_data(),
                type=APPLICATION_ERROR_TYPE,
                non_retryable=True,
            ) from None
        except asyncio.CancelledError:
            self._phase = "cancelled"
            raise
        self._phase = "completed"
        self._output = output
        self._current = None
        return output

    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        payload = workflow.payload_converter().from_payload(args[0].payload) if args else None
        event = event_from_signal(name, payload, workflow.now().isoformat(), str(workflow.uuid4()))
        key = f"{event.get('source')}\x00{event.get('id')}"
        if key in self._seen_events:
            return  # the same event delivered twice (a retried delivery)
        self._seen_events[key] = None
        if len(self._seen_events) > SEEN_EVENTS_LIMIT:
            del self._seen_events[next(iter(self._seen_events))]
        self._events.append(event)

    def status(self) -> RunStatus:
        return RunStatus(
            phase=self._phase,
            current_task=self._current,
            log=[record.entry() for record in self._log],
            log_dropped=self._log_dropped,
            output=self._output,
            error=self._error,
        )

    # ---- document ---------------------------------------------------------------------

    def _load(self, raw: dict[str, Any], resumed: bool) -> WorkflowDocument:
        """The run's document model. Whoever started the run should have validated the
        document; a run that gets an invalid one anyway fails at once with every problem
        listed. A run continued as new was checked when it began, and goes on."""
        prepared = prepare(raw)
        if prepared.model is None or (prepared.problems and not resumed):
            raise WorkflowError.of(
                ErrorType.VALIDATION,
                "; ".join(prepared.problems),
                title="Invalid workflow document",
                instance="/",
            )
        self._prepared = prepared
        self._use = prepared.model.use or Use()
        return prepared.model

    async def _run_document(
        self, doc: WorkflowDocument, params: RunInput, resume: ResumeState | None
    ) -> Any:
        if resume is None:
            data = params.input if params.input is not None else {}
            self._workflow_input = data
            data = self._data.input_of(doc.input, data, {}, "", "workflow")
            start = 0
        else:
            data = resume.data
            start = resume.next_task
        timeout = self._timeout_of(doc.timeout, "/timeout")
        if timeout is not None and resume is not None:
            # The workflow's timeout counts from its first run, not from this one.
            timeout = max(timeout - (workflow.now() - resume.started_at), timedelta(0))
        body = self._run_list(doc.do, data, {}, "/do", start=start, top=True)
        try:
            if timeout is not None:
                output = await self._with_timeout(body, timeout, "/do", "workflow")
            else:
                output = await body
        except _End as end:
            output = end.output
        return self._data.output_of(doc.output, output, {}, "", "workflow", bind_output=False)

    # ---- task lists -------------------------------------------------------------------

    async def _run_list(
        self,
        tasks: TaskList,
        data: Any,
        scope: dict[str, Any],
        pointer: str,
        start: int = 0,
        top: bool = False,
    ) -> Any:
        index = start
        entries = named_tasks(tasks)
        names = [name for name, _ in entries]
        # Looked up once: the method asks the run's live state each time it is called.
        suggested = workflow.info().is_continue_as_new_suggested if top else None
        while index < len(entries):
            if suggested is not None and index > start and suggested():
                raise _ContinueAsNew(self._resume_state(index, data))
            name, task = entries[index]
            if top:
                self._top = (index, data)
            data, then = await self._run_task(
                name, task, data, scope, f"{pointer}/{index}/{name}", top=top
            )
            if then in (None, "continue"):
                index += 1
            elif then == "exit":
                break
            elif then == "end":
                raise _End(data)
            elif then in names:
                index = names.index(then)
            else:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"then: no task named {then!r}",
                    instance=f"{pointer}/{index}/{name}/then",
                )
        return data

    def _resume_state(
        self, next_task: int, data: Any, loop: tuple[int, Any] | None = None
    ) -> ResumeState:
        for entry in self._log:
            if entry.outcome == "running":
                entry.outcome = "continued"
                entry.ended_ns = workflow.time_ns()
        return ResumeState(
            next_task=next_task,
            data=data,
            loop_index=loop[0] if loop else None,
            loop_data=loop[1] if loop else None,
            context=self._data.context,
            started_at=workflow.now() if not self._started_at else _parse_iso(self._started_at),
            workflow_input=self._workflow_input,
            # Without the data previews: they are for people reading this run, and the
            # continue-as-new input stays what older workers read during an upgrade.
            log=[record.entry(previews=False) for record in self._log],
            log_dropped=self._log_dropped,
            pending_events=self._events,
        )

    # ---- one task ---------------------------------------------------------------------

    async def _run_task(
        self,
        name: str,
        task: TaskBase,
        raw_input: Any,
        scope: dict[str, Any],
        ref: str,
        top: bool = False,
    ) -> tuple[Any, str | None]:
        kind = task.kind
        entry = self._log_start(name, ref, kind)
        previous = self._current
        self._current = name
        if top and self._indexed and not self._current_on_wait:
            workflow.upsert_search_attributes([SA_CURRENT_TASK.value_set(name)])
        try:
            descriptor = TaskDescriptor(
                name, ref, lambda: self._definition(task), raw_input, entry.started_ns
            )
            variables: dict[str, Any] = {**scope, "task": descriptor}
            if _given(task, "if_") and not truthy(
                self._data.expr(task.if_, raw_input, variables, f"{ref}/if")
            ):
                self._log_end(entry, "skipped")
                return raw_input, None
            data = self._data.input_of(task.input, raw_input, variables, ref, "task")
            self._previews.set_input(entry, data)
            variables["input"] = data
            descriptor.input = data
            timeout = self._task_timeout(task, ref)
            if kind == "call" and timeout is None:
                # Most tasks are calls: awaited here directly, their result resumes two
                # coroutines fewer than through `_execute` and the handler table.
                output, then = await self._call(task, data, variables, ref), None
            else:
                work = self._execute(kind, name, task, data, variables, ref)
                if timeout is not None:
                    output, then = await self._with_timeout(work, timeout, ref, f"task {name!r}")
                else:
                    output, then = await work
            output = self._data.output_of(task.output, output, variables, ref, "task")
            self._data.export(task.export, output, variables, ref)
            self._previews.set_output(entry, output)
            self._log_end(entry, "completed")
            return output, then if then is not None else task.then
        except WorkflowError as err:
            err.at(ref)
            self._log_end(entry, "faulted", err.problem)
            raise
        except asyncio.CancelledError:
            self._log_end(entry, "cancelled")
            raise
        except _End:
            self._log_end(entry, "completed")
            raise
        finally:
            self._current = previous

    def _definition(self, task: TaskBase) -> dict[str, Any]:
        """`$task.definition`."""
        if self._prepared is None:  # pragma: no cover - set before any task runs
            return {}
        return self._prepared.definition(task)

    async def _execute(
        self,
        kind: str,
        name: str,
        task: TaskBase,
        data: Any,
        variables: dict[str, Any],
        ref: str,
    ) -> tuple[Any, str | None]:
        if kind in WAITING_KINDS and not (isinstance(task, RunTask) and task.run.await_ is False):
            self._waiting_in(name)
        return await TASK_HANDLERS[kind](self, name, task, data, variables, ref)

    # Task handlers, one per kind (`TASK_HANDLERS`): each returns the task's raw output
    # and the flow directive it chose, if any (only a switch chooses one).

    async def _task_set(
        self, name: str, task: SetTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return self._data.transform(task.set, data, variables, f"{ref}/set"), None

    async def _task_switch(
        self, name: str, task: SwitchTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return data, self._switch(task.switch, data, variables, ref)

    async def _task_wait(
        self, name: str, task: WaitTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        await workflow.sleep(self._duration(task.wait, f"{ref}/wait"))
        return data, None

    async def _task_raise(
        self, name: str, task: RaiseTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        raise self._raise_error(task.raise_, data, variables, ref)

    async def _task_do(
        self, name: str, task: DoTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._run_list(task.do, data, self._scope(variables), f"{ref}/do"), None

    async def _task_for(
        self, name: str, task: ForTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._for(task, data, variables, ref), None

    async def _task_try(
        self, name: str, task: TryTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._try(name, task, data, variables, ref), None

    async def _task_fork(
        self, name: str, task: ForkTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._fork(task.fork, data, variables, ref), None

    async def _task_listen(
        self, name: str, task: ListenTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._listen(task, data, variables, ref), None

    async def _task_emit(
        self, name: str, task: EmitTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        event = await self._emit(task.emit, data, variables, ref)
        # Runs recorded before the emitted event became the task's output carried the
        # input on; replaying them must see the same data downstream.
        return (event if workflow.patched(PATCH_EMIT_OUTPUT) else data), None

    async def _task_call(
        self, name: str, task: TaskBase, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._call(task, data, variables, ref), None

    async def _task_run(
        self, name: str, task: RunTask, data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._run(task, data, variables, ref), None

    def _waiting_in(self, name: str) -> None:
        """Point TflowCurrentTask at a task that starts to wait. Only waits are indexed: a
        run sits in them for long, while a running call already shows as the pending
        activity (summarised with its task reference) and in the `status` query; an
        upsert per task would add a history event and a visibility write to each."""
        if self._indexed and self._current_on_wait and name != self._indexed_task:
            workflow.upsert_search_attributes([SA_CURRENT_TASK.value_set(name)])
            self._indexed_task = name

    # ---- scopes, durations, timeouts --------------------------------------------------

    def _scope(self, variables: dict[str, Any]) -> dict[str, Any]:
        """The variables a nested task list inherits (loop items, caught errors)."""
        return {k: v for k, v in variables.items() if k not in ("task", "input", "output")}

    def _duration(self, value: str | DurationInline | None, where: str) -> timedelta:
        try:
            if isinstance(value, DurationInline):
                return value.to_timedelta()
            return parse_duration(value)
        except ValueError as err:
            raise WorkflowError.of(ErrorType.CONFIGURATION, str(err), instance=where) from None

    def _task_timeout(self, task: TaskBase, ref: str) -> timedelta | None:
        # Most tasks have none: their pointer text is then never built.
        return None if task.timeout is None else self._timeout_of(task.timeout, f"{ref}/timeout")

    def _timeout_of(self, spec: str | Timeout | None, where: str) -> timedelta | None:
        if spec is None:
            return None
        if isinstance(spec, str):
            named = (self._use.timeouts or {}).get(spec)
            if named is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no timeout named {spec!r} in use.timeouts",
                    instance=where,
                )
            spec = named
        return self._duration(spec.after, f"{where}/after")

    async def _with_timeout(
        self, work: Awaitable[Any], after: timedelta, ref: str, what: str
    ) -> Any:
        try:
            return await asyncio.wait_for(work, after.total_seconds())
        except TimeoutError:
            raise WorkflowError.of(
                ErrorType.TIMEOUT,
                f"{what} timed out after {after}",
                title="Timeout",
                instance=ref,
            ) from None

    # ---- task kinds -------------------------------------------------------------------

    def _switch(
        self, cases: list[SwitchCase], data: Any, variables: dict[str, Any], ref: str
    ) -> str | None:
        default: str | None = None
        for i, case in enumerate(cases):
            if not _given(case, "when"):
                default = case.then
                continue
            if truthy(
                self._data.expr(case.when, data, variables, f"{ref}/switch/{i}/{case.name}/when")
            ):
                return case.then
        return default

    def _raise_error(
        self, spec: RaiseConfiguration, data: Any, variables: dict[str, Any], ref: str
    ) -> WorkflowError:
        error = spec.error
        if isinstance(error, str):
            named = (self._use.errors or {}).get(error)
            if named is None:
                return WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no error named {error!r} in use.errors",
                    instance=f"{ref}/raise/error",
                )
            error = named
        resolved = self._data.interpolate(
            error.model_dump(exclude_unset=True), data, variables, f"{ref}/raise/error"
        )
        problem = Problem.model_validate({"instance": ref, **resolved})
        return WorkflowError(problem)

    async def _for(self, task: ForTask, data: Any, variables: dict[str, Any], ref: str) -> Any:
        spec = task.for_
        items = self._data.expr(spec.in_, data, variables, f"{ref}/for/in")
        if items is None:
            items = []
        if isinstance(items, dict):
            items = list(items.values())
        if not isinstance(items, list):
            raise WorkflowError.of(
                ErrorType.VALIDATION,
                f"for.in must evaluate to an array, got {type(items).__name__}",
                instance=f"{ref}/for/in",
            )
        scope = self._scope(variables)
        first = 0
        top_level = ref.count("/") == 3  # /do/<index>/<name>
        if top_level and self._resume_loop is not None:
            first, data = self._resume_loop
            self._resume_loop = None
        for index in range(first, len(items)):
            if top_level and index > first and workflow.info().is_continue_as_new_suggested():
                # A long loop carries its position and data into a fresh history.
                top_index, top_input = self._top
                raise _ContinueAsNew(self._resume_state(top_index, top_input, (index, data)))
            loop_scope = {**scope, spec.each: items[index], spec.at: index}
            if _given(task, "while_") and not truthy(
                self._data.expr(task.while_, data, {**variables, **loop_scope}, f"{ref}/while")
            ):
                break
            data = await self._run_list(task.do, data, loop_scope, f"{ref}/do")
        return data

    async def _fork(
        self, spec: ForkConfiguration, data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        branches = named_tasks(spec.branches)
        scope = self._scope(variables)

        async def branch(i: int) -> Any:
            name, task = branches[i]
            output, _ = await self._run_task(
                name, task, data, scope, f"{ref}/fork/branches/{i}/{name}"
            )
            return output

        tasks = [asyncio.ensure_future(branch(i)) for i in range(len(branches))]
        if not tasks:
            return data if spec.compete else []
        try:
            if spec.compete:
                done, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in pending:
                    t.cancel()
                # asyncio.wait's `done` is a set; the lowest branch index wins a tie so
                # replays pick the same winner.
                winner = min(done, key=tasks.index)
                return winner.result()
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise

    async def _try(
        self, name: str, task: TryTask, data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        catch = task.catch
        scope = self._scope(variables)
        retry: str | RetryPolicySpec | None = catch.retry
        if isinstance(retry, str):
            retry = (self._use.retries or {}).get(retry)
            if retry is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no retry policy named {catch.retry!r} in use.retries",
                    instance=f"{ref}/catch/retry",
                )
        attempt = 0
        first_failure = workflow.now()
        while True:
            try:
                return await self._run_list(task.try_, data, scope, f"{ref}/try")
            except WorkflowError as err:
                caught_scope = {**scope, catch.as_ or "error": err.problem.as_data()}
                if not self._catches(catch, err.problem, data, caught_scope, ref):
                    raise
                if retry is not None:
                    delay = self._retry_delay(
                        retry, attempt, data, caught_scope, first_failure, ref
                    )
                    if delay is not None:
                        attempt += 1
                        self._waiting_in(name)
                        await workflow.sleep(delay)
                        continue
                    if catch.do is None:
                        # The retries could not recover and nothing handles the error.
                        raise
                if catch.do is not None:
                    return await self._run_list(catch.do, data, caught_scope, f"{ref}/catch/do")
                return data

    def _catches(
        self,
        catch: Catch,
        problem: Problem,
        data: Any,
        scope: dict[str, Any],
        ref: str,
    ) -> bool:
        wanted = catch.errors.with_ if catch.errors is not None else None
        if wanted is not None:
            actual = problem.as_data()
            for key, value in wanted.model_dump(exclude_unset=True).items():
                if key == "type":
                    if not same_error_type(value, actual.get("type")):
                        return False
                elif actual.get(key if key != "details" else "detail") != value:
                    return False
        if _given(catch, "when") and not truthy(
            self._data.expr(catch.when, data, scope, f"{ref}/catch/when")
        ):
            return False
        return not truthy(
            self._data.expr(catch.except_when, data, scope, f"{ref}/catch/exceptWhen")
        )

    def _retry_delay(
        self,
        policy: RetryPolicySpec,
        attempt: int,
        data: Any,
        scope: dict[str, Any],
        first_failure: datetime,
        ref: str,
    ) -> timedelta | None:
        """The delay before the next attempt, or None when the policy is exhausted."""
        where = f"{ref}/catch/retry"
        if _given(policy, "when") and not truthy(self._data.expr(policy.when, data, scope, where)):
            return None
        if truthy(self._data.expr(policy.except_when, data, scope, where)):
            return None
        limit = policy.limit
        count = limit.attempt.count if limit is not None and limit.attempt is not None else None
        if count is not None and attempt >= count:
            return None
        elapsed = workflow.now() - first_failure
        if (
            limit is not None
            and _given(limit, "duration")
            and elapsed >= self._duration(limit.duration, f"{where}/limit")
        ):
            return None
        base = (
            self._duration(policy.delay, f"{where}/delay")
            if _given(policy, "delay")
            else timedelta(0)
        )
        # The one kind the backoff sets (`exponential: {}`), as written.
        backoff = next(iter(policy.backoff.model_fields_set)) if policy.backoff else "constant"
        if backoff == "exponential":
            delay = base * math.pow(2, attempt)
        elif backoff == "linear":
            delay = base * (attempt + 1)
        else:
            delay = base
        jitter = policy.jitter
        if jitter is not None:
            low = self._duration(jitter.from_, f"{where}/jitter/from")
            high = self._duration(jitter.to, f"{where}/jitter/to")
            delay += low + (high - low) * workflow.random().random()
        return delay

    async def _listen(
        self, task: ListenTask, data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        to = task.listen.to
        scope = self._scope(variables)
        where = f"{ref}/listen/to"
        # Correlation keys without `expect` take the value of the first event consumed.
        correlated: dict[str, Any] = {}
        regex = workflow.patched(PATCH_FILTER_REGEX)
        # Each filter's attributes as written, dumped once per listen rather than per event.
        attributes: dict[int, dict[str, Any]] = {}

        def attribute_expr(expression: str, attribute: Any) -> Any:
            return self._data.expr(expression, attribute, {**scope, "input": data}, where)

        def matches(event: dict[str, Any], flt: EventFilter) -> bool:
            wanted = attributes.get(id(flt))
            if wanted is None:
                wanted = attributes[id(flt)] = flt.with_.model_dump(exclude_unset=True)
            if not matches_filter(event, wanted, attribute_expr, regex):
                return False
            found: dict[str, Any] = {}
            for key, rule in (flt.correlate or {}).items():
                value = self._data.expr(rule.from_, event, variables, f"{where}/correlate/{key}")
                if _given(rule, "expect"):
                    expected = self._data.interpolate(
                        rule.expect, data, variables, f"{where}/correlate/{key}/expect"
                    )
                elif key in correlated:
                    expected = correlated[key]
                else:
                    found[key] = value
                    continue
                if value != expected:
                    return False
            correlated.update(found)
            return True

        def until_met(consumed: list[dict[str, Any]]) -> bool:
            until = getattr(to, "until", None)
            return truthy(self._data.expr(until, consumed, variables, f"{ref}/listen/to/until"))

        progress = Consumption(to, matches, until_met)

        def step() -> bool:
            """Offer the buffered events, oldest first; those the listen wants are taken."""
            index = 0
            while index < len(self._events) and not progress.done:
                if progress.offer(self._events[index]):
                    del self._events[index]
                else:
                    index += 1
            return progress.done

        was = self._phase
        self._phase = "waiting"
        listening = sorted(
            t for t in progress.filter_types() if isinstance(t, str) and not t.startswith("${")
        )
        if self._indexed and listening:
            workflow.upsert_search_attributes([SA_LISTENING.value_set(listening)])
        evicted = False
        try:
            await workflow.wait_condition(step)
        except GeneratorExit:
            # The worker evicted the run from its cache and is closing its coroutines:
            # the workflow can be asked nothing any more (a replay rebuilds the state).
            evicted = True
            raise
        finally:
            self._phase = was
            if self._indexed and listening and not evicted:
                workflow.upsert_search_attributes([SA_LISTENING.value_unset()])
        if task.listen.read == "envelope":
            return progress.consumed
        return [event.get("data") for event in progress.consumed]

    async def _emit(
        self, spec: EmitConfiguration, data: Any, variables: dict[str, Any], ref: str
    ) -> dict[str, Any]:
        attrs = self._data.interpolate(
            spec.event.with_.model_dump(exclude_unset=True),
            data,
            variables,
            f"{ref}/emit/event/with",
        )
        event = {
            "specversion": "1.0",
            "id": str(workflow.uuid4()),
            "time": workflow.now().isoformat(),
            "source": f"temporalflow/{workflow.info().workflow_id}",
            **attrs,
        }
        await self._activity(ACTIVITY_EMIT, event, ref, timedelta(seconds=30), retries=5)
        return event

    async def _call(self, task: TaskBase, data: Any, variables: dict[str, Any], ref: str) -> Any:
        timeout = self._task_timeout(task, ref) or DEFAULT_CALL_TIMEOUT
        # Exact type first: the common case, and in the sandbox isinstance is a proxy check.
        if type(task) is not CallFunction:
            return await self._call_protocol(task, data, variables, ref, timeout)
        args = self._data.interpolate(task.with_ or {}, data, variables, f"{ref}/with")
        function = (self._use.functions or {}).get(task.call)
        if function is not None:
            # A function declared in the document is a task of its own, run with the
            # call's arguments as its input.
            output, _ = await self._run_task(
                task.call, function, args, self._scope(variables), f"/use/functions/{task.call}"
            )
            return output
        return await self._activity(task.call, args, ref, timeout)

    async def _call_protocol(
        self,
        task: TaskBase,
        data: Any,
        variables: dict[str, Any],
        ref: str,
        budget: timedelta,
    ) -> Any:
        """An HTTP or OpenAPI call, within `budget` (its activity's timeouts)."""

        def interpolate(value: Any, where: str) -> Any:
            return self._data.interpolate(value, data, variables, where)

        if isinstance(task, CallHTTP | CallOpenAPI):
            credentials = Credentials(
                self._use.authentications or {}, self._data.secrets, interpolate
            )
            if isinstance(task, CallHTTP):
                request = http_request(task.with_, data, interpolate, credentials, ref)
                return await self._activity(ACTIVITY_HTTP, request, ref, budget)
            return await self._activity(
                ACTIVITY_OPENAPI,
                openapi_request(task.with_, interpolate, credentials, ref),
                ref,
                budget,
            )
        # The validator refuses the other protocols by name before a run starts.
        raise WorkflowError.of(
            ErrorType.CONFIGURATION,
            f"{task.KIND.partition(':')[2]!r} calls are not supported",
            instance=f"{ref}/call",
        )

    async def _run(self, task: RunTask, data: Any, variables: dict[str, Any], ref: str) -> Any:
        spec = task.run
        if not isinstance(spec, RunWorkflow):
            kinds = sorted(set(spec.model_fields_set) & set(PROCESS_KINDS))
            raise WorkflowError.of(
                ErrorType.CONFIGURATION,
                f"run: {', '.join(kinds) or 'this process'} is not supported yet; "
                "use run: workflow",
                instance=f"{ref}/run",
            )
        target = spec.workflow
        resolved: ResolvedDefinition = await self._activity(
            ACTIVITY_RESOLVE,
            ResolveRequest(
                namespace=target.namespace,
                name=target.name,
                # Unset means whichever version the worker knows, not one named "latest".
                version=target.version if _given(target, "version") else None,
            ),
            ref,
            timedelta(seconds=30),
            retries=5,
            result_type=ResolvedDefinition,
        )
        child_input = self._data.interpolate(
            target.input if _given(target, "input") else data,
            data,
            variables,
            f"{ref}/run/workflow/input",
        )
        check_payload(child_input, "the child workflow's input", ref)
        child = RunInput(
            document=resolved.document, input=child_input, definition=resolved.definition
        )
        child_id = f"{workflow.info().workflow_id}/{ref.strip('/').replace('/', '.')}"
        queue = resolved.task_queue or workflow.info().task_queue
        options: dict[str, Any] = (
            child_start_options(child, resolved.temporal_namespace, ref)
            if workflow.patched(PATCH_CHILD_ATTRIBUTES)
            else {}
        )
        try:
            if spec.await_ is False:
                await workflow.start_child_workflow(
                    WORKFLOW_TYPE,
                    child,
                    id=child_id,
                    task_queue=queue,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    **options,
                )
                return data
            return await workflow.execute_child_workflow(
                WORKFLOW_TYPE, child, id=child_id, task_queue=queue, **options
            )
        except ChildWorkflowError as err:
            raise _from_failure(err, ref) from None

    async def _activity(
        self,
        name: str,
        arg: Any,
        ref: str,
        start_to_close: timedelta,
        retries: int = LOST_WORKER_ATTEMPTS,
        result_type: type | None = None,
    ) -> Any:
        # Encoded here, once, rather than by the SDK: the payload's own size is checked
        # (not an estimate from a second encoding), and the result comes back as its JSON
        # text too, which the task log previews instead of encoding the value again.
        converter = self._converter
        if converter is None:
            converter = self._converter = workflow.payload_converter()
        payload = converter.to_payloads([arg])[0]
        check_payload_size(len(payload.data), f"the input of {name!r}", ref)
        try:
            raw: RawValue = await workflow.execute_activity(
                name,
                RawValue(payload),
                # The task's whole budget, every attempt included.
                schedule_to_close_timeout=start_to_close,
                start_to_close_timeout=start_to_close,
                # A worker that dies mid-call stops beating (`tflow_workers.heartbeats`)
                # and the call goes to another worker after this, not after the timeout.
                heartbeat_timeout=ACTIVITY_HEARTBEAT_TIMEOUT,
                # A call's retries are the document's business (try/catch/retry): the
                # activities raise every failure of the call itself as non-retryable, so
                # what Temporal retries here is a lost or stopping worker.
                retry_policy=_retry_policy(retries),
                result_type=RawValue,
                summary=ref,
            )
        except ActivityError as err:
            raise _from_failure(err, ref) from None
        # `None` decodes the JSON as it is, as the SDK does for an activity with no type.
        hints = None if result_type is None else [result_type]
        result: Any = converter.from_payloads([raw.payload], hints)[0]
        if raw.payload.metadata.get("encoding") == JSON_ENCODING:
            self._previews.encoded(result, raw.payload.data)
        return result

    # ---- task log ---------------------------------------------------------------------

    def _log_start(self, name: str, ref: str, kind: str) -> LogRecord:
        entry = LogRecord(name, ref, kind, workflow.time_ns())
        self._log.append(entry)
        if len(self._log) > TASK_LOG_LIMIT:
            # Keep running entries; drop the oldest finished one.
            for i, old in enumerate(self._log):
                if old.outcome != "running":
                    del self._log[i]
                    self._log_dropped += 1
                    break
        return entry

    def _log_end(
        self, entry: LogRecord, outcome: TaskOutcome, error: Problem | None = None
    ) -> None:
        entry.ended_ns = workflow.time_ns()
        entry.outcome = outcome
        entry.error = error


# A handler takes the interpreter, the task's name, its model (the kind's own class), its
# transformed input, the variables in scope and its reference.
_TaskHandler = Callable[..., Awaitable[tuple[Any, str | None]]]
# The one table from task kind to what runs it. The kinds are the document model's
# (`tflow_workers.dsl.models.TASK_KINDS`); a kind without a handler fails on import, not
# in the middle of a run.
TASK_HANDLERS: Final[Mapping[str, _TaskHandler]] = MappingProxyType(
    {
        "call": DocumentInterpreter._task_call,
        "do": DocumentInterpreter._task_do,
        "emit": DocumentInterpreter._task_emit,
        "for": DocumentInterpreter._task_for,
        "fork": DocumentInterpreter._task_fork,
        "listen": DocumentInterpreter._task_listen,
        "raise": DocumentInterpreter._task_raise,
        "run": DocumentInterpreter._task_run,
        "set": DocumentInterpreter._task_set,
        "switch": DocumentInterpreter._task_switch,
        "try": DocumentInterpreter._task_try,
        "wait": DocumentInterpreter._task_wait,
    }
)
if set(TASK_HANDLERS) != set(TASK_KINDS):
    raise ImportError(
        f"task kinds without a handler: {sorted(set(TASK_KINDS) - set(TASK_HANDLERS))}; "
        f"handlers without a kind: {sorted(set(TASK_HANDLERS) - set(TASK_KINDS))}"
    )


@functools.cache
def _retry_policy(attempts: int) -> RetryPolicy:
    """One policy per number of attempts, shared: the SDK only reads it."""
    return RetryPolicy(maximum_attempts=attempts)


def _from_failure(err: ActivityError | ChildWorkflowError, ref: str) -> WorkflowError:
    """Turn an activity's or child's failure back into the DSL error it carries."""
    cause = err.cause
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type == APPLICATION_ERROR_TYPE:
            details = cause.details[0] if cause.details else {}
            if isinstance(details, dict) and "type" in details:
                problem = Problem.model_validate(details)
                return WorkflowError(problem).at(ref)
        if isinstance(cause, ApplicationError) and cause.type in ("NotFoundError",):
            break
        nxt = getattr(cause, "cause", None)
        if nxt is None:
            break
        cause = nxt
    message = str(cause or err)
    is_timeout = "timeout" in type(cause).__name__.lower() if cause is not None else False
    return WorkflowError.of(
        ErrorType.TIMEOUT if is_timeout else ErrorType.RUNTIME,
        message,
        title=type(cause).__name__ if cause is not None else "ActivityError",
        instance=ref,
    )


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _keyword_at_start(info: workflow.Info, name: str) -> str | None:
    """A keyword search attribute the run started with.

    Read from the untyped view on purpose: the server adds each attribute's type when it
    hands out the history, and a history read while it has not loaded the namespace's
    attribute types (seen on the dev server just after namespaces were added) carries the
    values untyped, which the typed view drops. A live run and its replay must agree on
    whether the run is indexed, or the patch marker below it fails the replay.
    """
    values = info.search_attributes.get(name)
    return str(values[0]) if values else None
