"""Direct routing (`spec.routing: direct`) on a real Temporal server: a listener routes an
event with its namespace's mounted table and starts the flow runs itself, with no
RootOrchestrator run. The runs are the ones a root run starts (same ids, search
attributes, memo), so the same event through either form starts each run once; an event
nothing matches is acknowledged as unroutable; runs waiting in a `listen` get the event;
other namespaces' routes are never reached; and while no table is mounted (no index yet)
nothing is acknowledged. The webhook process itself is run with `--routing direct`."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from listener_process import start_listener, stop_listener
from orchestra import Orchestra, cloud_event, orchestra
from polling import eventually_async
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_listeners.handoff import DirectHandOff
from tflow_workers.cloudevents import CloudEvent, event_workflow_id
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.model import SA_NAMESPACE, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run
from tflow_workers.orchestrator.activities import DEFINITIONS_GRACE_SECONDS, EventRouter
from tflow_workers.orchestrator.direct import DirectRouter

pytestmark = pytest.mark.integration


def direct(
    o: Orchestra, namespace: str = "", clock: Callable[[], float] = time.monotonic
) -> DirectHandOff:
    """What `python -m tflow_listeners ... --routing direct` builds."""
    router = EventRouter(o.routes_dir, o.definitions_dir, require_index=True)
    return DirectHandOff(DirectRouter(o.client, router, namespace or o.namespace, clock=clock))


async def start_waiting(o: Orchestra, waits: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    """A run of the test's namespace waiting in `waits` (a `listen` task)."""
    return await start_run(
        o.client,
        RunInput(
            document={
                "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
                "do": [waits],
            },
            definition=DefinitionRef(namespace=o.namespace, name="waits"),
        ),
        o.queues[0],
    )


def run_id(o: Orchestra, event: CloudEvent, workflow: str, namespace: str = "") -> str:
    namespace = namespace or o.namespace
    return f"{event_workflow_id(event.source, event.id, namespace)}/{namespace}/{workflow}"


async def test_the_listener_starts_the_runs_a_root_run_would(orch: Orchestra) -> None:
    orch.define("incident")
    orch.define("audit", queue=1)
    orch.publish_routes(
        orch.route("by-type", "incident", type="incident", input="${ {why: .data.message} }"),
        orch.route("audit", "audit", queue=1, type="incident", filter="${ .data.severity > 3 }"),
        indexed=True,
    )
    handoff = direct(orch)
    event = cloud_event("incident", message="disk full", severity=4)
    assert await handoff.submit(event) == "started"
    incident = orch.client.get_workflow_handle(run_id(orch, event, "incident"))
    audit = orch.client.get_workflow_handle(run_id(orch, event, "audit"))
    assert (await incident.result())["got"] == {"why": "disk full"}
    assert (await audit.result())["flow"] == "audit"
    described = await incident.describe()
    assert described.task_queue == orch.queues[0]
    assert described.typed_search_attributes.get(SA_NAMESPACE) == orch.namespace
    assert await described.memo() == {"definition": f"{orch.namespace}/incident", "version": "2"}
    # No workflow for the event itself.
    base = event_workflow_id(event.source, event.id, orch.namespace)
    with pytest.raises(RPCError) as missing:
        await orch.client.get_workflow_handle(base).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND

    # Redelivered: each run exists, nothing starts twice.
    assert await handoff.submit(event) == "duplicate"
    # The same event through a root run finds the same runs.
    decision = await orch.decide(event, orch.namespace)
    assert {(m.workflow, m.status) for m in decision.matches} == {
        ("incident", "duplicate"),
        ("audit", "duplicate"),
    }
    # And the other way round: an event a root run routed is a duplicate here.
    routed_first = cloud_event("incident", message="once", severity=1)
    assert (await orch.decide(routed_first, orch.namespace)).status == "routed"
    assert await handoff.submit(routed_first) == "duplicate"


async def test_unroutable_events_and_other_namespaces(orch: Orchestra) -> None:
    other = f"{orch.namespace}-b"
    orch.define("incident")
    orch.define("incident", namespace=other)
    orch.publish_routes(
        orch.route("incidents", "incident", type="incident"),
        # A route of another namespace that accepts this one's events: only the root
        # orchestrator honours that, for a listener that shares with it.
        orch.route(
            "from-a", "incident", type="incident", namespace=other, from_namespaces=[orch.namespace]
        ),
        indexed=True,
    )
    handoff = direct(orch)
    assert await handoff.submit(cloud_event("nobody-listens")) == "unroutable"
    event = cloud_event("incident", message="mine")
    assert await handoff.submit(event) == "started"
    await orch.client.get_workflow_handle(run_id(orch, event, "incident")).result()
    with pytest.raises(RPCError) as missing:
        await orch.client.get_workflow_handle(run_id(orch, event, "incident", other)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_an_event_reaches_runs_of_its_namespace_waiting_for_it(orch: Orchestra) -> None:
    event_type = f"approve.{orch.namespace}"
    waits = {"approval": {"listen": {"to": {"one": {"with": {"type": event_type}}}}}}
    orch.define("waits", do=[waits])
    orch.publish_routes(indexed=True)
    waiting = await start_waiting(orch, waits)
    listening = f'TflowListening = "{event_type}"'

    async def visible() -> bool:
        return bool([w async for w in orch.client.list_workflows(listening)])

    await eventually_async(visible, "the waiting run in visibility")
    # Another namespace's listener reaches nothing, whatever it sends.
    assert await direct(orch, f"{orch.namespace}-b").submit(cloud_event(event_type)) == (
        "unroutable"
    )
    assert await direct(orch).submit(cloud_event(event_type, by="ops")) == "started"
    assert await waiting.result() == [{"by": "ops"}]


async def test_a_type_nobody_waits_for_is_asked_about_again_after_a_second(
    orch: Orchestra,
) -> None:
    """Delivery by type asks visibility once per second at most for a type no run waits
    for (a busy type nobody listens to costs no query per event); then it asks again."""
    now = [0.0]
    handoff = direct(orch, clock=lambda: now[0])
    event_type = f"late.{orch.namespace}"
    waits = {"approval": {"listen": {"to": {"one": {"with": {"type": event_type}}}}}}
    orch.publish_routes(indexed=True)
    assert await handoff.submit(cloud_event(event_type, by="nobody")) == "unroutable"
    waiting = await start_waiting(orch, waits)

    async def visible() -> bool:
        query = f'TflowListening = "{event_type}"'
        return bool([w async for w in orch.client.list_workflows(query)])

    await eventually_async(visible, "the waiting run in visibility")
    # Within the second: taken as nobody waiting, without a query.
    assert await handoff.submit(cloud_event(event_type, by="early")) == "unroutable"
    now[0] += 1.0
    assert await handoff.submit(cloud_event(event_type, by="ops")) == "started"
    assert await waiting.result() == [{"by": "ops"}]


async def test_a_definition_not_mounted_yet_holds_the_event_back(orch: Orchestra) -> None:
    """The kubelet refreshes the table and the definitions each in its own time: a route
    whose definition is not there yet refuses the event (it comes back) while the table is
    young, and fails as unroutable once the definition has been missing for long."""
    now = [0.0]
    router = EventRouter(
        orch.routes_dir, orch.definitions_dir, require_index=True, clock=lambda: now[0]
    )
    handoff = DirectHandOff(DirectRouter(orch.client, router, orch.namespace))
    orch.publish_routes(orch.route("incidents", "incident", type="incident"), indexed=True)
    event = cloud_event("incident")
    with pytest.raises(TemporalUnavailable, match="incident is not mounted yet"):
        await handoff.submit(event)
    orch.define("incident")
    now[0] += 1.0  # the definitions are re-read at most once a second
    assert await handoff.submit(event) == "started"

    orch.publish_routes(
        orch.route("incidents", "incident", type="incident"),
        orch.route("pages", "pager", type="page"),
        indexed=True,
    )
    now[0] += 1.0
    with pytest.raises(TemporalUnavailable, match="pager is not mounted yet"):
        await handoff.submit(cloud_event("page"))
    now[0] += DEFINITIONS_GRACE_SECONDS
    assert await handoff.submit(cloud_event("page")) == "unroutable"


async def test_nothing_is_acknowledged_before_a_table_is_mounted(orch: Orchestra) -> None:
    orch.define("incident")
    # The harness's plain table has no index: not what the operator publishes.
    orch.publish_routes(orch.route("incidents", "incident", type="incident"))
    handoff = direct(orch)
    event = cloud_event("incident")
    with pytest.raises(TemporalUnavailable, match=r"routing-index\.json"):
        await handoff.submit(event)
    orch.publish_routes(orch.route("incidents", "incident", type="incident"), indexed=True)
    # The table is checked at most once a second.
    await asyncio.sleep(1.1)
    assert await handoff.submit(event) == "started"


async def test_the_webhook_process_routes_directly(
    temporal: TemporalServer, temporal_client: Client, tmp_path: Path, task_queue: str
) -> None:
    """`python -m tflow_listeners webhook` configured as the operator configures a Listener
    with `spec.routing: direct`: 202 once the run started, the run is the flow's."""
    async with orchestra(temporal_client, tmp_path, task_queue, orchestrator=False) as o:
        o.define("incident")
        # Not yet the operator's table (no index): the listener is not ready to route.
        o.publish_routes(o.route("incidents", "incident", type="incident"))
        port = free_port()
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": temporal.namespace,
            "TFLOW_LISTENER_PORT": str(port),
            "TFLOW_LISTENER_HOST": "127.0.0.1",
            "TFLOW_LISTENER_KUBE_NAMESPACE": o.namespace,
            "TFLOW_LISTENER_ROUTING": "direct",
            "TFLOW_ROUTES_DIR": str(o.routes_dir),
            "TFLOW_DEFINITIONS_DIR": str(o.definitions_dir),
        }
        log_path = tmp_path / "listener.log"
        process = await start_listener(env, "webhook", log_path=log_path)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                readiness: list[str] = []

                async def ready() -> bool:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        async with http.get(f"{base}/readyz") as response:
                            readiness.append((await response.json()).get("reason", ""))
                            return response.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                async def answers() -> bool:
                    # Past its Temporal check (the client connects on first use).
                    ready_now = await ready()
                    return not ready_now and readiness[-1:] not in ([], ["temporal-unavailable"])

                await eventually_async(answers, "the listener answering its probe")
                assert readiness[-1] == "no-routing-table"
                o.publish_routes(o.route("incidents", "incident", type="incident"), indexed=True)
                await eventually_async(ready, "the listener ready")
                event_id = uuid.uuid4().hex
                body = {"specversion": "1.0", "id": event_id, "source": "cli", "type": "incident"}
                async with http.post(f"{base}/webhook", json=body) as response:
                    answer = await response.json()
                    assert response.status == 202, answer
                (accepted,) = answer["events"]
                assert accepted["outcome"] == "started"
                # The runs' ids begin with the event's id.
                assert accepted["workflowId"] == event_workflow_id("cli", event_id, o.namespace)
                handle = o.client.get_workflow_handle(
                    f"{accepted['workflowId']}/{o.namespace}/incident"
                )
                assert (await handle.result())["flow"] == "incident"
                described = await handle.describe()
                assert described.status == WorkflowExecutionStatus.COMPLETED
        finally:
            await stop_listener(process, grace=30)
        assert "event " + event_id in log_path.read_text()
