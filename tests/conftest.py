"""Session fixtures: every real server starts once per pytest session, on free loopback
ports, only when a test asks for it; tests are isolated by Kubernetes namespace,
Temporal task queue and S3 bucket."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import http_fixture_app
import pytest
from aiohttp import web
from engine_harness import EngineHarness
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from test_functions import TEST_FUNCTIONS

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.moto import MotoServer
from tflow_devstack.postgres import PostgresServer
from tflow_devstack.process import free_port
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT, venv_binary
from tflow_operator.kube import KubeClient
from tflow_workers.connection import connect
from tflow_workers.engine.activities import DirectoryRegistry, EngineActivities, SecretStore
from tflow_workers.worker import build_worker


def _slug(request: pytest.FixtureRequest, limit: int) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:6]
    return f"{base[: limit - len(suffix) - 1].rstrip('-')}-{suffix}"


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane")).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def crds(kube: ControlPlane) -> None:
    kube.apply_crds(REPO_ROOT / "crds")


@pytest.fixture
def namespace(kube: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _slug(request, 63)
    kube.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def other_namespace(kube: ControlPlane) -> Iterator[str]:
    """A second namespace, for what must stay out of ``namespace``'s reach."""
    name = f"other-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path_factory.mktemp("temporal"), headless=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def small_history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """A second dev server that suggests continue-as-new after 40 history events, for the
    tests of long runs (the interpreter's and the root orchestrator's)."""
    server = TemporalServer(
        tmp_path_factory.mktemp("temporal-small-history"),
        headless=True,
        dynamic_config={"limit.historyCount.suggestContinueAsNew": 40},
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal: TemporalServer) -> Client:
    return await connect(temporal.address, temporal.namespace)


@pytest.fixture
async def kube_client(
    kube: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[KubeClient]:
    """The operator's own Kubernetes client, pointed at the test control plane."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    client = KubeClient.from_env()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def cleanup_runs(temporal_client: Client) -> AsyncIterator[list[str]]:
    """Workflow ids to terminate after the test (when no worker runs them to the end)."""
    ids: list[str] = []
    yield ids
    for workflow_id in ids:
        with contextlib.suppress(Exception):
            await temporal_client.get_workflow_handle(workflow_id).terminate("test done")


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    return _slug(request, 80)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(moto: MotoServer, request: pytest.FixtureRequest) -> Iterator[str]:
    s3 = moto.client("s3")
    name = _slug(request, 63)
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
async def http_service() -> AsyncIterator[str]:
    """A real HTTP server on a free loopback port; yields its base URL."""
    runner = web.AppRunner(http_fixture_app.app())
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def engine(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> AsyncIterator[EngineHarness]:
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    activities = EngineActivities(
        client=temporal_client,
        definitions=DirectoryRegistry(definitions),
        secrets=SecretStore(secrets),
        router_task_queue=f"{task_queue}-router",
    )
    worker = build_worker(temporal_client, task_queue, activities, functions=TEST_FUNCTIONS)
    async with worker:
        yield EngineHarness(temporal_client, task_queue, definitions)


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, for flows that wait minutes or days."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server")),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def shop_db(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample shop functions' database (they read SHOP_DATABASE_URL)."""
    monkeypatch.setenv("SHOP_DATABASE_URL", postgres.dsn)
    return postgres.dsn
