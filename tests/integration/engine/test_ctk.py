"""The Serverless Workflow conformance kit: every scenario of `tests/data/ctk/*.feature`
runs through the real engine on the dev server, and every step is asserted as written.

The features are parsed with the Cucumber project's Gherkin parser; each step's text must
match one of the step definitions below, or the scenario fails naming the step. The public
hosts the scenarios call are answered by a local stand-in (`ctk_standin`), reached through
the engine's HTTP client, which this test builds on a transport that redirects them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ctk_standin
import httpx
import pytest
from aiohttp import web
from gherkin.parser import Parser
from gherkin.token_scanner import TokenScanner
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tflow_devstack.process import free_port
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

CTK_DIR = REPO_ROOT / "tests" / "data" / "ctk"
MISSING = object()


@dataclass(frozen=True)
class Step:
    keyword: str
    text: str
    doc: str | None


@dataclass(frozen=True)
class Scenario:
    feature: str
    name: str
    steps: tuple[Step, ...]

    @property
    def id(self) -> str:
        return f"{self.feature}: {self.name}"


def scenarios() -> list[Scenario]:
    found: list[Scenario] = []
    for path in sorted(CTK_DIR.glob("*.feature")):
        document: Any = Parser().parse(TokenScanner(path.read_text(encoding="utf-8")))
        for child in document["feature"]["children"]:
            scenario = child.get("scenario")
            if scenario is None:
                continue
            steps = tuple(
                Step(
                    step["keyword"].strip(),
                    step["text"],
                    step["docString"]["content"] if "docString" in step else None,
                )
                for step in scenario["steps"]
            )
            found.append(Scenario(path.stem, scenario["name"], steps))
    return found


SCENARIOS = scenarios()


@dataclass
class Run:
    """One scenario's state as its steps go."""

    client: Client
    task_queue: str
    definition: dict[str, Any] | None = None
    input: Any = None
    executed: bool = False
    output: Any = MISSING
    error: dict[str, Any] | None = None
    log: list[str] = field(default_factory=list)

    def completed_output(self) -> Any:
        assert self.executed, "the workflow was not executed"
        assert self.error is None, f"the workflow faulted: {self.error}"
        return self.output


def docstring(step: Step) -> Any:
    assert step.doc is not None, f"step {step.text!r} needs a doc string"
    return load_yaml(step.doc)


def lookup(value: Any, path: str) -> Any:
    """The property at a dotted path (`content.id`), or MISSING."""
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


async def given_definition(run: Run, step: Step) -> None:
    definition = docstring(step)
    assert isinstance(definition, dict)
    run.definition = definition


async def given_input(run: Run, step: Step) -> None:
    run.input = docstring(step)


async def executed(run: Run, step: Step) -> None:
    assert run.definition is not None, "no workflow definition was given"
    handle = await run.client.start_workflow(
        WORKFLOW_TYPE,
        RunInput(document=run.definition, input=run.input),
        id=f"ctk-{uuid.uuid4()}",
        task_queue=run.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    try:
        run.output = await handle.result()
    except WorkflowFailureError as failure:
        cause = failure.cause
        assert isinstance(cause, ApplicationError), f"the run failed outside the DSL: {cause}"
        run.error = cause.details[0]
    status = await handle.query("status", result_type=RunStatus)
    run.log = [entry.name for entry in status.log]
    run.executed = True


async def should_complete(run: Run, step: Step) -> None:
    run.completed_output()


async def should_complete_with_output(run: Run, step: Step) -> None:
    assert run.completed_output() == docstring(step)


async def should_fault(run: Run, step: Step) -> None:
    assert run.executed, "the workflow was not executed"
    assert run.error is not None, f"the workflow completed with {run.output!r}"


async def should_fault_with_error(run: Run, step: Step) -> None:
    await should_fault(run, step)
    assert run.error == docstring(step)


async def has_properties(run: Run, step: Step, names: str) -> None:
    output = run.completed_output()
    for name in re.findall(r"'([^']+)'", names):
        assert lookup(output, name) is not MISSING, f"no property {name!r} in {output!r}"


async def has_value(run: Run, step: Step, name: str) -> None:
    assert lookup(run.completed_output(), name) == docstring(step)


async def has_items(run: Run, step: Step, name: str, count: str) -> None:
    value = lookup(run.completed_output(), name)
    assert isinstance(value, list), f"{name!r} is not an array: {value!r}"
    assert len(value) == int(count)


def position(run: Run, task: str) -> int:
    assert run.executed, "the workflow was not executed"
    assert task in run.log, f"{task} did not run (ran: {run.log})"
    return run.log.index(task)


async def runs_first(run: Run, step: Step, task: str) -> None:
    assert position(run, task) == 0, f"ran first: {run.log[0]}"


async def runs_last(run: Run, step: Step, task: str) -> None:
    assert run.log, "no task ran"
    assert run.log[-1] == task, f"ran last: {run.log[-1]}"


async def runs_after(run: Run, step: Step, task: str, before: str) -> None:
    assert position(run, task) > position(run, before), f"order: {run.log}"


StepHandler = Callable[..., Awaitable[None]]
_STEP_TEXTS: list[tuple[str, StepHandler]] = [
    (r"a workflow with definition:", given_definition),
    (r"given the workflow input is:", given_input),
    (r"the workflow is executed", executed),
    (r"the workflow should complete", should_complete),
    (r"the workflow should complete with output:", should_complete_with_output),
    (r"the workflow should fault", should_fault),
    (r"the workflow should fault with error:", should_fault_with_error),
    (r"the workflow output should have properties (.+)", has_properties),
    (r"the workflow output should have a '([^']+)' property with value:", has_value),
    (
        r"the workflow output should have a '([^']+)' property containing (\d+) items",
        has_items,
    ),
    (r"(\w+) should run first", runs_first),
    (r"(\w+) should run last", runs_last),
    (r"(\w+) should run after (\w+)", runs_after),
]
STEPS = [(re.compile(pattern), handler) for pattern, handler in _STEP_TEXTS]


def handler_for(step: Step) -> tuple[StepHandler, tuple[str, ...]]:
    for pattern, handler in STEPS:
        match = pattern.fullmatch(step.text.strip())
        if match:
            return handler, match.groups()
    raise AssertionError(f"no step definition for: {step.keyword} {step.text}")


@pytest.fixture(scope="module")
async def standin() -> AsyncIterator[str]:
    runner = web.AppRunner(ctk_standin.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def ctk_queue(temporal_client: Client, standin: str) -> AsyncIterator[str]:
    queue = f"ctk-{uuid.uuid4().hex[:8]}"
    http = httpx.AsyncClient(transport=ctk_standin.StandInTransport(standin), timeout=30)
    activities = EngineActivities(
        client=temporal_client, router_task_queue=f"{queue}-router", http=http
    )
    async with build_worker(temporal_client, queue, activities):
        yield queue
    await http.aclose()


def test_the_kit_is_here() -> None:
    assert len(SCENARIOS) == 21, [s.id for s in SCENARIOS]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_scenario(scenario: Scenario, temporal_client: Client, ctk_queue: str) -> None:
    run = Run(temporal_client, ctk_queue)
    for step in scenario.steps:
        handler, arguments = handler_for(step)
        await handler(run, step, *arguments)


def test_every_step_has_a_definition() -> None:
    for scenario in SCENARIOS:
        for step in scenario.steps:
            handler_for(step)


async def test_the_standin_transport_never_reaches_other_hosts(standin: str) -> None:
    async with httpx.AsyncClient(transport=ctk_standin.StandInTransport(standin)) as http:
        pet = await http.get("https://petstore.swagger.io/v2/pet/1")
        assert pet.json()["id"] == 1
        with pytest.raises(httpx.ConnectError, match=r"example\.org is not answered"):
            await http.get("https://example.org/")
