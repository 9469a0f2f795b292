"""The run API against the real apiserver (TokenReview, SubjectAccessReview, the
WorkflowDefinitions) and the real Temporal dev server: each endpoint, an idempotent
start, paging over 1000 runs, and refusals: no token, a token the cluster does not take,
a caller without the RBAC grant, a run of another namespace, a definition that does not
exist or is not Ready, an input its schema rejects."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from engine_harness import EngineHarness
from polling import eventually_async
from run_api_objects import ALL_VERBS, APPROVAL, bearer, definition, grant
from temporalio.client import Client
from temporalio.service import RPCError

from tflow_cli.kube_access import KubeAccess
from tflow_cli.runapi.service import RunApi
from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.temporal import TemporalServer
from tflow_operator.kube import KubeClient
from tflow_workers import run_operations as ops
from tflow_workers.connection import connect
from tflow_workers.temporal_namespaces import TemporalNamespaces, client_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(
    kube: ControlPlane, crds: None, temporal_client: Client, kube_client: KubeClient
) -> AsyncIterator[tuple[TestClient[Any, Any], RunApi]]:
    service = RunApi(temporal_client, KubeAccess(kube_client))
    http = TestClient(TestServer(service.app()))
    await http.start_server()
    try:
        yield http, service
    finally:
        await http.close()


async def call(
    http: TestClient[Any, Any],
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    expect: int = 200,
) -> dict[str, Any]:
    response = await http.request(method, path, json=body, headers=bearer(token) if token else {})
    answer = await response.json()
    assert response.status == expect, (method, path, answer)
    return dict(answer)


async def test_start_read_history_signal_and_list(
    api: tuple[TestClient[Any, Any], RunApi],
    kube: ControlPlane,
    namespace: str,
    engine: EngineHarness,
) -> None:
    http, _ = api
    definition(kube, namespace, "approval", engine.task_queue)
    token = grant(kube, namespace, "alice", ALL_VERBS)
    runs = f"/v1/namespaces/{namespace}/workflowdefinitions/approval/runs"
    key = f"order-{uuid.uuid4().hex[:8]}"

    first = await call(
        http, "POST", runs, token, {"input": {"orderId": "A-1"}, "workflowId": key}, 201
    )
    assert first["workflowId"] == f"{namespace}:approval:{key}"
    assert (first["started"], first["definition"]) == (True, f"{namespace}/approval")
    # The same key again: the same run, answered, nothing new started.
    again = await call(
        http, "POST", runs, token, {"input": {"orderId": "A-2"}, "workflowId": key}, 200
    )
    assert (again["runId"], again["started"]) == (first["runId"], False)
    run = f"/v1/namespaces/{namespace}/runs/{first['workflowId']}"

    async def current(task: str | None, status: str) -> bool:
        state = await call(http, "GET", run, token)
        return bool(state["status"] == status and state["currentTask"] == task)

    await eventually_async(lambda: current("awaitApproval", "running"), "the run to listen")
    state = await call(http, "GET", run, token)
    assert (state["status"], state["namespace"]) == ("running", namespace)
    assert [e["name"] for e in state["log"]] == ["awaitApproval"]

    # Temporal pages by whole event batches: pageSize is an upper bound per batch.
    page = await call(http, "GET", f"{run}/history?pageSize=2", token)
    first_ids = [e["eventId"] for e in page["events"]]
    assert page["events"][0]["eventType"] == "WORKFLOW_EXECUTION_STARTED"
    started = page["events"][0]["attributes"]
    assert started["workflowType"]["name"] == "ServerlessWorkflow"
    assert page["log"][0]["name"] == "awaitApproval"
    assert page["nextPageToken"]
    rest = await call(
        http, "GET", f"{run}/history?pageSize=2&pageToken={page['nextPageToken']}", token
    )
    assert rest["events"][0]["eventId"] == first_ids[-1] + 1
    assert rest["log"] is None  # the task log comes with the first page only

    answer = await call(http, "POST", f"{run}/signals/approve", token, {"by": "alice"}, 202)
    assert answer["runId"] == first["runId"]

    await eventually_async(lambda: current(None, "completed"), "the run to complete")
    state = await call(http, "GET", run, token)
    assert state["output"] == {"approvedBy": "alice"}
    assert [e["outcome"] for e in state["log"]] == ["completed", "completed"]
    # Each task's input and output, as JSON text the worker cut at a few kilobytes.
    listened, last = state["log"]
    assert json.loads(listened["input"]["text"]) == {"orderId": "A-1"}
    assert last["output"] == {"text": '{"approvedBy":"alice"}', "truncated": False}
    problem = await call(http, "POST", f"{run}/signals/approve", token, {"by": "x"}, 409)
    assert problem["reason"] == "run-closed"

    # A second, running run; the list filters on status through the search attributes.
    second = await call(http, "POST", runs, token, {"input": {"orderId": "B-1"}}, 201)

    async def listed(status: str, expected: list[str]) -> bool:
        page = await call(http, "GET", f"{runs}?status={status}", token)
        return [r["workflowId"] for r in page["runs"]] == expected

    await eventually_async(lambda: listed("completed", [first["workflowId"]]), "completed runs")
    await eventually_async(lambda: listed("running", [second["workflowId"]]), "running runs")
    problem = await call(http, "GET", f"{runs}?status=sleeping", token, expect=400)
    assert problem["reason"] == "bad-filter"
    await call(
        http,
        "POST",
        f"/v1/namespaces/{namespace}/runs/{second['workflowId']}/terminate",
        token,
        {},
        202,
    )


async def test_an_event_cancel_and_terminate(
    api: tuple[TestClient[Any, Any], RunApi],
    kube: ControlPlane,
    namespace: str,
    engine: EngineHarness,
    temporal_client: Client,
) -> None:
    http, _ = api
    definition(kube, namespace, "approval", engine.task_queue)
    token = grant(kube, namespace, "ops", ALL_VERBS)
    runs = f"/v1/namespaces/{namespace}/workflowdefinitions/approval/runs"
    ids = [
        (await call(http, "POST", runs, token, {"input": {"orderId": str(i)}}, 201))["workflowId"]
        for i in range(3)
    ]
    base = f"/v1/namespaces/{namespace}/runs/"

    await call(
        http,
        "POST",
        base + ids[0] + "/events",
        token,
        {"type": "approve", "source": "test", "data": {"by": "an event"}},
        202,
    )
    assert await temporal_client.get_workflow_handle(ids[0]).result() == {"approvedBy": "an event"}
    problem = await call(http, "POST", base + ids[0] + "/events", token, {"source": "x"}, 400)
    assert "type" in problem["detail"]

    await call(http, "POST", base + ids[1] + "/cancel", token, None, 202)
    await call(http, "POST", base + ids[2] + "/terminate", token, {"reason": "not needed"}, 202)

    async def status(workflow_id: str, wanted: str) -> bool:
        state = await call(http, "GET", base + workflow_id, token)
        return bool(state["status"] == wanted)

    await eventually_async(lambda: status(ids[1], "cancelled"), "the run cancelled")
    await eventually_async(lambda: status(ids[2], "terminated"), "the run terminated")
    problem = await call(http, "POST", base + ids[2] + "/cancel", token, None, 409)
    assert problem["reason"] == "run-closed"


async def test_bad_starts_are_refused_before_any_run_starts(
    api: tuple[TestClient[Any, Any], RunApi],
    kube: ControlPlane,
    namespace: str,
    temporal_client: Client,
) -> None:
    http, _ = api
    definition(kube, namespace, "approval", "nowhere")
    definition(kube, namespace, "pending", "nowhere", ready=False)
    token = grant(kube, namespace, "alice", ALL_VERBS)
    base = f"/v1/namespaces/{namespace}/workflowdefinitions"

    problem = await call(http, "POST", f"{base}/missing/runs", token, {"input": {}}, 404)
    assert problem["reason"] == "no-such-definition"
    assert f"{namespace}/missing" in problem["detail"]
    problem = await call(
        http, "POST", f"{base}/pending/runs", token, {"input": {"orderId": "1"}}, 409
    )
    assert problem["reason"] == "definition-not-ready"
    assert "no available replica" in problem["detail"]
    problem = await call(
        http, "POST", f"{base}/approval/runs", token, {"input": {"orderId": 7}}, 400
    )
    assert problem["reason"] == "invalid-input"
    assert "/orderId: 7 is not of type 'string'" in problem["detail"]
    problem = await call(http, "POST", f"{base}/approval/runs", token, {"input": {}}, 400)
    assert "/: 'orderId' is a required property" in problem["detail"]
    problem = await call(
        http,
        "POST",
        f"{base}/approval/runs",
        token,
        {"input": {"orderId": "1"}, "workflowId": "no spaces"},
        400,
    )
    assert problem["reason"] == "invalid-workflow-id"
    problem = await call(
        http, "POST", f"{base}/approval/runs", token, {"input": {"orderId": "1"}, "extra": 1}, 400
    )
    assert problem["reason"] == "invalid-body"
    count = await temporal_client.count_workflows(f'TflowNamespace = "{namespace}"')
    assert count.count == 0


async def test_callers_reach_only_what_rbac_grants_them(
    api: tuple[TestClient[Any, Any], RunApi],
    kube: ControlPlane,
    namespace: str,
    other_namespace: str,
    engine: EngineHarness,
    cleanup_runs: list[str],
) -> None:
    http, _ = api
    definition(kube, namespace, "approval", engine.task_queue)
    definition(kube, other_namespace, "approval", engine.task_queue)
    alice = grant(kube, namespace, "alice", ALL_VERBS)
    reader = grant(kube, namespace, "reader", ["get", "list"])
    nobody = grant(kube, namespace, "nobody", [])
    bob = grant(kube, other_namespace, "bob", ALL_VERBS)
    ours = f"/v1/namespaces/{namespace}/workflowdefinitions/approval/runs"
    theirs = f"/v1/namespaces/{other_namespace}/workflowdefinitions/approval/runs"
    mine = (await call(http, "POST", ours, alice, {"input": {"orderId": "1"}}, 201))["workflowId"]
    bobs = (await call(http, "POST", theirs, bob, {"input": {"orderId": "2"}}, 201))["workflowId"]
    cleanup_runs.extend([mine, bobs])
    run = f"/v1/namespaces/{namespace}/runs/{mine}"
    routes: list[tuple[str, str, Any]] = [
        ("POST", ours, {"input": {"orderId": "1"}}),
        ("GET", ours, None),
        ("GET", run, None),
        ("GET", run + "/history", None),
        ("POST", run + "/signals/approve", {"by": "mallory"}),
        ("POST", run + "/events", {"type": "approve"}),
        ("POST", run + "/cancel", None),
        ("POST", run + "/terminate", {}),
    ]
    # No token, a token the cluster does not accept (even with a body that is not JSON):
    # 401 before anything else.
    for method, path, body in routes:
        response = await http.request(method, path, json=body)
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = await http.request(method, path, data=b"{", headers=bearer("forged"))
        assert response.status == 401, (method, path)
        assert (await response.json())["reason"] == "bad-token"
    # Authenticated, but no grant in this namespace.
    for token in (nobody, bob):
        for method, path, body in routes:
            problem = await call(http, method, path, token, body, 403)
            assert problem["reason"] == "forbidden"
            assert namespace in problem["detail"]
    # Reading is not steering.
    await call(http, "GET", run, reader)
    await call(http, "GET", ours, reader)
    for method, path, body in (routes[0], *routes[4:]):
        await call(http, method, path, reader, body, 403)
    # Alice, allowed in her namespace, names Bob's run through it: the same 404 as a run
    # that does not exist.
    answers = []
    for workflow_id in (bobs, f"{namespace}:approval:missing"):
        for method, suffix, body in (
            ("GET", "", None),
            ("GET", "/history", None),
            ("POST", "/signals/approve", {"by": "alice"}),
            ("POST", "/cancel", None),
            ("POST", "/terminate", {}),
        ):
            path = f"/v1/namespaces/{namespace}/runs/{workflow_id}{suffix}"
            problem = await call(http, method, path, alice, body, 404)
            answers.append((problem["reason"], problem["detail"].replace(workflow_id, "<id>")))
    assert set(answers) == {("no-such-run", "no run '<id>' is reachable")}
    # Nor does her namespace's list show it.
    page = await call(http, "GET", ours, alice)
    assert bobs not in [r["workflowId"] for r in page["runs"]]
    # Bob's run still waits for its approval.
    state = await call(http, "GET", f"/v1/namespaces/{other_namespace}/runs/{bobs}", bob)
    assert state["status"] == "running"


async def test_paging_over_a_thousand_runs(
    api: tuple[TestClient[Any, Any], RunApi],
    kube: ControlPlane,
    namespace: str,
    temporal_client: Client,
    task_queue: str,
) -> None:
    http, _ = api
    definition(kube, namespace, "bulk", task_queue)
    token = grant(kube, namespace, "alice", ALL_VERBS)
    found = ops.Definition(
        namespace=namespace, name="bulk", document=APPROVAL, task_queue=task_queue, ready=True
    )
    total = 1000
    limit = asyncio.Semaphore(32)

    async def start(i: int) -> str:
        async with limit:
            started = await ops.start_run(temporal_client, found, {"orderId": str(i)}, f"k{i}")
            return started.workflow_id

    # No worker polls this queue, so the runs stay open and cost the server nothing more.
    # They are left so (the session's Temporal server goes with the session): ending a
    # thousand runs costs the server about what starting them did, in a batch job too,
    # and slows the tests after this one.
    ids = set(await asyncio.gather(*(start(i) for i in range(total))))
    query = f'TflowDefinition = "{namespace}/bulk"'

    async def indexed() -> bool:
        return (await temporal_client.count_workflows(query)).count == total

    await eventually_async(indexed, "1000 runs in visibility", seconds=90)
    runs = f"/v1/namespaces/{namespace}/workflowdefinitions/bulk/runs"
    seen: list[str] = []
    pages = 0
    token_param = ""
    while True:
        page = await call(http, "GET", f"{runs}?pageSize=150{token_param}", token)
        pages += 1
        seen.extend(r["workflowId"] for r in page["runs"])
        assert all(r["status"] == "running" for r in page["runs"])
        if not page["nextPageToken"]:
            break
        token_param = f"&pageToken={page['nextPageToken']}"
    assert len(seen) == total
    assert set(seen) == ids
    assert pages == 7  # 6 full pages of 150 and 100 more
    problem = await call(http, "GET", f"{runs}?pageSize=1001", token, expect=400)
    assert problem["reason"] == "bad-page-size"
    problem = await call(http, "GET", f"{runs}?pageToken=%25%25", token, expect=400)
    assert problem["reason"] == "bad-page-token"


async def test_openapi_document_is_generated_from_the_routes(
    api: tuple[TestClient[Any, Any], RunApi],
) -> None:
    http, _ = api
    response = await http.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    paths = document["paths"]
    runs = "/v1/namespaces/{namespace}/workflowdefinitions/{name}/runs"
    run = "/v1/namespaces/{namespace}/runs/{workflowId}"
    assert set(paths[runs]) == {"post", "get"}
    assert {run, run + "/history", run + "/signals/{signal}", run + "/events"} <= set(paths)
    assert {run + "/cancel", run + "/terminate", "/healthz", "/readyz", "/metrics"} <= set(paths)
    start = paths[runs]["post"]
    assert start["security"] == [{"bearer": []}]
    assert set(start["responses"]) == {"200", "201", "400", "401", "403", "404", "409", "503"}
    assert start["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartRequest"
    }
    listing = paths[runs]["get"]
    assert {p["name"]: p["in"] for p in listing["parameters"]} == {
        "namespace": "path",
        "name": "path",
        "status": "query",
        "pageSize": "query",
        "pageToken": "query",
    }
    schemas = document["components"]["schemas"]
    assert {"StartedRun", "RunPage", "RunDetail", "HistoryPage", "TaskLogEntry"} <= set(schemas)
    entry = schemas["TaskLogEntry"]["properties"]
    assert {"input", "output"} <= set(entry)
    assert schemas["DataPreview"]["required"] == ["text"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


# ---- a tenant with Temporal namespaces of its own -------------------------------------------

TENANT_HOME = "tenant-home"
TENANT_BATCH = "tenant-batch"


@pytest.fixture(scope="module")
def tenant_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = TemporalServer(
        tmp_path_factory.mktemp("temporal-run-api-tenants"),
        headless=True,
        extra_namespaces=(TENANT_HOME, TENANT_BATCH),
    ).start()
    try:
        yield server
    finally:
        server.stop()


async def test_runs_live_in_the_temporal_namespaces_of_their_tenant(
    kube: ControlPlane,
    crds: None,
    kube_client: KubeClient,
    namespace: str,
    tenant_temporal: TemporalServer,
) -> None:
    client = await connect(tenant_temporal.address, tenant_temporal.namespace)
    mapping = TemporalNamespaces(shared="default", mapped={namespace: (TENANT_HOME, TENANT_BATCH)})
    service = RunApi(client, KubeAccess(kube_client), temporal_namespaces=mapping)
    http = TestClient(TestServer(service.app()))
    await http.start_server()
    try:
        token = grant(kube, namespace, "alice", ALL_VERBS)
        definition(kube, namespace, "home", "nowhere")  # no temporalNamespace: the home
        definition(kube, namespace, "batch", "nowhere")
        kube.kubectl(
            "patch",
            "workflowdefinition",
            "batch",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"temporalNamespace": TENANT_BATCH}}),
        )
        base = f"/v1/namespaces/{namespace}"
        started = {}
        for name, where in (("home", TENANT_HOME), ("batch", TENANT_BATCH)):
            runs = f"{base}/workflowdefinitions/{name}/runs"
            run = await call(http, "POST", runs, token, {"input": {"orderId": "1"}}, 201)
            started[name] = run["workflowId"]
            # The run is where its definition runs, and nowhere else.
            there = client_for(client, where).get_workflow_handle(run["workflowId"])
            assert (await there.describe()).run_id == run["runId"]
            with pytest.raises(RPCError):
                await client.get_workflow_handle(run["workflowId"]).describe()

            async def listed(runs: str = runs, workflow_id: str = run["workflowId"]) -> bool:
                page = await call(http, "GET", runs, token)
                return [r["workflowId"] for r in page["runs"]] == [workflow_id]

            await eventually_async(listed, f"the {name} run listed")
            # Found by its id, in whichever of the tenant's namespaces holds it.
            state = await call(http, "GET", f"{base}/runs/{run['workflowId']}", token)
            assert state["status"] == "running"
            # No worker polls "nowhere": no task log, and why, without waiting for a query.
            assert state["note"] == "no task log: no worker polls task queue 'nowhere'"
        for workflow_id in started.values():
            await call(http, "POST", f"{base}/runs/{workflow_id}/terminate", token, {}, 202)
            state = await call(http, "GET", f"{base}/runs/{workflow_id}", token)
            assert state["status"] == "terminated"
    finally:
        await http.close()
