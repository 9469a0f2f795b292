"""The RootOrchestratorWorkflow on a real Temporal server: events become flow runs of the
definitions their routes name, searchable and outliving the orchestrator; a redelivered
event starts nothing twice; unroutable, invalid and half-failing events complete with the
reason; a new routing table applies without a restart; and the seed's long-running form
(`temporal workflow start ... --input '{}'` then `signal --name trigger`) routes every
signalled event, continuing as new without losing one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from histories import check_replay
from orchestra import Orchestra, cloud_event, orchestra
from polling import eventually_async
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import venv_binary
from tflow_listeners.handoff import HandOff
from tflow_workers.cloudevents import (
    ROOT_MEMO,
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    RootInput,
    event_workflow_id,
    from_plain_json,
)
from tflow_workers.connection import connect
from tflow_workers.engine.model import SA_NAMESPACE, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run
from tflow_workers.orchestrator.model import Decision, RecentDecisions

pytestmark = pytest.mark.integration


# ---- harness -----------------------------------------------------------------------------


async def recent(handle: WorkflowHandle[Any, Any]) -> RecentDecisions:
    answer: RecentDecisions = await handle.query("decisions", result_type=RecentDecisions)
    return answer


async def routed(handle: WorkflowHandle[Any, Any], count: int) -> RecentDecisions:
    async def done() -> bool:
        return (await recent(handle)).routed >= count

    await eventually_async(done, f"{count} routed events")
    return await recent(handle)


# ---- per-event form ------------------------------------------------------------------------


async def test_event_starts_the_runs_its_routes_name(orch: Orchestra) -> None:
    orch.define("incident")
    orch.define("audit", queue=1)
    orch.define("documents")
    orch.publish_routes(
        # The seed routes incidents by type and by source: one run of `incident`, by the
        # route with the higher priority.
        orch.route("by-type", "incident", type="incident", input="${ {why: .data.message} }"),
        orch.route("by-source", "incident", source="monitoring", priority=5),
        orch.route(
            "audit-all",
            "audit",
            queue=1,
            filter="${ .data.severity >= 3 }",
            input="${ {what: .type, severity: .data.severity, from: .source} }",
        ),
        orch.route("docs", "documents", type="document-added"),
    )
    event = cloud_event("incident", message="disk full", severity=4)
    decision = await orch.decide(event, record="root-orchestrator-per-event")

    assert decision.status == "routed"
    assert decision.reason is None
    assert (decision.event_id, decision.event_type, decision.event_source) == (
        event.id,
        "incident",
        "monitoring",
    )
    assert [(m.route, m.workflow, m.status) for m in decision.matches] == [
        (f"{orch.namespace}/by-source", "incident", "started"),
        (f"{orch.namespace}/audit-all", "audit", "started"),
    ]
    base = event_workflow_id(event.source, event.id)
    incident_match = decision.matches[0]
    assert incident_match.child_workflow_id == f"{base}/{orch.namespace}/incident"
    assert incident_match.task_queue == orch.queues[0]
    assert decision.matches[1].task_queue == orch.queues[1]

    incident = orch.child(decision, "incident")
    assert incident_match.child_run_id == (await incident.describe()).run_id
    assert await incident.result() == {
        "flow": "incident",
        "got": {"message": "disk full", "severity": 4},
    }
    audit = orch.child(decision, "audit")
    assert await audit.result() == {
        "flow": "audit",
        "got": {"what": "incident", "severity": 4, "from": "monitoring"},
    }

    # The runs are findable by their definition and the event that started them.
    query = f'TflowDefinition = "{orch.namespace}/incident" AND TflowEventType = "incident"'

    async def searchable() -> bool:
        return [w.id async for w in orch.client.list_workflows(query)] == [incident.id]

    await eventually_async(searchable, "the run to be searchable")
    described = await incident.describe()
    assert await described.memo() == {"definition": f"{orch.namespace}/incident", "version": "2"}
    # A low-severity incident skips the audit route's filter.
    quiet = await orch.decide(cloud_event("incident", message="blip", severity=1))
    assert [m.workflow for m in quiet.matches] == ["incident"]
    await check_replay(incident)
    await check_replay(audit)


async def test_runs_outlive_the_orchestrator(orch: Orchestra) -> None:
    orch.define("approval", do=[{"wait": {"listen": {"to": {"one": {"with": {"type": "ok"}}}}}}])
    orch.publish_routes(orch.route("approvals", "approval", type="approval-needed"))
    event = cloud_event("approval-needed", source="shop", order=7)
    handle = await orch.submit(event)
    decision = await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    child = orch.child(decision, "approval")
    assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
    await child.signal("ok", {"by": "me"})
    await child.result()
    await check_replay(child)


async def test_the_same_event_twice_starts_one_run(orch: Orchestra) -> None:
    orch.define("incident")
    orch.publish_routes(orch.route("incidents", "incident", type="incident"))
    event = cloud_event("incident", message="once")
    first = await orch.submit(event)
    with pytest.raises(WorkflowAlreadyStartedError):
        await orch.submit(event)
    decision = await first.result()
    child = orch.child(decision, "incident")
    await child.result()

    # The same event signalled to a long-running orchestrator finds the run already there.
    seed_id = f"seed-{uuid.uuid4().hex[:8]}"
    await orch.client.start_workflow(
        ROOT_ORCHESTRATOR_WORKFLOW_TYPE, RootInput(), id=seed_id, task_queue=orch.router_queue
    )
    seed = orch.client.get_workflow_handle(seed_id)
    await seed.signal("trigger", event.as_data())
    again = (await routed(seed, 1)).decisions[-1]
    assert again.status == "routed"
    assert [(m.status, m.child_workflow_id) for m in again.matches] == [("duplicate", child.id)]
    runs = [w async for w in orch.client.list_workflows(f'WorkflowId = "{child.id}"')]
    assert len(runs) == 1
    await seed.terminate("test done")
    await check_replay(seed)


async def test_a_definition_not_mounted_yet_holds_the_root_run_back(orch: Orchestra) -> None:
    """The kubelet refreshes the routing table's volume and the definitions' each in its
    own time: a new route may match before its definition is mounted. The routing
    activity (a local one) fails and is retried by the root run instead of routing the event
    nowhere."""
    orch.publish_routes(orch.route("pages", "pager", type="page"))
    handle = await orch.submit(cloud_event("page"))

    # Routed nowhere, it would have completed at once (the next test).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(handle.result()), 3.0)
    orch.define("pager")
    decision = await handle.result()
    assert decision.status == "routed"
    assert [m.status for m in decision.matches] == ["started"]
    await check_replay(handle)


async def test_unroutable_and_invalid_events_complete_with_the_reason(orch: Orchestra) -> None:
    orch.publish_routes(orch.route("pages", "pager", type="page"))
    nothing = await orch.decide(cloud_event("unknown", source="nowhere"))
    assert nothing.status == "unroutable"
    assert nothing.matches == []
    assert nothing.reason is not None
    assert nothing.reason.startswith("no route matches type 'unknown' from source 'nowhere'")
    assert nothing.table is not None

    # Past the time the kubelet may take to mount a new route's definition.
    assert orch.activities is not None
    orch.activities.router.definitions_grace = 0.0
    unpublished = await orch.decide(cloud_event("page"))
    assert unpublished.status == "unroutable"
    assert unpublished.reason == (
        f"route {orch.namespace}/pages: WorkflowDefinition {orch.namespace}/pager is not published"
    )
    assert [m.status for m in unpublished.matches] == ["failed"]

    async def run(params: Any) -> Decision:
        handle = await orch.client.start_workflow(
            ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
            params,
            id=f"bad-{uuid.uuid4().hex[:8]}",
            task_queue=orch.router_queue,
            result_type=Decision,
        )
        decision: Decision = await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        await check_replay(handle)
        return decision

    no_id = await run(RootInput(event={"specversion": "1.0", "type": "page", "source": "x"}))
    assert (no_id.status, no_id.reason) == ("invalid", "id: Field required")
    no_type = await run(RootInput(event={"source": "x", "message": "?"}))
    assert (no_type.status, no_type.reason) == (
        "invalid",
        "missing event type: set `type` or `eventType`",
    )
    not_an_object = await run(["not", "an", "event"])
    assert (not_an_object.status, not_an_object.reason) == (
        "invalid",
        "the input must be a JSON object, got list",
    )


async def test_a_failing_route_is_reported_while_the_others_start(orch: Orchestra) -> None:
    orch.define("incident")
    orch.define("audit")
    orch.publish_routes(
        orch.route("broken", "audit", type="incident", filter="${ .data.count + 1 }"),
        orch.route("incidents", "incident", type="incident"),
    )
    decision = await orch.decide(cloud_event("incident", count="three"))
    assert decision.status == "routed"
    broken, started = decision.matches
    assert (broken.route, broken.status) == (f"{orch.namespace}/broken", "failed")
    assert broken.error is not None
    assert broken.error.startswith(f"route {orch.namespace}/broken:")
    assert started.status == "started"
    assert decision.reason == f"1 of 2 routes failed: {broken.error}"
    await orch.child(decision, "incident").result()


async def test_a_new_table_and_definition_apply_without_a_restart(orch: Orchestra) -> None:
    orch.define("v1")
    orch.publish_routes(orch.route("orders", "v1", type="order"))
    before = await orch.decide(cloud_event("order", source="shop"))
    assert [m.workflow for m in before.matches] == ["v1"]

    orch.publish_routes(orch.route("orders", "v2", type="order", queue=1))
    # The worker checks the mounted files at most once a second.
    await asyncio.sleep(1.2)
    # Past the time the kubelet may take to mount a new route's definition (the wait
    # itself: test_a_definition_not_mounted_yet_holds_the_root_run_back).
    assert orch.activities is not None
    orch.activities.router.definitions_grace = 0.0
    unpublished = await orch.decide(cloud_event("order", source="shop"))
    assert unpublished.status == "unroutable"
    assert unpublished.table != before.table

    orch.define("v2", queue=1)
    await asyncio.sleep(1.2)
    after = await orch.decide(cloud_event("order", source="shop"))
    assert after.status == "routed"
    assert [(m.workflow, m.task_queue) for m in after.matches] == [("v2", orch.queues[1])]
    assert await orch.child(after, "v2").result() == {"flow": "v2", "got": {}}


async def test_an_event_a_flow_emits_is_routed(orch: Orchestra) -> None:
    orch.define(
        "checkout",
        do=[
            {
                "announce": {
                    "emit": {
                        "event": {
                            "with": {
                                "type": "order.placed",
                                "source": "shop/checkout",
                                "data": {"order": "${ .order }"},
                            }
                        }
                    }
                }
            }
        ],
    )
    orch.define("fulfilment", queue=1)
    orch.publish_routes(
        orch.route("checkouts", "checkout", type="cart.closed"),
        orch.route("orders", "fulfilment", queue=1, type="order.placed"),
    )
    decision = await orch.decide(cloud_event("cart.closed", source="shop", order="o-1"))
    await orch.child(decision, "checkout").result()

    query = f'TflowDefinition = "{orch.namespace}/fulfilment"'
    found: list[str] = []

    async def started() -> bool:
        found[:] = [w.id async for w in orch.client.list_workflows(query)]
        return bool(found)

    await eventually_async(started, "the emitted event's run")
    fulfilment = orch.client.get_workflow_handle(found[0])
    assert await fulfilment.result() == {"flow": "fulfilment", "got": {"order": "o-1"}}
    # Its orchestrator is the one the emitted event's id names.
    # Its result, not a query: the run may still be delivering when the child has started.
    root = orch.client.get_workflow_handle(found[0].split("/")[0], result_type=Decision)
    emitted = await root.result()
    assert emitted.status == "routed"
    assert emitted.event_type == "order.placed"
    await check_replay(root)


# ---- long-running form ---------------------------------------------------------------------


SEED_EVENTS = [
    {"eventType": "incident", "source": "monitoring", "message": "Critical system failure"},
    {
        "eventType": "document-added",
        "source": "s3",
        "bucket": "my-documents",
        "key": "uploads/document.pdf",
        "documentUri": "s3://my-documents/uploads/document.pdf",
    },
    {"eventType": "incident", "source": "monitoring", "message": "Disk almost full"},
    {"eventType": "document-added", "source": "s3", "key": "notes.txt"},
]


def seed_routes(o: Orchestra) -> None:
    """The seed's table: incidents by type or from monitoring, PDFs from S3."""
    o.define("incident")
    o.define("document-processing", queue=1)
    o.publish_routes(
        o.route("incident-by-type", "incident", type="incident"),
        o.route("incident-by-source", "incident", source="monitoring"),
        o.route(
            "pdf-documents",
            "document-processing",
            queue=1,
            type="document-added",
            filter='${ .data.key | endswith(".pdf") }',
            input="${ {uri: .data.documentUri} }",
        ),
    )


def expected_child(o: Orchestra, body: dict[str, Any], workflow: str) -> str:
    event = from_plain_json(body)
    return f"{event_workflow_id(event.source, event.id)}/{o.namespace}/{workflow}"


async def test_long_running_form_routes_each_signalled_event(orch: Orchestra) -> None:
    seed_routes(orch)
    workflow_id = f"seed-{uuid.uuid4().hex[:8]}"
    await orch.client.start_workflow(
        ROOT_ORCHESTRATOR_WORKFLOW_TYPE, RootInput(), id=workflow_id, task_queue=orch.router_queue
    )
    # Signals and queries go to the workflow id's current run.
    handle = orch.client.get_workflow_handle(workflow_id)
    for body in SEED_EVENTS:
        await handle.signal("trigger", body)
    await handle.signal("trigger", "not an event")
    state = await routed(handle, len(SEED_EVENTS) + 1)
    assert state.pending == 0
    by_status = [(d.event_type, d.status) for d in state.decisions]
    assert sorted(by_status, key=str) == sorted(
        [
            ("incident", "routed"),
            ("document-added", "routed"),
            ("incident", "routed"),
            ("document-added", "unroutable"),
            (None, "invalid"),
        ],
        key=str,
    )
    pdf = orch.client.get_workflow_handle(
        expected_child(orch, SEED_EVENTS[1], "document-processing")
    )
    assert await pdf.result() == {
        "flow": "document-processing",
        "got": {"uri": "s3://my-documents/uploads/document.pdf"},
    }
    incident = orch.client.get_workflow_handle(expected_child(orch, SEED_EVENTS[0], "incident"))
    assert (await incident.result())["got"]["message"] == "Critical system failure"
    latest = await handle.query("decision", result_type=Decision)
    assert latest is not None
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test done")
    await check_replay(handle)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return None


def spawn(argv: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def temporal_cli(address: str, *args: str) -> str:
    done = subprocess.run(
        [str(venv_binary("temporal")), *args, "--address", address],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_seeds_cli_commands_drive_the_orchestrator_process(
    temporal: TemporalServer, temporal_client: Client, tmp_path: Path, task_queue: str
) -> None:
    async with orchestra(temporal_client, tmp_path, task_queue, orchestrator=False) as o:
        seed_routes(o)
        health = free_port()
        log_path = tmp_path / "orchestrator.log"
        with log_path.open("w") as log:
            proc = spawn(
                [
                    sys.executable,
                    "-m",
                    "tflow_workers.orchestrator",
                    "--address",
                    temporal.address,
                    "--task-queue",
                    o.router_queue,
                    "--health-port",
                    str(health),
                    "--metrics-port",
                    "0",
                    "--log-format",
                    "json",
                ],
                log,
                {
                    **os.environ,
                    "TFLOW_ROUTES_DIR": str(o.routes_dir),
                    "TFLOW_DEFINITIONS_DIR": str(o.definitions_dir),
                },
            )
            try:
                # Generous: a busy two-core machine takes a while to import the SDKs.
                deadline = time.monotonic() + 120
                # Ready, and it is this process that says so (it logged its queue).
                while (
                    (r := _get(f"http://127.0.0.1:{health}/readyz")) is None
                    or r.status_code != 200
                    or o.router_queue not in log_path.read_text()
                ):
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "the orchestrator never became ready"
                    await asyncio.sleep(0.2)

                workflow_id = f"test-orchestrator-{uuid.uuid4().hex[:8]}"
                temporal_cli(
                    temporal.address,
                    "workflow",
                    "start",
                    "--task-queue",
                    o.router_queue,
                    "--type",
                    "RootOrchestratorWorkflow",
                    "--workflow-id",
                    workflow_id,
                    "--input",
                    "{}",
                )
                for body in SEED_EVENTS[:2]:
                    temporal_cli(
                        temporal.address,
                        "workflow",
                        "signal",
                        "--workflow-id",
                        workflow_id,
                        "--name",
                        "trigger",
                        "--input",
                        json.dumps(body),
                    )
                handle = temporal_client.get_workflow_handle(workflow_id)
                state = await routed(handle, 2)
                assert [d.status for d in state.decisions] == ["routed", "routed"]
                for body, workflow in zip(
                    SEED_EVENTS[:2], ["incident", "document-processing"], strict=True
                ):
                    child = temporal_client.get_workflow_handle(expected_child(o, body, workflow))
                    assert (await child.result())["flow"] == workflow
                answer = json.loads(
                    temporal_cli(
                        temporal.address,
                        "workflow",
                        "query",
                        "--workflow-id",
                        workflow_id,
                        "--name",
                        "decisions",
                        "--output",
                        "json",
                    )
                )
                assert "routed" in json.dumps(answer)
                await handle.terminate("test done")
                await check_replay(handle, "root-orchestrator-long-running")

                # An event a Listener of namespace team-a received: the process's JSON line
                # for its decision carries the event, workflow and run ids and the tenant.
                handoff = HandOff(temporal_client, o.router_queue, namespace="team-a")
                event = from_plain_json(
                    {"type": "incident", "source": "monitoring", "id": uuid.uuid4().hex}
                )
                assert await handoff.submit(event) == "started"
                scoped = temporal_client.get_workflow_handle(handoff.workflow_id(event))
                await scoped.result()
                run_id = (await scoped.describe()).run_id

                def decision_lines() -> list[dict[str, Any]]:
                    lines = log_path.read_text().splitlines()
                    records = [json.loads(line) for line in lines if line.startswith("{")]
                    return [r for r in records if r.get("event_id") == event.id]

                async def logged() -> bool:
                    return bool(decision_lines())

                await eventually_async(logged, what="the decision's log line")
                (line,) = decision_lines()
                assert line["workflow_id"] == scoped.id
                assert line["run_id"] == run_id
                assert line["namespace"] == "team-a"
                assert line["message"].startswith(f"event {event.id} (incident from monitoring)")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    assert proc.wait(timeout=30) == 0, log_path.read_text()
                finally:
                    if proc.poll() is None:
                        proc.kill()


# ---- continue-as-new -----------------------------------------------------------------------


async def test_long_running_form_continues_as_new_without_losing_an_event(
    small_history_server: TemporalServer, tmp_path: Path, task_queue: str
) -> None:
    client = await connect(small_history_server.address, small_history_server.namespace)
    async with orchestra(client, tmp_path, task_queue) as o:
        seed_routes(o)
        workflow_id = f"seed-{uuid.uuid4().hex[:8]}"
        await client.start_workflow(
            ROOT_ORCHESTRATOR_WORKFLOW_TYPE, RootInput(), id=workflow_id, task_queue=o.router_queue
        )
        # Signals and queries go to the workflow id's current run, whichever it is.
        handle = client.get_workflow_handle(workflow_id)
        bodies = [
            {"eventType": "incident", "source": "monitoring", "message": f"failure {i}"}
            for i in range(24)
        ]
        # In bursts, so that signals arrive while the workflow routes and continues as new.
        for burst in range(0, len(bodies), 6):
            await asyncio.gather(*(handle.signal("trigger", b) for b in bodies[burst : burst + 6]))
            await asyncio.sleep(0.3)
        state = await routed(handle, len(bodies))
        assert state.routed == len(bodies)
        assert state.pending == 0
        for body in bodies:
            child = client.get_workflow_handle(expected_child(o, body, "incident"))
            assert (await child.result())["got"]["message"] == body["message"]

        runs = [w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
        assert len(runs) > 1
        await handle.terminate("test done")
        kinds: dict[str, str | None] = {}
        for run in runs:
            run_handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
            await check_replay(run_handle)
            kinds[run.run_id] = await routing_kind(run_handle)
        # Started by hand with `{}`: the first run routes with activities, the runs it
        # continues as new with local ones (the last may have had no event to route).
        first = min(runs, key=lambda r: r.start_time)
        assert kinds.pop(first.run_id) == "activities"
        assert set(kinds.values()) - {None} == {"local"}


async def routing_kind(handle: WorkflowHandle[Any, Any]) -> str | None:
    """How a root run routed its events, read from its history (None: it routed none)."""
    history = await handle.fetch_history()
    kinds = set()
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            kinds.add("activities")
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            assert e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            kinds.add("local")
    assert len(kinds) <= 1, kinds
    return next(iter(kinds), None)


async def test_the_input_decides_whether_routing_runs_in_local_activities(
    orch: Orchestra,
) -> None:
    """A listener's runs route in local activities; a run whose input does not ask for it
    (every run begun before local routing existed) uses activities, and both replay."""
    orch.define("incident")
    orch.publish_routes(orch.route("incidents", "incident", type="incident"))
    for local, kind in ((True, "local"), (False, "activities")):
        # Runs begun before local routing had no local starts either.
        handle = await orch.submit(cloud_event("incident"), local_routing=local, local_starts=local)
        decision = await handle.result()
        assert decision.status == "routed"
        assert [m.status for m in decision.matches] == ["started"]
        await check_replay(handle)
        assert await routing_kind(handle) == kind


async def test_the_memo_decides_whether_flow_runs_start_as_children(orch: Orchestra) -> None:
    """A listener's root run starts its flow runs with a local activity each and completes
    in the workflow task that routed the event; a run without the memo (every run begun
    before it existed, or started by hand) starts them as children. Both replay, and the
    runs they start are the same but for the parent."""
    orch.define("incident")
    orch.define("audit", queue=1)
    orch.publish_routes(
        orch.route("incidents", "incident", type="incident"),
        orch.route("audit-all", "audit", queue=1, type="incident"),
    )
    for local_starts in (True, False):
        event = cloud_event("incident", message=f"local starts: {local_starts}")
        handle = await orch.submit(event, local_starts=local_starts)
        decision = await handle.result()
        assert sorted((m.workflow, m.status) for m in decision.matches) == [
            ("audit", "started"),
            ("incident", "started"),
        ]
        await check_replay(handle)
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        started_children = kinds.count(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)
        tasks = kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        if local_starts:
            assert (started_children, tasks) == (0, 1)
        else:
            assert (started_children, tasks) == (2, 2)
        base = event_workflow_id(event.source, event.id)
        for match in decision.matches:
            assert match.child_workflow_id == f"{base}/{orch.namespace}/{match.workflow}"
            run = orch.child(decision, match.workflow)
            described = await run.describe()
            assert match.child_run_id == described.run_id
            assert (described.parent_id is None) is local_starts
            assert await described.memo() == {
                "definition": f"{orch.namespace}/{match.workflow}",
                "version": "2",
            }
            assert (await run.result())["got"] == {"message": f"local starts: {local_starts}"}
            await check_replay(run)
    # A repeated event finds its runs started, by either form.
    again = cloud_event("incident", message="twice")
    first = await (await orch.submit(again)).result()
    seed_id = f"seed-{uuid.uuid4().hex[:8]}"
    seed = await orch.client.start_workflow(
        ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
        RootInput(local_routing=True),
        id=seed_id,
        task_queue=orch.router_queue,
        memo=ROOT_MEMO,
    )
    await seed.signal("trigger", again.as_data())
    second = (await routed(seed, 1)).decisions[-1]
    assert [m.status for m in second.matches] == ["duplicate", "duplicate"]
    assert [m.child_workflow_id for m in second.matches] == [
        m.child_workflow_id for m in first.matches
    ]
    await seed.terminate("test done")
    await check_replay(seed)


async def test_an_event_reaches_runs_waiting_for_it(orch: Orchestra) -> None:
    """Runs waiting in a `listen` get the event through the router, without a route."""
    event_type = f"order.approved.{orch.namespace}"
    document = {
        "document": {"dsl": "1.0.0", "namespace": "tests", "name": "waits", "version": "1.0.0"},
        "do": [{"approval": {"listen": {"to": {"one": {"with": {"type": event_type}}}}}}],
    }
    waiting = await start_run(orch.client, RunInput(document=document), orch.queues[0])
    listening = f'TflowListening = "{event_type}"'
    for _ in range(100):  # visibility is eventually consistent
        if [w async for w in orch.client.list_workflows(listening)]:
            break
        await asyncio.sleep(0.1)
    decision = await orch.decide(cloud_event(event_type, by="ops"))
    assert decision.status == "routed"
    assert decision.matches == []
    assert decision.delivered == [waiting.id]
    assert await waiting.result() == [{"by": "ops"}]


async def test_a_run_ignores_an_event_delivered_twice(orch: Orchestra) -> None:
    document = {
        "document": {"dsl": "1.0.0", "namespace": "tests", "name": "two", "version": "1.0.0"},
        "do": [
            {
                "collect": {
                    "listen": {
                        "to": {"any": [{"with": {"type": "reading"}}], "until": "length >= 2"},
                        "read": "envelope",
                    },
                    "output": {"as": "[.[].id]"},
                }
            }
        ],
    }
    run = await start_run(orch.client, RunInput(document=document), orch.queues[0])
    first = cloud_event("reading", n=1).as_data()
    await run.signal("event", first)
    await run.signal("event", first)
    await run.signal("event", cloud_event("reading", n=2).as_data())
    ids = await run.result()
    assert ids[0] == first["id"]
    assert ids[1] != first["id"]


# ---- namespaces are tenants -----------------------------------------------------------------


def started_flows(decision: Decision) -> set[str]:
    return {f"{m.namespace}/{m.workflow}" for m in decision.matches if m.status == "started"}


async def test_routes_of_two_namespaces_never_start_each_others_flows(orch: Orchestra) -> None:
    a, b = orch.namespace, f"{orch.namespace}-b"
    for ns in (a, b):
        orch.define("incident", namespace=ns)
    orch.define("audit", namespace=b)
    orch.publish_routes(
        orch.route("incidents", "incident", type="incident", namespace=a),
        orch.route("incidents", "incident", type="incident", namespace=b),
        # b's route that accepts a's events: its side of the opt-in.
        orch.route("audit-a", "audit", type="incident", namespace=b, from_namespaces=(a,)),
    )
    # The same event type in each namespace starts only that namespace's flow.
    assert started_flows(await orch.decide(cloud_event("incident"), a)) == {f"{a}/incident"}
    in_b = {f"{b}/incident", f"{b}/audit"}  # b's own routes, the opted-in one too
    assert started_flows(await orch.decide(cloud_event("incident"), b)) == in_b
    # a's events reach none of b's routes unless a shares with b.
    assert started_flows(await orch.decide(cloud_event("incident"), a)) == {f"{a}/incident"}
    # a shares with b, but only the route that opted in sees it, not b's other routes.
    shared = await orch.decide(cloud_event("incident"), a, share_with=(b,))
    assert started_flows(shared) == {f"{a}/incident", f"{b}/audit"}
    audit = orch.child(shared, "audit")
    assert (await audit.describe()).typed_search_attributes.get(SA_NAMESPACE) == b
    # Sharing with a namespace whose routes did not opt in reaches nothing there.
    assert started_flows(await orch.decide(cloud_event("incident"), b, share_with=(a,))) == in_b
    # The same source and id in two namespaces are two events, not a duplicate.
    event = cloud_event("incident")
    first, second = await orch.decide(event, a), await orch.decide(event, b)
    assert (first.matches[0].status, second.matches[0].status) == ("started", "started")


async def test_emitted_events_and_deliveries_stay_in_their_namespace(orch: Orchestra) -> None:
    a, b = orch.namespace, f"{orch.namespace}-b"
    emit = {"emit": {"event": {"with": {"type": "ping", "source": "flows", "data": {}}}}}
    orch.define("emitter", do=[{"announce": emit}], namespace=a)
    for ns in (a, b):
        orch.define("pong", namespace=ns)
    orch.publish_routes(
        orch.route("go", "emitter", type="go", namespace=a),
        orch.route("pings", "pong", type="ping", namespace=a),
        orch.route("pings", "pong", type="ping", namespace=b),
    )
    decision = await orch.decide(cloud_event("go"), a)
    await orch.child(decision, "emitter").result()
    found: list[str] = []

    async def pong_in_a() -> bool:
        query = f'TflowDefinition = "{a}/pong"'
        found[:] = [w.id async for w in orch.client.list_workflows(query)]
        return bool(found)

    await eventually_async(pong_in_a, "the emitted event's run in its own namespace")
    # Its result, not a query: the run may still be delivering when the child has started.
    root = orch.client.get_workflow_handle(found[0].split("/")[0], result_type=Decision)
    emitted = await root.result()
    assert started_flows(emitted) == {f"{a}/pong"}
    assert not [w async for w in orch.client.list_workflows(f'TflowDefinition = "{b}/pong"')]

    # A run of b waiting for an event type gets it from b, never from a (shared or not).
    event_type = f"approve.{b}"
    waits = {"approval": {"listen": {"to": {"one": {"with": {"type": event_type}}}}}}
    orch.define("waits", do=[waits], namespace=b)
    resolved = RunInput(
        document={
            "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
            "do": [waits],
        },
        definition=DefinitionRef(namespace=b, name="waits"),
    )
    waiting = await start_run(orch.client, resolved, orch.queues[0])
    listening = f'TflowListening = "{event_type}"'

    async def visible() -> bool:
        return bool([w async for w in orch.client.list_workflows(listening)])

    await eventually_async(visible, "the waiting run in visibility")
    from_a = await orch.decide(cloud_event(event_type, by="mallory"), a, share_with=(b,))
    assert from_a.delivered == []
    from_b = await orch.decide(cloud_event(event_type, by="ops"), b)
    assert from_b.delivered == [waiting.id]
    assert await waiting.result() == [{"by": "ops"}]
