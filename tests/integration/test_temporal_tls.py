"""Connecting to a Temporal that demands TLS, mutual TLS or an API key.

Every Temporal Flow process connects through `tflow_workers.connection`, which takes TLS
and credentials from Temporal's standard client environment configuration (TEMPORAL_*).
The dev server speaks plain gRPC only, so these tests put a real TLS endpoint in front of
it (tests/support/tls_relay.py, with a throw-away CA) and make real handshakes; the
Temporal behind it is the real dev server. API keys are not checked by the dev server,
so for them only the client side is shown (TLS on, key passed).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from tls_relay import TestPki, TlsRelay

from tflow_devstack.temporal import TemporalServer
from tflow_workers.connection import ConnectionConfigError, connect, connect_options
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

SERVER_NAME = "temporal.tflow.test"
DOCUMENT = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "tls", "version": "1.0.0"},
    "do": [{"greet": {"set": {"greeting": '${ "hello " + .name }'}}}],
}


async def _run_a_document(client: Client) -> object:
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, queue):
        return await client.execute_workflow(
            WORKFLOW_TYPE,
            RunInput(document=DOCUMENT, input={"name": "tls"}),
            id=f"tls-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )


@pytest.fixture
async def mtls(temporal: TemporalServer, tmp_path: Path) -> AsyncIterator[tuple[TestPki, TlsRelay]]:
    """A CA and a relay that demands a client certificate it signed."""
    pki = TestPki(tmp_path)
    async with TlsRelay(
        temporal.address, pki.issue(SERVER_NAME, server=True), client_ca=pki.ca
    ) as relay:
        yield pki, relay


async def test_mutual_tls_with_certificate_files(
    temporal: TemporalServer, mtls: tuple[TestPki, TlsRelay]
) -> None:
    pki, relay = mtls
    client_cert = pki.issue("worker", server=False)
    env = {
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(client_cert.cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(client_cert.key),
    }
    client = await connect(relay.address, temporal.namespace, env=env)
    # A worker and a run, both through the mutual-TLS endpoint.
    assert await _run_a_document(client) == {"greeting": "hello tls"}

    # The relay refuses a client without a certificate, and plain text.
    without_cert = {k: v for k, v in env.items() if "CLIENT" not in k}
    with pytest.raises(RuntimeError):
        await connect(relay.address, temporal.namespace, env=without_cert)
    with pytest.raises(RuntimeError):
        await connect(relay.address, temporal.namespace, env={})


async def test_tls_from_secret_data_in_the_environment(
    temporal: TemporalServer, mtls: tuple[TestPki, TlsRelay], tmp_path: Path
) -> None:
    """The _DATA forms: what `spec.workers.env[].valueFrom.secretKeyRef` gives a worker."""
    pki, relay = mtls
    client_cert = pki.issue("worker", server=False)
    env = {
        "TEMPORAL_TLS_SERVER_CA_CERT_DATA": pki.ca.read_text(),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_CLIENT_CERT_DATA": client_cert.cert.read_text(),
        "TEMPORAL_TLS_CLIENT_KEY_DATA": client_cert.key.read_text(),
    }
    client = await connect(relay.address, temporal.namespace, env=env)
    count = await client.count_workflows()
    assert count.count >= 0
    # A server certificate from another CA is not trusted.
    other = TestPki(tmp_path / "other")
    with pytest.raises(RuntimeError):
        await connect(
            relay.address,
            temporal.namespace,
            env={**env, "TEMPORAL_TLS_SERVER_CA_CERT_DATA": other.ca.read_text()},
        )


def test_an_api_key_turns_tls_on_and_is_passed() -> None:
    options = connect_options({"TEMPORAL_API_KEY": "secret-key"})
    assert options["api_key"] == "secret-key"
    assert options["tls"] is True
    # Nothing configured: plain text, as against the dev server.
    assert connect_options({}) == {}


def test_an_unreadable_certificate_is_named_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(ConnectionConfigError) as err:
        connect_options({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(missing)})
    assert "TEMPORAL_" in str(err.value)
    assert "ca.pem" in str(err.value)
