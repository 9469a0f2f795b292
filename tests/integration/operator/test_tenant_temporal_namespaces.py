"""A Temporal namespace per tenant, end to end on the apiserver and a dev server that
registers the tenants' namespaces (`--namespace`): the operator puts a mapped
namespace's schedule, worker env and KEDA trigger in its Temporal namespace; an event a
tenant's listener hands to its Temporal namespace starts the run there, and a run of a
definition in another tenant's Temporal namespace (with both sides' consent) through the
root orchestrator's start activity; one tenant's runs are not visible from the other's
namespace, and an event started in one tenant's namespace cannot speak for another."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from operator_harness import (
    RESYNC_SECONDS,
    OperatorProcess,
    apply,
    condition,
    decode_binary,
    get,
    start_operator,
)
from polling import eventually
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_listeners.handoff import DirectHandOff, HandOff
from tflow_listeners.webhook import Secret, WebhookListener, WebhookSettings
from tflow_operator.listener_children import child_name
from tflow_operator.naming import worker_deployment_name
from tflow_operator.schedules import schedule_id
from tflow_operator.temporal import TemporalGateway
from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE, CloudEvent
from tflow_workers.connection import connect
from tflow_workers.engine.model import SA_NAMESPACE, SEARCH_ATTRIBUTES, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run
from tflow_workers.orchestrator.activities import EventRouter, OrchestratorActivities
from tflow_workers.orchestrator.direct import DirectRouter
from tflow_workers.orchestrator.model import Decision
from tflow_workers.orchestrator.worker import OrchestratorWorkers
from tflow_workers.routing import (
    CompiledRoute,
    RoutingTable,
    published_files,
)
from tflow_workers.temporal_namespaces import TemporalNamespaces, client_for
from tflow_workers.worker import build_worker

pytestmark = [pytest.mark.integration]

TENANT_A, TENANT_B, TENANT_B_BATCH = "tenant-a", "tenant-b", "tenant-b-batch"
WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "orders", "version": "1.0.0"},
    "do": [{"keep": {"set": {"order": "${ .order }"}}}],
}


@pytest.fixture(scope="module")
def tenants(kube: ControlPlane) -> Iterator[tuple[str, str]]:
    names = (f"tns-a-{uuid.uuid4().hex[:6]}", f"tns-b-{uuid.uuid4().hex[:6]}")
    for name in names:
        kube.kubectl("create", "namespace", name)
    try:
        yield names
    finally:
        for name in names:
            kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def tenant_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = TemporalServer(
        tmp_path_factory.mktemp("temporal-tenants"),
        headless=True,
        extra_namespaces=(TENANT_A, TENANT_B, TENANT_B_BATCH),
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mapping(tenants: tuple[str, str]) -> TemporalNamespaces:
    a, b = tenants
    return TemporalNamespaces(
        shared="default", mapped={a: (TENANT_A,), b: (TENANT_B, TENANT_B_BATCH)}
    )


@pytest.fixture(scope="module")
def tenant_operator(
    kube: ControlPlane,
    crds: None,
    keda_crds: None,
    tenant_temporal: TemporalServer,
    mapping: TemporalNamespaces,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    process = start_operator(
        kube,
        tmp_path_factory.mktemp("operator-tenants"),
        tenant_temporal.address,
        tenant_temporal.namespace,
        resync_seconds=RESYNC_SECONDS,
        extra_env={"TFLOW_TEMPORAL_NAMESPACES": mapping.to_env()},
    )
    try:
        yield process
    finally:
        process.stop()


def definition(namespace: str, name: str, queue: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"taskQueue": queue, "workflow": copy.deepcopy(WORKFLOW), **spec},
    }


def route(namespace: str, name: str, workflow: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"match": {"type": "order.created"}, "workflow": workflow, **spec},
    }


def ready(kube: ControlPlane, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(kube, kind, name, namespace)
    return obj if condition(obj, "Ready").get("status") == "True" else None


async def listening_in(kind: str, *clients: Client) -> None:
    """Until a run waiting for `kind` shows in each client's Temporal namespace (visibility
    is eventually consistent), at most ten seconds."""
    listening = f'TflowListening = "{kind}"'
    for _ in range(100):
        found = [[w async for w in client.list_workflows(listening)] for client in clients]
        if all(found):
            return
        await asyncio.sleep(0.1)


async def schedule_exists(client: Client, schedule: str) -> bool:
    try:
        await client.get_schedule_handle(schedule).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_definition_lives_in_its_namespaces_temporal_namespace(
    tenant_operator: OperatorProcess,
    kube: ControlPlane,
    tenants: tuple[str, str],
    tenant_temporal: TemporalServer,
) -> None:
    a, _ = tenants
    queue = f"q-{uuid.uuid4().hex[:6]}"
    schedule = {"cron": ["0 0 1 1 *"], "input": {"order": "yearly"}}
    apply(
        kube,
        definition(a, "yearly", queue, schedule=schedule),
        definition(a, "trespass", f"{queue}-x", temporalNamespace=TENANT_B),
    )
    body = eventually(lambda: ready(kube, "workflowdefinition", a, "yearly"), timeout=60)
    assert body["status"]["temporalNamespace"] == TENANT_A
    wide = kube.kubectl("get", "workflowdefinition", "yearly", "-n", a, "-o", "wide").stdout
    assert "TEMPORAL NAMESPACE" in wide
    assert TENANT_A in wide
    assert condition(body, "Scheduled")["status"] == "True"

    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    sid = schedule_id(a, "yearly")
    assert await schedule_exists(client_for(client, TENANT_A), sid)
    assert not await schedule_exists(client, sid)
    assert not await schedule_exists(client_for(client, TENANT_B), sid)

    deployment = get(kube, "deployment", worker_deployment_name(queue), a)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TEMPORAL_NAMESPACE"] == TENANT_A
    assert json.loads(env["TFLOW_TEMPORAL_NAMESPACES"]) == {a: [TENANT_A]}
    scaled = get(kube, "scaledobject", worker_deployment_name(queue), a)
    assert scaled is not None
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["namespace"] == TENANT_A

    refused = eventually(
        lambda: condition(get(kube, "workflowdefinition", "trespass", a), "Valid") or None
    )
    assert refused["status"] == "False"
    assert refused["reason"] == "TemporalNamespaceNotAllowed"
    assert f"'{TENANT_B}' is not one that namespace '{a}' may use" in refused["message"]

    # Deleted: the finalizer removes the schedule from the tenant's namespace.
    kube.kubectl("delete", "workflowdefinition", "yearly", "-n", a)
    assert not await schedule_exists(client_for(client, TENANT_A), sid)


def configmap_files(kube: ControlPlane, namespace: str, name: str, into: Path) -> None:
    cm = get(kube, "configmap", name, namespace)
    assert cm is not None, name
    into.mkdir(parents=True, exist_ok=True)
    for key, text in (cm.get("data") or {}).items():
        (into / key).write_text(text)
    for key, blob in (cm.get("binaryData") or {}).items():
        (into / key).write_bytes(decode_binary(blob))


async def test_events_start_runs_in_their_targets_temporal_namespace_and_tenants_stay_apart(
    tenant_operator: OperatorProcess,
    kube: ControlPlane,
    tenants: tuple[str, str],
    tenant_temporal: TemporalServer,
    mapping: TemporalNamespaces,
    tmp_path: Path,
) -> None:
    a, b = tenants
    qa, qb = f"orders-{uuid.uuid4().hex[:6]}", f"audit-{uuid.uuid4().hex[:6]}"
    apply(
        kube,
        definition(a, "orders", qa),
        definition(b, "audit", qb),
        route(a, "orders", "orders", input="${ .data }"),
        # b takes a's order events too, and a's Listener shares them with b.
        route(b, "audit", "audit", input="${ .data }", fromNamespaces=[a]),
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "Listener",
            "metadata": {"name": "hook", "namespace": a},
            "spec": {"type": "webhook", "replicas": 0, "shareEventsWith": [b]},
        },
    )
    eventually(lambda: ready(kube, "eventroute", a, "orders"), timeout=60)
    eventually(lambda: ready(kube, "eventroute", b, "audit"), timeout=60)
    listener = get(kube, "deployment", child_name("hook"), a)
    assert listener is not None
    (container,) = listener["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e.get("value") for e in container["env"]}["TEMPORAL_NAMESPACE"] == TENANT_A

    # The root orchestrator's view of what the operator published.
    routes, definitions = tmp_path / "routes", tmp_path / "definitions"
    configmap_files(kube, tenant_operator.system_namespace, "tflow-routing", routes)
    configmap_files(kube, tenant_operator.system_namespace, "tflow-definitions", definitions)
    entries = {
        r["namespace"]: r for r in json.loads((routes / "routes.json").read_text())["routes"]
    }
    assert entries[a]["temporal_namespace"] == TENANT_A
    assert entries[b]["temporal_namespace"] == TENANT_B

    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    in_a, in_b = client_for(client, TENANT_A), client_for(client, TENANT_B)
    orchestrators = OrchestratorWorkers(
        client,
        DEFAULT_ROUTER_TASK_QUEUE,
        OrchestratorActivities(routes, definitions, temporal_namespaces=mapping),
    )
    assert orchestrators.namespaces == ("default", TENANT_A, TENANT_B, TENANT_B_BATCH)
    async with (
        orchestrators,
        build_worker(in_a, qa),
        build_worker(in_b, qb),
    ):
        # a's Listener hands the event to a's Temporal namespace, as its pod would.
        handoff = HandOff(in_a, namespace=a, share_with=(b,))
        order = uuid.uuid4().hex[:8]
        event = CloudEvent(id=order, source="shop", type="order.created", data={"order": order})
        assert await handoff.submit(event) == "started"
        decision = await in_a.get_workflow_handle(
            handoff.workflow_id(event), result_type=Decision
        ).result()
        assert decision.status == "routed", decision.reason
        started = {m.namespace: m for m in decision.matches}
        assert {m.status for m in decision.matches} == {"started"}

        # a's run is in a's Temporal namespace, b's in b's (started by the activity).
        run_a = in_a.get_workflow_handle(str(started[a].child_workflow_id))
        run_b = in_b.get_workflow_handle(str(started[b].child_workflow_id))
        assert await run_a.result() == {"order": order}
        assert await run_b.result() == {"order": order}
        assert (await run_b.describe()).typed_search_attributes.get(SA_NAMESPACE) == b

        # Neither tenant's namespace shows the other's runs, nor does the shared one.
        async def ids(where: Client, namespace: str) -> list[str]:
            query = f'TflowNamespace = "{namespace}"'
            return [w.id async for w in where.list_workflows(query)]

        for _ in range(50):  # visibility is eventually consistent
            if run_a.id in await ids(in_a, a) and run_b.id in await ids(in_b, b):
                break
            await asyncio.sleep(0.1)
        assert run_a.id in await ids(in_a, a)
        assert run_b.id in await ids(in_b, b)
        assert await ids(in_b, a) == []
        assert run_b.id not in await ids(in_a, b)
        assert await ids(client, a) == await ids(client, b) == []

        # a's Listener's run control (its client in a's home) reaches a's run only.
        token = tmp_path / "token"
        token.write_text("t0ken")
        settings = WebhookSettings(
            bearer_token=Secret.from_file(token), run_control=True, namespace=a
        )
        http = TestClient(TestServer(WebhookListener(in_a, settings).app()))
        await http.start_server()
        try:
            auth = {"Authorization": "Bearer t0ken"}
            mine = await http.get(f"/runs/{urllib.parse.quote(run_a.id, safe='')}", headers=auth)
            assert mine.status == 200
            assert (await mine.json())["execution"] == "COMPLETED"
            theirs = await http.get(f"/runs/{urllib.parse.quote(run_b.id, safe='')}", headers=auth)
            assert theirs.status == 403
        finally:
            await http.close()

        # The same event again starts nothing new.
        assert await handoff.submit(event) == "duplicate"

        # An event started in b's Temporal namespace cannot speak for a.
        forged = HandOff(in_b, namespace=a)
        other = CloudEvent(id=uuid.uuid4().hex, source="shop", type="order.created", data={})
        assert await forged.submit(other) == "started"
        refused = await in_b.get_workflow_handle(
            forged.workflow_id(other), result_type=Decision
        ).result()
        assert refused.status == "unroutable"
        assert f"may not be routed from Temporal namespace '{TENANT_B}'" in str(refused.reason)
        with contextlib.suppress(RPCError):
            await in_a.get_workflow_handle(f"{forged.workflow_id(other)}/{a}/orders").describe()
            raise AssertionError("a run was started for a forged event")


async def test_the_operator_registers_search_attributes_in_every_temporal_namespace(
    tmp_path: Path,
) -> None:
    """A Listener's hand-off sets TflowNamespace in its tenant's Temporal namespace before
    any definition there was reconciled: the operator registers them everywhere at once."""
    server = TemporalServer(
        tmp_path / "temporal", headless=True, search_attributes={}, extra_namespaces=(TENANT_A,)
    ).start()
    try:
        gateway = TemporalGateway(server.address, "default", namespaces=("default", TENANT_A))
        client = await gateway.client()
        assert gateway.search_attributes_registered
        for namespace in ("default", TENANT_A):
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes), namespace
    finally:
        server.stop()


async def test_a_tenants_runs_in_any_of_its_temporal_namespaces_get_its_events_and_run_control(
    tenant_temporal: TemporalServer,
    tenants: tuple[str, str],
    mapping: TemporalNamespaces,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """b's home is tenant-b, and b's definitions may also run in tenant-b-batch: an event
    b's listener hands to tenant-b reaches b's run waiting there, and not a's; b's
    Listener's run control reaches b's run there too, a's does not."""
    a, b = tenants
    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    home, batch, in_a = (client_for(client, ns) for ns in (TENANT_B, TENANT_B_BATCH, TENANT_A))
    queue = f"waiting-{uuid.uuid4().hex[:6]}"
    kind = f"release-{uuid.uuid4().hex[:6]}"
    document = {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "hold", "version": "1.0.0"},
        "do": [{"hold": {"listen": {"to": {"one": {"with": {"type": kind}}}}}}],
    }

    def waiting(namespace: str) -> RunInput:
        return RunInput(
            document=document, definition=DefinitionRef(namespace=namespace, name="hold")
        )

    (tmp_path / "routes").mkdir()
    orchestrators = OrchestratorWorkers(
        client,
        DEFAULT_ROUTER_TASK_QUEUE,
        OrchestratorActivities(tmp_path / "routes", tmp_path, temporal_namespaces=mapping),
    )
    async with orchestrators, build_worker(batch, queue), build_worker(in_a, queue):
        ours = await start_run(batch, waiting(b), queue, execution_timeout=timedelta(seconds=60))
        theirs = await start_run(in_a, waiting(a), queue, execution_timeout=timedelta(seconds=60))
        await listening_in(kind, batch, in_a)

        handoff = HandOff(home, namespace=b)
        event = CloudEvent(id=uuid.uuid4().hex, source="ops", type=kind, data={"by": "b"})
        assert await handoff.submit(event) == "started"
        decision = await home.get_workflow_handle(
            handoff.workflow_id(event), result_type=Decision
        ).result()
        assert decision.delivered == [ours.id]
        await asyncio.wait_for(ours.result(), 30)
        described = await theirs.describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        await theirs.terminate("test done")

        # b's Listener pod (client in tenant-b, its namespace's entry of the map) steers
        # b's run in tenant-b-batch; a's Listener does not reach it.
        later = await start_run(batch, waiting(b), queue, execution_timeout=timedelta(seconds=60))
        monkeypatch.setenv("TFLOW_TEMPORAL_NAMESPACES", mapping.only(b).to_env())
        token = tmp_path / "token"
        token.write_text("t0ken")
        auth = {"Authorization": "Bearer t0ken"}
        path = f"/runs/{urllib.parse.quote(later.id, safe='')}"
        for where, namespace in ((home, b), (in_a, a)):
            settings = WebhookSettings(
                bearer_token=Secret.from_file(token), run_control=True, namespace=namespace
            )
            http = TestClient(TestServer(WebhookListener(where, settings).app()))
            await http.start_server()
            try:
                if namespace == a:
                    assert (await http.get(path, headers=auth)).status == 403
                    continue
                found = await http.get(path, headers=auth)
                assert found.status == 200
                assert (await found.json())["execution"] == "RUNNING"
                signalled = await http.post(f"{path}/signal/{kind}", json={}, headers=auth)
                assert signalled.status == 202
            finally:
                await http.close()
        await asyncio.wait_for(later.result(), 30)


async def test_a_direct_listener_starts_and_delivers_in_its_tenants_temporal_namespaces(
    tenant_temporal: TemporalServer,
    tenants: tuple[str, str],
    mapping: TemporalNamespaces,
    tmp_path: Path,
) -> None:
    """b's Listener routing directly (its client in tenant-b, its namespace's entry of the
    map, as the operator configures its pod) starts the run of a definition that picked
    tenant-b-batch there, and hands the event to b's run waiting in tenant-b-batch, not
    to a's waiting in tenant-a; no workflow is started for the event itself."""
    a, b = tenants
    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    home, batch, in_a = (client_for(client, ns) for ns in (TENANT_B, TENANT_B_BATCH, TENANT_A))
    queue = f"direct-{uuid.uuid4().hex[:6]}"
    kind = f"direct-{uuid.uuid4().hex[:6]}"
    routes, definitions = tmp_path / "routes", tmp_path / "definitions"
    routes.mkdir()
    definitions.mkdir()
    table = RoutingTable(
        routes=[
            CompiledRoute(
                namespace=b,
                name="orders",
                workflow="orders",
                task_queue=queue,
                type=kind,
                input="${ .data }",
                temporal_namespace=TENANT_B_BATCH,
            )
        ]
    )
    for name, body in published_files(table).items():
        (routes / name).write_bytes(body)
    manifest = definition(b, "orders", queue, temporalNamespace=TENANT_B_BATCH)
    manifest["metadata"]["generation"] = 1
    (definitions / f"{b}.orders.yaml").write_text(yaml.safe_dump(manifest))
    hold = {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "hold", "version": "1.0.0"},
        "do": [{"hold": {"listen": {"to": {"one": {"with": {"type": kind}}}}}}],
    }

    def waiting(namespace: str) -> RunInput:
        return RunInput(document=hold, definition=DefinitionRef(namespace=namespace, name="hold"))

    handoff = DirectHandOff(
        DirectRouter(
            home,
            EventRouter(routes, definitions, require_index=True),
            b,
            TemporalNamespaces.from_env(
                shared=TENANT_B, env={"TFLOW_TEMPORAL_NAMESPACES": mapping.only(b).to_env()}
            ),
        )
    )
    async with build_worker(batch, queue), build_worker(in_a, queue):
        ours = await start_run(batch, waiting(b), queue, execution_timeout=timedelta(seconds=60))
        theirs = await start_run(in_a, waiting(a), queue, execution_timeout=timedelta(seconds=60))
        await listening_in(kind, batch, in_a)
        event = CloudEvent(id=uuid.uuid4().hex, source="ops", type=kind, data={"order": 7})
        assert await handoff.submit(event) == "started"
        run = batch.get_workflow_handle(f"{handoff.workflow_id(event)}/{b}/orders")
        assert await asyncio.wait_for(run.result(), 30) == {"order": 7}
        assert await asyncio.wait_for(ours.result(), 30) == [{"order": 7}]
        assert (await theirs.describe()).status == WorkflowExecutionStatus.RUNNING
        await theirs.terminate("test done")
        for where in (home, batch):
            with pytest.raises(RPCError) as missing:
                await where.get_workflow_handle(handoff.workflow_id(event)).describe()
            assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_a_flows_emitted_event_is_routed_from_its_temporal_namespace(
    tenant_temporal: TemporalServer,
    tenants: tuple[str, str],
    mapping: TemporalNamespaces,
    tmp_path: Path,
) -> None:
    """b's flow runs in tenant-b-batch and emits: the orchestrator there routes the event
    as b's, and b's route to a definition in b's home starts that run in tenant-b."""
    _, b = tenants
    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    home, batch = client_for(client, TENANT_B), client_for(client, TENANT_B_BATCH)
    marker = uuid.uuid4().hex[:6]
    q_batch, q_home = f"export-{marker}", f"notify-{marker}"
    emit = {"emit": {"event": {"with": {"type": f"exported-{marker}", "source": "exports"}}}}
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    for name, queue, do, extra in (
        ("export", q_batch, [{"announce": emit}], {"temporalNamespace": TENANT_B_BATCH}),
        ("notify", q_home, [{"done": {"set": {"notified": True}}}], {}),
    ):
        manifest = definition(b, name, queue, **extra)
        manifest["spec"]["workflow"]["do"] = do
        manifest["metadata"]["generation"] = 1
        (definitions / f"{name}.yaml").write_text(yaml.safe_dump(manifest))
    routes = tmp_path / "routes"
    routes.mkdir()
    table = RoutingTable(
        routes=[
            CompiledRoute(
                namespace=b,
                name="notify",
                type=f"exported-{marker}",
                workflow="notify",
                task_queue=q_home,
                temporal_namespace=TENANT_B,
            )
        ]
    )
    (routes / "routes.json").write_text(table.to_json())
    orchestrators = OrchestratorWorkers(
        client,
        DEFAULT_ROUTER_TASK_QUEUE,
        OrchestratorActivities(routes, definitions, temporal_namespaces=mapping),
    )
    async with orchestrators, build_worker(batch, q_batch), build_worker(home, q_home):
        run = RunInput(
            document=yaml.safe_load((definitions / "export.yaml").read_text())["spec"]["workflow"],
            definition=DefinitionRef(namespace=b, name="export"),
        )
        export = await start_run(batch, run, q_batch, execution_timeout=timedelta(seconds=60))
        await export.result()
        query = f'TflowDefinition = "{b}/notify"'
        found: list[str] = []
        for _ in range(100):
            found = [w.id async for w in home.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.2)
        assert len(found) == 1
        assert await home.get_workflow_handle(found[0]).result() == {"notified": True}
        # The emitted event's orchestrator ran where the flow runs, as b's.
        root = batch.get_workflow_handle(found[0].split("/")[0], result_type=Decision)
        decision = await root.result()
        assert decision.status == "routed"
        assert [(m.namespace, m.status) for m in decision.matches] == [(b, "started")]


def _spawn(argv: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


async def test_the_orchestrator_process_polls_every_mapped_temporal_namespace(
    tenant_temporal: TemporalServer,
    tenants: tuple[str, str],
    mapping: TemporalNamespaces,
    tmp_path: Path,
) -> None:
    """`tflow-worker --serve-orchestrator` with the chart's TFLOW_TEMPORAL_NAMESPACES
    answers events handed to each tenant's Temporal namespace."""
    a, b = tenants
    (tmp_path / "routes").mkdir()
    health = free_port()
    env = {
        **os.environ,
        "TEMPORAL_NAMESPACE": "default",
        "TFLOW_TEMPORAL_NAMESPACES": mapping.to_env(),
    }
    log = (tmp_path / "orchestrator.log").open("w")
    argv = [
        sys.executable,
        "-m",
        "tflow_workers.worker",
        "--serve-orchestrator",
        f"--routes-dir={tmp_path / 'routes'}",
        f"--definitions-dir={tmp_path}",
        f"--address={tenant_temporal.address}",
        f"--health-port={health}",
        "--metrics-port=0",
    ]
    process = _spawn(argv, log, env)
    try:
        client = await connect(tenant_temporal.address, tenant_temporal.namespace)
        for namespace, tenant in ((a, TENANT_A), (b, TENANT_B), (b, TENANT_B_BATCH)):
            where = client_for(client, tenant)
            handoff = HandOff(where, namespace=namespace)
            event = CloudEvent(id=uuid.uuid4().hex, source="probe", type="nothing.routes.this")
            assert await handoff.submit(event) == "started"
            handle = where.get_workflow_handle(handoff.workflow_id(event), result_type=Decision)
            decision = await asyncio.wait_for(handle.result(), 120)
            assert decision.status == "unroutable", tenant
            assert "no route matches" in str(decision.reason)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (tmp_path / "orchestrator.log").read_text()
