"""The web UI's JSON API on the real dev server and apiserver, in its `token` mode (the
one `tflow ui` starts with on a laptop): a run's graph matches its task log, runs are
paged, reads and actions need the token and obey the UI's namespaces, and old runs,
deleted definitions and a Temporal outage are answered with a sentence. The Kubernetes
mode's grants are test_ui_access.py's."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from engine_harness import EngineHarness
from polling import eventually_async
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from tflow_cli.ui.server import UiApp, UiSettings
from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import free_port
from tflow_operator.kube import KubeClient
from tflow_workers.connection import connect
from tflow_workers.engine.model import WORKFLOW_TYPE, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
UiFactory = Callable[..., Any]


@pytest.fixture
async def ui(temporal_client: Client) -> AsyncIterator[UiFactory]:
    """Start the UI app in this process; yields a factory of test clients."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        client: Client | None = None,
        kube: KubeClient | None = None,
        anonymous: bool = False,
        **settings: Any,
    ) -> TestClient[Any, Any]:
        defaults: dict[str, Any] = {
            "auth": "token",
            "token": SecretStr(TOKEN),
            "query_timeout": 2.0,
            "namespaces": ("*",),
        }
        app = UiApp(client or temporal_client, UiSettings(**{**defaults, **settings}), kube)
        # Every call of a signed-in page carries the token.
        headers = {} if anonymous else {"Authorization": f"Bearer {TOKEN}"}
        test_client: TestClient[Any, Any] = TestClient(TestServer(app.app()), headers=headers)
        await test_client.start_server()
        clients.append(test_client)
        return test_client

    yield make
    for c in clients:
        await c.close()


def _doc(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "nested", "version": "1.0.0"},
        "do": tasks,
    }


NESTED = _doc(
    [
        {"first": {"set": {"n": 2}}},
        {
            "loop": {
                "for": {"in": "${ [1, 2] }", "each": "item"},
                "do": [{"inner": {"set": {"seen": "${ $item }"}}}],
            }
        },
        {
            "both": {
                "fork": {
                    "branches": [
                        {"left": {"set": {"side": "left"}}},
                        {"right": {"set": {"side": "right"}}},
                    ]
                }
            }
        },
        {
            "guarded": {
                "try": [{"boom": {"raise": {"error": {"type": "oops", "status": 500}}}}],
                "catch": {"do": [{"recover": {"set": {"recovered": True}}}]},
            }
        },
        {"group": {"do": [{"last": {"set": {"done": True}}}]}},
    ]
)


async def test_graph_references_match_the_task_log(engine: EngineHarness, ui: UiFactory) -> None:
    handle = await engine.start(NESTED)
    await handle.result()
    client = await ui()
    response = await client.get("/api/run", params={"id": handle.id})
    assert response.status == 200
    view = await response.json()
    assert view["status"] == "completed"
    references = {n["reference"] for n in view["graph"]["nodes"]}
    logged = {entry["reference"] for entry in view["log"]}
    assert {
        "/do/1/loop/do/0/inner",
        "/do/2/both/fork/branches/1/right",
        "/do/3/guarded/try/0/boom",
        "/do/3/guarded/catch/do/0/recover",
        "/do/4/group/do/0/last",
    } <= logged
    assert logged <= references, logged - references
    # Nested tasks sit in their parent's cluster.
    nodes = {n["reference"]: n for n in view["graph"]["nodes"]}
    clusters = {c["id"]: c for c in view["graph"]["clusters"]}
    assert clusters[nodes["/do/1/loop/do/0/inner"]["parent"]]["label"] == "loop: body"
    failed = [e for e in view["log"] if e["reference"] == "/do/3/guarded/try/0/boom"]
    assert failed[0]["outcome"] == "faulted"


async def test_runs_of_a_definition_are_paged(
    temporal_client: Client, ui: UiFactory, task_queue: str, cleanup_runs: list[str]
) -> None:
    name = f"paged-{uuid.uuid4().hex[:8]}"
    run = RunInput(document=_doc([{"a": {"set": {}}}]), definition=DefinitionRef(name=name))
    for index in range(120):
        handle = await start_run(temporal_client, run, task_queue, workflow_id=f"{name}-{index}")
        cleanup_runs.append(handle.id)
    definition = f"default/{name}"
    query = f'TflowDefinition = "{definition}"'

    async def all_visible() -> bool:
        return (await temporal_client.count_workflows(query)).count == 120

    await eventually_async(all_visible, "the 120 runs in visibility")
    client = await ui()
    seen: list[str] = []
    sizes: list[int] = []
    page: str | None = None
    while True:
        params = {"definition": definition, "pageSize": "50", "status": "running"}
        if page:
            params["page"] = page
        response = await client.get("/api/runs", params=params)
        assert response.status == 200
        body = await response.json()
        sizes.append(len(body["runs"]))
        seen.extend(r["workflowId"] for r in body["runs"])
        page = body["nextPageToken"]
        if not page:
            break
    assert sizes[:2] == [50, 50]
    assert sum(sizes) == 120
    assert sorted(seen) == sorted(f"{name}-{i}" for i in range(120))
    row = body["runs"][0]
    assert row["definition"] == definition
    assert row["namespace"] == "default"

    # The filters on the other search attributes page the same way.
    by_namespace = await client.get(
        "/api/runs", params={"definition": definition, "namespace": "default", "pageSize": "50"}
    )
    body = await by_namespace.json()
    assert len(body["runs"]) == 50
    assert body["nextPageToken"]
    elsewhere = await client.get("/api/runs", params={"definition": definition, "namespace": "x"})
    assert (await elsewhere.json())["runs"] == []

    bad = await client.get("/api/runs", params={"definition": 'default/x" OR 1=1'})
    assert bad.status == 400
    assert "quotes" in (await bad.json())["detail"]


async def test_reads_and_actions_need_the_token_and_the_namespace(
    temporal_client: Client, ui: UiFactory, task_queue: str, cleanup_runs: list[str]
) -> None:
    document = _doc([{"wait": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}}])
    own = await start_run(
        temporal_client,
        RunInput(document=document, definition=DefinitionRef(name="a", namespace="team-a")),
        task_queue,
    )
    other = await start_run(
        temporal_client,
        RunInput(document=document, definition=DefinitionRef(name="b", namespace="team-b")),
        task_queue,
    )
    cleanup_runs.extend([own.id, other.id])
    client = await ui(namespaces=("team-a",))
    url = "/api/run/signal"

    # Without the token nothing is answered, reads included; the page is told what to ask.
    anonymous = await ui(namespaces=("team-a",), anonymous=True)
    for method, path, params in (
        ("GET", "/api/config", {}),
        ("GET", "/api/definitions", {}),
        ("GET", "/api/runs", {}),
        ("GET", "/api/run", {"id": own.id}),
        ("POST", url, {"id": own.id, "name": "go"}),
    ):
        missing = await anonymous.request(method, path, params=params)
        assert missing.status == 401, path
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        body = await missing.json()
        assert body["reason"] == "missing-token"
        assert "#token=" in body["signIn"]
        wrong = await anonymous.request(
            method, path, params=params, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status == 401, path
    assert (await anonymous.get("/healthz")).status == 200
    assert (await anonymous.get("/")).status == 200
    # A namespace outside the UI's is refused by name.
    outside = await client.get("/api/runs", params={"namespace": "team-b"})
    assert outside.status == 403
    assert "not allowed in namespace 'team-b'" in (await outside.json())["detail"]
    auth = {"Content-Type": "application/json"}
    elsewhere = await client.post(url, params={"id": other.id, "name": "go"}, headers=auth)
    unknown = await client.post(url, params={"id": "no-such-run", "name": "go"}, headers=auth)
    assert elsewhere.status == unknown.status == 404
    # The same words for both: the answer does not tell which ids exist elsewhere.
    assert (await elsewhere.json())["detail"].replace(other.id, "X") == (await unknown.json())[
        "detail"
    ].replace("no-such-run", "X")

    # Reads obey the same rule: another namespace's run is not shown, nor listed.
    hidden = await client.get("/api/run", params={"id": other.id})
    assert hidden.status == 404

    async def listed() -> set[str]:
        response = await client.get("/api/runs", params={"pageSize": "200"})
        return {r["workflowId"] for r in (await response.json())["runs"]}

    async def own_listed() -> bool:
        return own.id in await listed()

    await eventually_async(own_listed, "the run in the listing")
    assert other.id not in await listed()

    sent = await client.post(
        url, params={"id": own.id, "name": "go"}, headers=auth, data=json.dumps({"by": "ops"})
    )
    assert sent.status == 202
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in own.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals == ["go"]
    terminated = await client.post("/api/run/terminate", params={"id": own.id}, headers=auth)
    assert terminated.status == 202
    assert (await own.describe()).status == WorkflowExecutionStatus.TERMINATED
    again = await client.post("/api/run/cancel", params={"id": own.id}, headers=auth)
    assert again.status == 409

    read_only = await ui(read_only=True, namespaces=("*",))
    off = await read_only.post("/api/run/cancel", params={"id": other.id}, headers=auth)
    assert off.status == 403
    assert (await off.json())["reason"] == "actions-off"


async def test_a_run_without_its_document_is_explained(
    temporal_client: Client, ui: UiFactory, task_queue: str, cleanup_runs: list[str]
) -> None:
    # What an older engine recorded: no document in the run's input, and no worker.
    handle = await temporal_client.start_workflow(
        WORKFLOW_TYPE, {"steps": ["a", "b"]}, id=f"old-{uuid.uuid4()}", task_queue=task_queue
    )
    cleanup_runs.append(handle.id)
    client = await ui(query_timeout=1.0)
    response = await client.get("/api/run", params={"id": handle.id})
    assert response.status == 200
    view = await response.json()
    assert view["graph"] is None
    assert view["log"] is None
    notes = " ".join(view["notes"])
    assert "does not carry a Serverless Workflow document" in notes
    assert "no task log" in notes

    missing = await client.get("/api/run", params={"id": "never-started"})
    assert missing.status == 404
    assert (await missing.json())["detail"] == "no run 'never-started' is reachable"


async def test_a_temporal_outage_is_answered_with_a_sentence(ui: UiFactory) -> None:
    dead = await connect(f"127.0.0.1:{free_port()}", "default", lazy=True)
    client = await ui(client=dead)
    for path, params in (("/api/runs", {}), ("/api/run", {"id": "x"})):
        response = await client.get(path, params=params)
        assert response.status == 503, await response.text()
        body = await response.json()
        assert body["reason"] == "temporal-unavailable"
        assert "Temporal" in body["detail"]


async def test_definitions_come_from_the_cluster(
    kube: ControlPlane, crds: None, namespace: str, kube_client: KubeClient, ui: UiFactory
) -> None:
    import samples

    manifest = samples.manifest("order-workflow.yaml")
    manifest["metadata"] = {"name": "order", "namespace": namespace}
    await kube_client.create(manifest)
    route = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": "orders-in", "namespace": namespace},
        "spec": {"match": {"type": "order.placed"}, "workflow": "order"},
    }
    await kube_client.create(route)
    client = await ui(kube=kube_client)
    response = await client.get("/api/definitions", params={"namespace": namespace})
    body = await response.json()
    (order,) = body["definitions"]
    assert order["name"] == "order"
    assert order["taskQueue"] == "orders"
    assert order["maxReplicas"] == 10
    assert [r["name"] for r in order["routes"]] == ["orders-in"]

    gone = await client.get(f"/api/definitions/{namespace}/deleted-one")
    assert gone.status == 404
    assert "not in the cluster" in (await gone.json())["detail"]
