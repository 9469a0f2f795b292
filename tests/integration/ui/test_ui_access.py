"""The web UI in its Kubernetes mode (the chart's) against the real apiserver: callers
send service account tokens, checked with TokenReview, and every namespace is a
SubjectAccessReview of the run API's verbs on workflowdefinitions/runs. No token is 401
for reads as for actions; a reader sees its namespace's definitions and runs and nothing
of another's (403 naming the namespace, a run of it 404); only the operator verbs send an
event, cancel or terminate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from polling import eventually_async
from run_api_objects import ALL_VERBS, bearer, definition, grant
from temporalio.client import Client, WorkflowExecutionStatus

from tflow_cli.kube_access import KubeAccess
from tflow_cli.ui.server import UiApp, UiSettings
from tflow_devstack.controlplane import ControlPlane
from tflow_operator.kube import KubeClient
from tflow_workers.engine.model import DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration

WAITING = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "wait", "version": "1.0.0"},
    "do": [{"hold": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}}],
}


class CountingKube:
    """The real apiserver, with the access reviews asked of it counted."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.reviews = 0

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "SubjectAccessReview":
            self.reviews += 1
        return await self.kube.create(obj)

    async def get(self, *args: Any) -> dict[str, Any] | None:
        return await self.kube.get(*args)


@pytest.fixture
async def ui(
    kube: ControlPlane, crds: None, temporal_client: Client, kube_client: KubeClient
) -> AsyncIterator[tuple[TestClient[Any, Any], CountingKube]]:
    counting = CountingKube(kube_client)
    access = KubeAccess(cast(KubeClient, counting), review_seconds=30)
    settings = UiSettings(auth="kubernetes", query_timeout=1.0)
    http: TestClient[Any, Any] = TestClient(
        TestServer(UiApp(temporal_client, settings, kube_client, access).app())
    )
    await http.start_server()
    try:
        yield http, counting
    finally:
        await http.close()


async def _waiting_run(client: Client, namespace: str, name: str, task_queue: str) -> str:
    handle = await start_run(
        client,
        RunInput(document=WAITING, definition=DefinitionRef(name=name, namespace=namespace)),
        task_queue,
    )
    return handle.id


async def test_kubernetes_tokens_and_grants_decide_per_namespace(
    ui: tuple[TestClient[Any, Any], CountingKube],
    kube: ControlPlane,
    namespace: str,
    other_namespace: str,
    temporal_client: Client,
    task_queue: str,
    cleanup_runs: list[str],
) -> None:
    http, counting = ui
    definition(kube, namespace, "approval", task_queue)
    definition(kube, other_namespace, "backup", task_queue)
    own = await _waiting_run(temporal_client, namespace, "approval", task_queue)
    other = await _waiting_run(temporal_client, other_namespace, "backup", task_queue)
    cleanup_runs.extend([own, other])
    reader = bearer(grant(kube, namespace, "reader", ["get", "list"]))
    operator = bearer(grant(kube, namespace, "operator", ALL_VERBS))

    # No token, or one the cluster does not take: 401 for reads and actions alike.
    for method, path, params in (
        ("GET", "/api/config", {}),
        ("GET", "/api/definitions", {}),
        ("GET", "/api/runs", {"definition": f"{namespace}/approval"}),
        ("GET", "/api/run", {"id": own}),
        ("POST", "/api/run/cancel", {"id": own}),
    ):
        missing = await http.request(method, path, params=params)
        assert missing.status == 401, path
        body = await missing.json()
        assert "kubectl create token" in body["signIn"]
        bogus = await http.request(method, path, params=params, headers=bearer("not-a-token"))
        assert bogus.status == 401, path
        assert (await bogus.json())["reason"] == "bad-token"

    config = await (await http.get("/api/config", headers=reader)).json()
    assert config["user"] == f"system:serviceaccount:{namespace}:reader"
    assert config["auth"] == "kubernetes"

    # The reader's definitions: its namespace's, none of the other's.
    listed = await http.get("/api/definitions", headers=reader)
    assert listed.status == 200
    names = {(d["namespace"], d["name"]) for d in (await listed.json())["definitions"]}
    assert (namespace, "approval") in names
    assert not [n for n in names if n[0] == other_namespace]
    for path, params in (
        ("/api/definitions", {"namespace": other_namespace}),
        (f"/api/definitions/{other_namespace}/backup", {}),
        ("/api/runs", {"definition": f"{other_namespace}/backup"}),
        ("/api/runs", {"namespace": other_namespace}),
    ):
        refused = await http.get(path, params=params, headers=reader)
        assert refused.status == 403, path
        assert f"not allowed in namespace {other_namespace!r}" in (await refused.json())["detail"]
    assert (await http.get(f"/api/definitions/{namespace}/approval", headers=reader)).status == 200

    # Runs: the reader's namespace listed and shown; another's run is as if it did not exist.
    async def listed_ids(params: dict[str, str]) -> set[str]:
        response = await http.get("/api/runs", params=params, headers=reader)
        assert response.status == 200, await response.text()
        return {r["workflowId"] for r in (await response.json())["runs"]}

    async def own_listed() -> bool:
        return own in await listed_ids({"definition": f"{namespace}/approval"})

    await eventually_async(own_listed, "the run in the listing")
    every = await listed_ids({"pageSize": "200"})
    assert own in every
    assert other not in every
    shown = await http.get("/api/run", params={"id": own}, headers=reader)
    assert shown.status == 200
    assert (await shown.json())["namespace"] == namespace
    hidden = await http.get("/api/run", params={"id": other}, headers=reader)
    assert hidden.status == 404
    assert (await hidden.json())["reason"] == "no-such-run"

    # A page that polls asks the apiserver once per answer, not once per request.
    before = counting.reviews
    for _ in range(5):
        assert (await http.get("/api/run", params={"id": own}, headers=reader)).status == 200
        assert (await http.get("/api/definitions", headers=reader)).status == 200
    assert counting.reviews == before

    # Actions need the operator verbs: update to send an event, delete to stop.
    for action, params, verb in (
        ("signal", {"id": own, "name": "go"}, "update"),
        ("cancel", {"id": own}, "delete"),
        ("terminate", {"id": own}, "delete"),
    ):
        refused = await http.post(f"/api/run/{action}", params=params, headers=reader)
        assert refused.status == 403, action
        detail = (await refused.json())["detail"]
        assert f"not allowed in namespace {namespace!r}" in detail
        assert f"may not {verb}" in detail
    elsewhere = await http.post(
        "/api/run/terminate", params={"id": other}, headers=operator, json=None
    )
    assert elsewhere.status == 404
    sent = await http.post(
        "/api/run/signal", params={"id": own, "name": "go"}, headers=operator, json={"by": "op"}
    )
    assert sent.status == 202, await sent.text()
    terminated = await http.post("/api/run/terminate", params={"id": own}, headers=operator)
    assert terminated.status == 202
    own_state = await temporal_client.get_workflow_handle(own).describe()
    assert own_state.status == WorkflowExecutionStatus.TERMINATED
    other_state = await temporal_client.get_workflow_handle(other).describe()
    assert other_state.status == WorkflowExecutionStatus.RUNNING
