"""Fixtures for the document stores: Azurite's blob service (started once per session),
a fresh container per test, the environment each adapter reads, and a worker serving the
built-in document functions. Every store test runs against both real servers through one
`backend` fixture where it can."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_harness import EngineHarness
from store_backends import Backend, azure_backend, container_name, s3_backend
from temporalio.client import Client

from tflow_devstack.azurite import AzuriteServer
from tflow_devstack.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.stores.azure_blob import CONNECTION_STRING_ENV
from tflow_workers.worker import build_worker

# Variables that would point boto3 elsewhere than moto if the shell running pytest set them.
_FOREIGN_AWS = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = AzuriteServer(tmp_path_factory.mktemp("azurite")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def blob_container(azurite: AzuriteServer, request: pytest.FixtureRequest) -> Iterator[str]:
    service = azurite.service_client()
    name = container_name(request)
    service.create_container(name)
    try:
        yield name
    finally:
        service.delete_container(name)


@pytest.fixture
def s3_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The environment the S3 adapter reads, pointing at moto."""
    for key in _FOREIGN_AWS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return moto


@pytest.fixture
def azure_env(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> AzuriteServer:
    """The environment the Azure Blob adapter reads, pointing at Azurite."""
    monkeypatch.setenv(CONNECTION_STRING_ENV, azurite.connection_string)
    return azurite


@pytest.fixture(params=["s3", "azblob"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The same contract, once against moto's S3 and once against Azurite's blob service."""
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("s3_env")
        return s3_backend(moto, request.getfixturevalue("bucket"))
    azurite: AzuriteServer = request.getfixturevalue("azure_env")
    return azure_backend(azurite, request.getfixturevalue("blob_container"))


@pytest.fixture
async def store_engine(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> AsyncIterator[EngineHarness]:
    """A worker serving the interpreter and the built-in document functions."""
    activities = EngineActivities(client=temporal_client, router_task_queue=f"{task_queue}-router")
    # Every worker serves the built-in document functions.
    worker = build_worker(temporal_client, task_queue, activities)
    async with worker:
        yield EngineHarness(temporal_client, task_queue, tmp_path)
