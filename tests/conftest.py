"""Session fixtures: every real server starts once per pytest session, on free loopback
ports, only when a test asks for it; tests are isolated by Kubernetes namespace,
Temporal task queue and S3 bucket."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.moto import MotoServer
from tflow_devstack.postgres import PostgresServer
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT


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


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path_factory.mktemp("temporal"), headless=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal: TemporalServer) -> Client:
    return await Client.connect(temporal.address, namespace=temporal.namespace)


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
