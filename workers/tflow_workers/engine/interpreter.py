"""The interpreter: runs any valid Serverless Workflow 1.0 document, task by task.

`DocumentInterpreter` holds one run's state and executes its document; the Temporal
workflow class (`serverless_workflow.ServerlessWorkflow`) is a thin shell around it. This
module is imported through `workflow.unsafe.imports_passed_through()`, so it is loaded
once per worker process rather than once per run by the workflow sandbox; the sandbox's
checks therefore do not guard it, and its determinism rests on its own discipline (and
on the replay tests): jq evaluation is pure, time comes from `workflow.now()`,
randomness from `workflow.random()`, waits are Temporal timers, events arrive as
signals, every call that touches the outside world is an activity, and module-level
state is limited to caches of pure functions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, cast

import uritemplate
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from tflow_workers.dsl.durations import parse_duration
from tflow_workers.dsl.expressions import ExpressionError, evaluate, interpolate
from tflow_workers.dsl.models import TASK_KINDS
from tflow_workers.dsl.models import task_kind as model_task_kind
from tflow_workers.dsl.schemas import schema_errors
from tflow_workers.dsl.validate import validate_document
from tflow_workers.engine.errors import (
    APPLICATION_ERROR_TYPE,
    ErrorType,
    Problem,
    WorkflowError,
    check_payload,
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
    HttpRequest,
    OpenApiRequest,
    ResolvedDefinition,
    ResolveRequest,
    ResumeState,
    RunInput,
    RunPhase,
    RunStatus,
    TaskLogEntry,
)

RUNTIME_NAME = "temporal-flow"
RUNTIME_VERSION = "0.1.0"
DEFAULT_CALL_TIMEOUT = timedelta(minutes=5)
SEEN_EVENTS_LIMIT = 1000
# Runs recorded before this patch upserted TflowCurrentTask at every top-level task; newer
# runs upsert it only when a task starts to wait (see `_waiting_in`).
PATCH_CURRENT_TASK_ON_WAIT = "tflow-current-task-on-wait"
# Runs recorded before this patch passed an emit task's input on as its output; newer runs
# output the emitted event, as the spec says.
PATCH_EMIT_OUTPUT = "tflow-emit-output"
# Runs recorded before this patch did not check data schemas; a run that would now fault
# on one must replay as it ran.
PATCH_DATA_SCHEMAS = "tflow-data-schemas"
# Runs recorded before this patch matched event filter strings for equality only; newer
# runs also read them as regular expressions, which can consume other events.
PATCH_FILTER_REGEX = "tflow-event-filter-regex"
# Waiting kinds: a run can sit in these for long, so they are what TflowCurrentTask shows.
WAITING_KINDS = frozenset({"wait", "listen", "run"})
VALIDATION_CACHE_SIZE = 256
_validated: OrderedDict[str, tuple[str, ...]] = OrderedDict()


class _End(Exception):
    """`then: end`: the workflow completes now, with this output."""

    def __init__(self, output: Any) -> None:
        self.output = output


class _ContinueAsNew(Exception):
    def __init__(self, state: ResumeState) -> None:
        self.state = state


def task_kind(task: dict[str, Any]) -> str:
    kind = model_task_kind(task)
    if kind is None:
        raise WorkflowError.of(ErrorType.CONFIGURATION, f"unknown task kind: {sorted(task)}")
    return kind


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def document_problems(document: dict[str, Any]) -> tuple[str, ...]:
    """The validation problems of `document`, cached by its digest: every run of a
    definition brings the same document, and validating it costs milliseconds."""
    digest = hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
    problems = _validated.get(digest)
    if problems is None:
        problems = tuple(str(issue) for issue in validate_document(document))
        _validated[digest] = problems
        if len(_validated) > VALIDATION_CACHE_SIZE:
            _validated.popitem(last=False)
    else:
        _validated.move_to_end(digest)
    return problems


class DocumentInterpreter:
    """One run of a document: its state, the task kinds, the task log."""

    def __init__(self) -> None:
        self._doc: dict[str, Any] = {}
        self._context: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []
        self._log: list[TaskLogEntry] = []
        self._log_dropped = 0
        self._phase: RunPhase = "pending"
        self._current: str | None = None
        self._output: Any = None
        self._error: Problem | None = None
        self._secrets: dict[str, Any] = {}
        self._workflow_input: Any = None
        self._started_at = ""
        self._indexed = False
        # Whether TflowCurrentTask follows waiting tasks (new runs) or every top-level task
        # (runs recorded before the patch), and the value last upserted.
        self._current_on_wait = False
        self._indexed_task: str | None = None
        self._workflow_descriptor: dict[str, Any] = {}
        # The top-level task running now: (index, raw input), for continue-as-new.
        self._top: tuple[int, Any] = (0, None)
        self._resume_loop: tuple[int, Any] | None = None
        # Ids of the events received, oldest first, to drop a redelivered one.
        self._seen_events: dict[str, None] = {}

    # ---- what the workflow class delegates to -----------------------------------------

    async def run(self, params: RunInput) -> Any:
        self._doc = params.document
        info = workflow.info()
        resume = params.resume
        started = resume.started_at if resume else workflow.now()
        self._started_at = started.isoformat()
        if resume is not None:
            if resume.loop_index is not None:
                self._resume_loop = (resume.loop_index, resume.loop_data)
            self._context = dict(resume.context)
            self._log = list(resume.log)
            self._log_dropped = resume.log_dropped
            self._events = list(resume.pending_events) + self._events
            self._workflow_input = resume.workflow_input
        self._phase = "running"
        # Only runs started with the engine's search attributes (so they are registered on
        # the namespace) track their current task there.
        self._indexed = info.typed_search_attributes.get(SA_DEFINITION) is not None
        if self._indexed:
            self._current_on_wait = workflow.patched(PATCH_CURRENT_TASK_ON_WAIT)
            self._indexed_task = info.typed_search_attributes.get(SA_CURRENT_TASK)
        self._workflow_descriptor = {
            "id": info.workflow_id,
            "definition": self._doc,
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
            if resume is None:
                # Whoever started the run should have validated the document; a run that
                # gets an invalid one anyway fails at once with every problem listed.
                problems = document_problems(self._doc)
                if problems:
                    raise WorkflowError.of(
                        ErrorType.VALIDATION,
                        "; ".join(problems),
                        title="Invalid workflow document",
                        instance="/",
                    )
            secret_names = sorted((self._doc.get("use") or {}).get("secrets") or [])
            if secret_names:
                self._secrets = await workflow.execute_activity(
                    ACTIVITY_SECRETS,
                    secret_names,
                    result_type=dict,
                    start_to_close_timeout=timedelta(seconds=30),
                )
            output = await self._run_document(params, resume)
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
            log=self._log,
            log_dropped=self._log_dropped,
            output=self._output,
            error=self._error,
        )

    # ---- document ---------------------------------------------------------------------

    async def _run_document(self, params: RunInput, resume: ResumeState | None) -> Any:
        doc = self._doc
        if resume is None:
            data = params.input if params.input is not None else {}
            self._workflow_input = data
            wf_input = doc.get("input") or {}
            self._check_schema(wf_input, data, "/input/schema", "the workflow input")
            if "from" in wf_input:
                data = self._transform(wf_input["from"], data, {}, "/input/from")
            start = 0
        else:
            data = resume.data
            start = resume.next_task
        timeout = self._timeout_of(doc.get("timeout"), "/timeout")
        if timeout is not None and resume is not None:
            # The workflow's timeout counts from its first run, not from this one.
            timeout = max(timeout - (workflow.now() - resume.started_at), timedelta(0))
        body = self._run_list(doc.get("do") or [], data, {}, "/do", start=start, top=True)
        try:
            if timeout is not None:
                output = await self._with_timeout(body, timeout, "/do", "workflow")
            else:
                output = await body
        except _End as end:
            output = end.output
        wf_output = doc.get("output") or {}
        if "as" in wf_output:
            output = self._transform(wf_output["as"], output, {}, "/output/as")
        self._check_schema(wf_output, output, "/output/schema", "the workflow output")
        return output

    # ---- task lists -------------------------------------------------------------------

    async def _run_list(
        self,
        tasks: list[dict[str, Any]],
        data: Any,
        scope: dict[str, Any],
        pointer: str,
        start: int = 0,
        top: bool = False,
    ) -> Any:
        index = start
        names = [next(iter(item)) for item in tasks]
        while index < len(tasks):
            if top and index > start and workflow.info().is_continue_as_new_suggested():
                raise _ContinueAsNew(self._resume_state(index, data))
            name = names[index]
            task = tasks[index][name]
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
                entry.ended_at = workflow.now()
        return ResumeState(
            next_task=next_task,
            data=data,
            loop_index=loop[0] if loop else None,
            loop_data=loop[1] if loop else None,
            context=self._context,
            started_at=workflow.now() if not self._started_at else _parse_iso(self._started_at),
            workflow_input=self._workflow_input,
            log=self._log,
            log_dropped=self._log_dropped,
            pending_events=self._events,
        )

    # ---- one task ---------------------------------------------------------------------

    async def _run_task(
        self,
        name: str,
        task: dict[str, Any],
        raw_input: Any,
        scope: dict[str, Any],
        ref: str,
        top: bool = False,
    ) -> tuple[Any, str | None]:
        kind = task_kind(task)
        entry = self._log_start(name, ref, kind)
        previous = self._current
        self._current = name
        if top and self._indexed and not self._current_on_wait:
            workflow.upsert_search_attributes([SA_CURRENT_TASK.value_set(name)])
        try:
            descriptor = {
                "name": name,
                "reference": ref,
                "definition": task,
                "input": raw_input,
                "startedAt": {"iso8601": entry.started_at.isoformat()},
            }
            variables = {**scope, "task": descriptor}
            if "if" in task and not _truthy(
                self._expr(task["if"], raw_input, variables, f"{ref}/if")
            ):
                self._log_end(entry, "skipped")
                return raw_input, None
            data = raw_input
            task_input = task.get("input") or {}
            self._check_schema(task_input, raw_input, f"{ref}/input/schema", "the task input")
            if "from" in task_input:
                data = self._transform(
                    task_input["from"], raw_input, variables, f"{ref}/input/from"
                )
            variables["input"] = data
            descriptor["input"] = data
            timeout = self._timeout_of(task.get("timeout"), f"{ref}/timeout")
            work = self._execute(kind, name, task, data, variables, ref)
            if timeout is not None:
                output, then = await self._with_timeout(work, timeout, ref, f"task {name!r}")
            else:
                output, then = await work
            task_output = task.get("output") or {}
            if "as" in task_output:
                output = self._transform(
                    task_output["as"], output, {**variables, "output": output}, f"{ref}/output/as"
                )
            self._check_schema(task_output, output, f"{ref}/output/schema", "the task output")
            export = task.get("export") or {}
            if "as" in export:
                exported = self._transform(
                    export["as"], output, {**variables, "output": output}, f"{ref}/export/as"
                )
                if not isinstance(exported, dict):
                    raise WorkflowError.of(
                        ErrorType.VALIDATION,
                        "export.as must produce an object for $context, got "
                        f"{type(exported).__name__}",
                        instance=f"{ref}/export/as",
                    )
                self._context = exported
                self._check_schema(export, exported, f"{ref}/export/schema", "the exported context")
            self._log_end(entry, "completed")
            return output, then if then is not None else task.get("then")
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

    async def _execute(
        self,
        kind: str,
        name: str,
        task: dict[str, Any],
        data: Any,
        variables: dict[str, Any],
        ref: str,
    ) -> tuple[Any, str | None]:
        if kind in WAITING_KINDS and not (kind == "run" and task["run"].get("await") is False):
            self._waiting_in(name)
        handler = TASK_HANDLERS.get(kind)
        if handler is None:
            raise WorkflowError.of(ErrorType.CONFIGURATION, f"unsupported task kind {kind!r}")
        return await handler(self, name, task, data, variables, ref)

    # Task handlers, one per kind (`TASK_HANDLERS`): each returns the task's raw output
    # and the flow directive it chose, if any (only a switch chooses one).

    async def _task_set(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return self._set(task["set"], data, variables, ref), None

    async def _task_switch(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return data, self._switch(task["switch"], data, variables, ref)

    async def _task_wait(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        await workflow.sleep(self._duration(task["wait"], f"{ref}/wait"))
        return data, None

    async def _task_raise(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        raise self._raise_error(task["raise"], data, variables, ref)

    async def _task_do(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._run_list(task["do"], data, self._scope(variables), f"{ref}/do"), None

    async def _task_for(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._for(task, data, variables, ref), None

    async def _task_try(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._try(name, task, data, variables, ref), None

    async def _task_fork(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._fork(task["fork"], data, variables, ref), None

    async def _task_listen(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._listen(task["listen"], data, variables, ref), None

    async def _task_emit(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        event = await self._emit(task["emit"], data, variables, ref)
        # Runs recorded before the emitted event became the task's output carried the
        # input on; replaying them must see the same data downstream.
        return (event if workflow.patched(PATCH_EMIT_OUTPUT) else data), None

    async def _task_call(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._call(task, data, variables, ref), None

    async def _task_run(
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> tuple[Any, str | None]:
        return await self._run(task["run"], data, variables, ref), None

    def _waiting_in(self, name: str) -> None:
        """Point TflowCurrentTask at a task that starts to wait. Only waits are indexed: a
        run sits in them for long, while a running call already shows as the pending
        activity (summarised with its task reference) and in the `status` query; an
        upsert per task would add a history event and a visibility write to each."""
        if self._indexed and self._current_on_wait and name != self._indexed_task:
            workflow.upsert_search_attributes([SA_CURRENT_TASK.value_set(name)])
            self._indexed_task = name

    # ---- expressions and data ---------------------------------------------------------

    def _base_vars(self) -> dict[str, Any]:
        return {
            "context": self._context,
            "workflow": self._workflow_descriptor,
            "runtime": {"name": RUNTIME_NAME, "version": RUNTIME_VERSION},
            "secret": self._secrets,
        }

    def _scope(self, variables: dict[str, Any]) -> dict[str, Any]:
        """The variables a nested task list inherits (loop items, caught errors)."""
        return {k: v for k, v in variables.items() if k not in ("task", "input", "output")}

    def _expr(self, expression: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        if not isinstance(expression, str):
            return expression
        try:
            return evaluate(
                expression, data, {**self._base_vars(), **variables}, now=workflow.now()
            )
        except ExpressionError as err:
            raise WorkflowError(
                Problem.model_validate({**err.to_error(), "instance": where})
            ) from None

    def _interpolate(self, value: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        try:
            return interpolate(value, data, {**self._base_vars(), **variables}, now=workflow.now())
        except ExpressionError as err:
            raise WorkflowError(
                Problem.model_validate({**err.to_error(), "instance": where})
            ) from None

    def _transform(self, spec: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """`input.from` / `output.as` / `export.as`: a jq string, or a value to interpolate."""
        if isinstance(spec, str):
            return self._expr(spec, data, variables, where)
        return self._interpolate(spec, data, variables, where)

    def _check_schema(self, owner: dict[str, Any], value: Any, where: str, what: str) -> None:
        """Fault with a validation error when `value` does not match `owner.schema`."""
        schema = owner.get("schema")
        if not isinstance(schema, dict) or "document" not in schema:
            return
        if not workflow.patched(PATCH_DATA_SCHEMAS):
            return
        problems = schema_errors(schema["document"], value)
        if problems:
            raise WorkflowError.of(
                ErrorType.VALIDATION,
                f"{what} does not match its schema: " + "; ".join(problems),
                title="Schema validation failed",
                instance=where,
            )

    def _duration(self, value: Any, where: str) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as err:
            raise WorkflowError.of(ErrorType.CONFIGURATION, str(err), instance=where) from None

    def _timeout_of(self, spec: Any, where: str) -> timedelta | None:
        if spec is None:
            return None
        if isinstance(spec, str):
            named = ((self._doc.get("use") or {}).get("timeouts") or {}).get(spec)
            if named is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no timeout named {spec!r} in use.timeouts",
                    instance=where,
                )
            spec = named
        return self._duration(spec.get("after"), f"{where}/after")

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

    def _set(self, spec: Any, data: Any, variables: dict[str, Any], ref: str) -> Any:
        if isinstance(spec, str):
            return self._expr(spec, data, variables, f"{ref}/set")
        return self._interpolate(spec, data, variables, f"{ref}/set")

    def _switch(
        self, cases: list[dict[str, Any]], data: Any, variables: dict[str, Any], ref: str
    ) -> str | None:
        default: str | None = None
        for i, item in enumerate(cases):
            case_name = next(iter(item))
            case = item[case_name] or {}
            if "when" not in case:
                default = case.get("then", "continue")
                continue
            if _truthy(
                self._expr(case["when"], data, variables, f"{ref}/switch/{i}/{case_name}/when")
            ):
                then: str = case.get("then", "continue")
                return then
        return default

    def _raise_error(
        self, spec: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> WorkflowError:
        error = spec.get("error")
        if isinstance(error, str):
            named = ((self._doc.get("use") or {}).get("errors") or {}).get(error)
            if named is None:
                return WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no error named {error!r} in use.errors",
                    instance=f"{ref}/raise/error",
                )
            error = named
        resolved = self._interpolate(error, data, variables, f"{ref}/raise/error")
        problem = Problem.model_validate({"instance": ref, **resolved})
        return WorkflowError(problem)

    async def _for(
        self, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        spec = task["for"]
        each = spec.get("each", "item")
        at = spec.get("at", "index")
        items = self._expr(spec["in"], data, variables, f"{ref}/for/in")
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
            item = items[index]
            loop_scope = {**scope, each: item, at: index}
            if "while" in task and not _truthy(
                self._expr(task["while"], data, {**variables, **loop_scope}, f"{ref}/while")
            ):
                break
            data = await self._run_list(task["do"], data, loop_scope, f"{ref}/do")
        return data

    async def _fork(
        self, spec: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        branches = spec.get("branches") or []
        scope = self._scope(variables)

        async def branch(i: int) -> Any:
            name = next(iter(branches[i]))
            output, _ = await self._run_task(
                name, branches[i][name], data, scope, f"{ref}/fork/branches/{i}/{name}"
            )
            return output

        tasks = [asyncio.ensure_future(branch(i)) for i in range(len(branches))]
        if not tasks:
            return [] if not spec.get("compete") else data
        try:
            if spec.get("compete"):
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
        self, name: str, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        catch = task.get("catch") or {}
        scope = self._scope(variables)
        retry = catch.get("retry")
        if isinstance(retry, str):
            named = ((self._doc.get("use") or {}).get("retries") or {}).get(retry)
            if named is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no retry policy named {retry!r} in use.retries",
                    instance=f"{ref}/catch/retry",
                )
            retry = named
        attempt = 0
        first_failure = workflow.now()
        while True:
            try:
                return await self._run_list(task["try"], data, scope, f"{ref}/try")
            except WorkflowError as err:
                var = catch.get("as", "error")
                caught_scope = {**scope, var: err.problem.as_data()}
                if not self._catches(catch, err.problem, data, caught_scope, ref):
                    raise
                if retry is not None:
                    delay = self._retry_delay(
                        retry, attempt, err.problem, data, caught_scope, first_failure, ref
                    )
                    if delay is not None:
                        attempt += 1
                        self._waiting_in(name)
                        await workflow.sleep(delay)
                        continue
                    if "do" not in catch:
                        # The retries could not recover and nothing handles the error.
                        raise
                if "do" in catch:
                    return await self._run_list(catch["do"], data, caught_scope, f"{ref}/catch/do")
                return data

    def _catches(
        self,
        catch: dict[str, Any],
        problem: Problem,
        data: Any,
        scope: dict[str, Any],
        ref: str,
    ) -> bool:
        wanted = (catch.get("errors") or {}).get("with") or {}
        actual = problem.as_data()
        for key, value in wanted.items():
            if key == "type":
                if not same_error_type(value, actual.get("type")):
                    return False
            elif actual.get(key if key != "details" else "detail") != value:
                return False
        if "when" in catch and not _truthy(
            self._expr(catch["when"], data, scope, f"{ref}/catch/when")
        ):
            return False
        return not (
            "exceptWhen" in catch
            and _truthy(self._expr(catch["exceptWhen"], data, scope, f"{ref}/catch/exceptWhen"))
        )

    def _retry_delay(
        self,
        policy: dict[str, Any],
        attempt: int,
        problem: Problem,
        data: Any,
        scope: dict[str, Any],
        first_failure: Any,
        ref: str,
    ) -> timedelta | None:
        """The delay before the next attempt, or None when the policy is exhausted."""
        where = f"{ref}/catch/retry"
        if "when" in policy and not _truthy(self._expr(policy["when"], data, scope, where)):
            return None
        if "exceptWhen" in policy and _truthy(self._expr(policy["exceptWhen"], data, scope, where)):
            return None
        limit = policy.get("limit") or {}
        count = (limit.get("attempt") or {}).get("count")
        if count is not None and attempt >= int(count):
            return None
        elapsed = workflow.now() - first_failure
        if "duration" in limit and elapsed >= self._duration(limit["duration"], f"{where}/limit"):
            return None
        base = (
            self._duration(policy["delay"], f"{where}/delay") if "delay" in policy else timedelta(0)
        )
        backoff = policy.get("backoff") or {"constant": {}}
        if "exponential" in backoff:
            delay = base * math.pow(2, attempt)
        elif "linear" in backoff:
            delay = base * (attempt + 1)
        else:
            delay = base
        jitter = policy.get("jitter")
        if jitter:
            low = self._duration(jitter.get("from", "PT0S"), f"{where}/jitter/from")
            high = self._duration(jitter.get("to", "PT0S"), f"{where}/jitter/to")
            delay += low + (high - low) * workflow.random().random()
        return delay

    async def _listen(
        self, spec: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        to = spec.get("to") or {}
        read = spec.get("read", "data")
        scope = self._scope(variables)
        where = f"{ref}/listen/to"
        # Correlation keys without `expect` take the value of the first event consumed.
        correlated: dict[str, Any] = {}
        regex = workflow.patched(PATCH_FILTER_REGEX)

        def attribute_expr(expression: str, attribute: Any) -> Any:
            return self._expr(expression, attribute, {**scope, "input": data}, where)

        def matches(event: dict[str, Any], flt: dict[str, Any]) -> bool:
            if not matches_filter(event, flt.get("with") or {}, attribute_expr, regex):
                return False
            found: dict[str, Any] = {}
            for key, rule in (flt.get("correlate") or {}).items():
                value = self._expr(rule["from"], event, variables, f"{where}/correlate/{key}")
                if "expect" in rule:
                    expected = self._interpolate(
                        rule["expect"], data, variables, f"{where}/correlate/{key}/expect"
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
            return self._until_met(to.get("until"), consumed, variables, ref)

        if not any(kind in to for kind in ("one", "all", "any")):
            raise WorkflowError.of(
                ErrorType.CONFIGURATION, "listen.to must set one, any or all", instance=where
            )
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
        try:
            await workflow.wait_condition(step)
        finally:
            self._phase = was
            if self._indexed and listening:
                workflow.upsert_search_attributes([SA_LISTENING.value_unset()])
        if read == "envelope":
            return progress.consumed
        return [event.get("data") for event in progress.consumed]

    def _until_met(
        self,
        until: Any,
        consumed: list[dict[str, Any]],
        variables: dict[str, Any],
        ref: str,
    ) -> bool:
        return _truthy(self._expr(until, consumed, variables, f"{ref}/listen/to/until"))

    async def _emit(
        self, spec: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> dict[str, Any]:
        attrs = self._interpolate(
            (spec.get("event") or {}).get("with") or {}, data, variables, f"{ref}/emit/event/with"
        )
        event = {
            "specversion": "1.0",
            "id": str(workflow.uuid4()),
            "time": workflow.now().isoformat(),
            "source": f"temporalflow/{workflow.info().workflow_id}",
            **attrs,
        }
        if "type" not in event:
            raise WorkflowError.of(
                ErrorType.VALIDATION, "an emitted event needs a type", instance=f"{ref}/emit"
            )
        await self._activity(ACTIVITY_EMIT, event, ref, timedelta(seconds=30), retries=5)
        return event

    async def _call(
        self, task: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        target = task["call"]
        args = self._interpolate(task.get("with") or {}, data, variables, f"{ref}/with")
        timeout = self._timeout_of(task.get("timeout"), f"{ref}/timeout") or DEFAULT_CALL_TIMEOUT
        if target == "http":
            request = self._http_request(args, data, variables, ref)
            return await self._activity(ACTIVITY_HTTP, request, ref, timeout)
        if target == "openapi":
            return await self._activity(
                ACTIVITY_OPENAPI, self._openapi_request(args, data, variables, ref), ref, timeout
            )
        functions = (self._doc.get("use") or {}).get("functions") or {}
        if target in functions:
            # A function declared in the document is a task of its own, run with the
            # call's arguments as its input.
            output, _ = await self._run_task(
                target, functions[target], args, self._scope(variables), f"/use/functions/{target}"
            )
            return output
        return await self._activity(target, args, ref, timeout)

    def _http_request(
        self, args: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> HttpRequest:
        endpoint = args.get("endpoint") or args.get("uri")
        auth: dict[str, Any] = {}
        if isinstance(endpoint, dict):
            auth = endpoint.get("authentication") or {}
            endpoint = endpoint.get("uri")
        if not isinstance(endpoint, str):
            raise WorkflowError.of(
                ErrorType.CONFIGURATION, "call http needs with.endpoint", instance=f"{ref}/with"
            )
        uri = _expand_uri(endpoint, data, f"{ref}/with/endpoint")
        basic, bearer = self._authentication(
            auth, data, variables, f"{ref}/with/endpoint/authentication"
        )
        return HttpRequest(
            method=str(args.get("method", "get")).upper(),
            uri=uri,
            headers={k: str(v) for k, v in (args.get("headers") or {}).items()},
            query={k: str(v) for k, v in (args.get("query") or {}).items()},
            body=args.get("body"),
            output=args.get("output", "content"),
            redirect=bool(args.get("redirect", False)),
            basic=basic,
            bearer=bearer,
        )

    def _openapi_request(
        self, args: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> OpenApiRequest:
        endpoint = (args.get("document") or {}).get("endpoint")
        auth = args.get("authentication") or {}
        if isinstance(endpoint, dict):
            auth = auth or endpoint.get("authentication") or {}
            endpoint = endpoint.get("uri")
        if not isinstance(endpoint, str):
            raise WorkflowError.of(
                ErrorType.CONFIGURATION,
                "call openapi needs with.document.endpoint",
                instance=f"{ref}/with/document",
            )
        basic, bearer = self._authentication(auth, data, variables, f"{ref}/with/authentication")
        return OpenApiRequest(
            document=endpoint,
            operation_id=str(args.get("operationId")),
            parameters=args.get("parameters") or {},
            output=args.get("output", "content"),
            redirect=bool(args.get("redirect", False)),
            basic=basic,
            bearer=bearer,
        )

    def _authentication(
        self, auth: Any, data: Any, variables: dict[str, Any], where: str
    ) -> tuple[tuple[str, str] | None, str | None]:
        """The basic credentials and bearer token of an authentication policy, inline or
        named in `use.authentications`."""
        if isinstance(auth, dict) and "use" in auth:
            named = ((self._doc.get("use") or {}).get("authentications") or {}).get(auth["use"])
            if named is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no authentication named {auth['use']!r} in use.authentications",
                    instance=where,
                )
            auth = self._interpolate(named, data, variables, where)
        basic = None
        bearer = None
        if isinstance(auth, dict) and "basic" in auth:
            fields = self._credentials(auth["basic"], ("username", "password"), f"{where}/basic")
            basic = (fields["username"], fields["password"])
        if isinstance(auth, dict) and "bearer" in auth:
            bearer = self._credentials(auth["bearer"], ("token",), f"{where}/bearer")["token"]
        return basic, bearer

    def _credentials(self, scheme: Any, keys: tuple[str, ...], where: str) -> dict[str, str]:
        """An authentication scheme's fields, inline or (`{use: <secret>}`) from the keys of
        a secret in `use.secrets`; a missing field is a configuration error, never an empty
        credential sent on."""
        source = scheme
        what = "the authentication"
        if isinstance(scheme, dict) and set(scheme) == {"use"}:
            what = f"secret {scheme['use']!r}"
            source = self._secrets.get(str(scheme["use"]))
        if not isinstance(source, dict):
            source = {}
        missing = [key for key in keys if source.get(key) is None]
        if missing:
            raise WorkflowError.of(
                ErrorType.CONFIGURATION,
                f"{what} has no {', '.join(repr(k) for k in missing)}",
                title="Incomplete credentials",
                instance=where,
            )
        return {key: str(source[key]) for key in keys}

    async def _run(
        self, spec: dict[str, Any], data: Any, variables: dict[str, Any], ref: str
    ) -> Any:
        target = spec.get("workflow")
        if target is None:
            kinds = sorted(set(spec) - {"await", "return"})
            raise WorkflowError.of(
                ErrorType.CONFIGURATION,
                f"run: {', '.join(kinds) or 'this process'} is not supported yet; "
                "use run: workflow",
                instance=f"{ref}/run",
            )
        resolved: ResolvedDefinition = await self._activity(
            ACTIVITY_RESOLVE,
            ResolveRequest(
                namespace=target.get("namespace", "default"),
                name=target["name"],
                version=target.get("version"),
            ),
            ref,
            timedelta(seconds=30),
            retries=5,
            result_type=ResolvedDefinition,
        )
        child_input = self._interpolate(
            target.get("input", data), data, variables, f"{ref}/run/workflow/input"
        )
        check_payload(child_input, "the child workflow's input", ref)
        child = RunInput(
            document=resolved.document, input=child_input, definition=resolved.definition
        )
        child_id = f"{workflow.info().workflow_id}/{ref.strip('/').replace('/', '.')}"
        queue = resolved.task_queue or workflow.info().task_queue
        try:
            if spec.get("await", True) is False:
                await workflow.start_child_workflow(
                    WORKFLOW_TYPE,
                    child,
                    id=child_id,
                    task_queue=queue,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
                return data
            return await workflow.execute_child_workflow(
                WORKFLOW_TYPE, child, id=child_id, task_queue=queue
            )
        except ChildWorkflowError as err:
            raise _from_failure(err, ref) from None

    async def _activity(
        self,
        name: str,
        arg: Any,
        ref: str,
        start_to_close: timedelta,
        retries: int = 1,
        result_type: type | None = None,
    ) -> Any:
        check_payload(
            arg.model_dump(mode="json") if hasattr(arg, "model_dump") else arg,
            f"the input of {name!r}",
            ref,
        )
        try:
            return await workflow.execute_activity(
                name,
                arg,
                start_to_close_timeout=start_to_close,
                # A call's retries are the document's business (try/catch/retry); the
                # engine's own plumbing retries transient faults itself.
                retry_policy=RetryPolicy(maximum_attempts=retries),
                result_type=result_type,
                summary=ref,
            )
        except ActivityError as err:
            raise _from_failure(err, ref) from None

    # ---- task log ---------------------------------------------------------------------

    def _log_start(self, name: str, ref: str, kind: str) -> TaskLogEntry:
        entry = TaskLogEntry(name=name, reference=ref, kind=kind, started_at=workflow.now())
        self._log.append(entry)
        if len(self._log) > TASK_LOG_LIMIT:
            # Keep running entries; drop the oldest finished one.
            for i, old in enumerate(self._log):
                if old.outcome != "running":
                    del self._log[i]
                    self._log_dropped += 1
                    break
        return entry

    def _log_end(self, entry: TaskLogEntry, outcome: Any, error: Problem | None = None) -> None:
        entry.ended_at = workflow.now()
        entry.outcome = outcome
        entry.error = error


_TaskHandler = Callable[
    [DocumentInterpreter, str, dict[str, Any], Any, dict[str, Any], str],
    Awaitable[tuple[Any, str | None]],
]
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


def _expand_uri(template: str, data: Any, where: str) -> str:
    """An RFC 6570 URI template filled from the task input's top-level properties, as the
    spec's *URI Template* says: `{pet.id}` names the property "pet.id", a property that is
    absent expands to nothing, scalars are written as JSON writes them (`true`, `null`,
    `1.5`), and an object or array is an expression error."""
    parsed = uritemplate.URITemplate(template)
    if not parsed.variable_names:
        return template
    values: dict[str, str] = {}
    for name in parsed.variable_names:
        if not isinstance(data, dict) or name not in data:
            continue
        value = data[name]
        if isinstance(value, dict | list):
            raise WorkflowError.of(
                ErrorType.EXPRESSION,
                f"URI template variable {{{name}}} is a {type(value).__name__}; only strings, "
                "numbers, booleans and null can be substituted",
                title="Invalid URI template value",
                instance=where,
            )
        values[name] = value if isinstance(value, str) else json.dumps(value)
    # The library's signature wants its own value union; these are all strings.
    expanded: str = parsed.expand(cast(Any, values))
    return expanded


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
