"""Payload encryption: with TFLOW_PAYLOAD_KEY set, a run's history holds ciphertext only.

Real dev server, real worker: a run reads a `$secret` (the secrets activity's result is a
payload in the history) and returns a value made from it; the history read by a client
without the key contains neither, while a client with the key reads the result. The
`status` query's answer, whose task log carries each task's input and output, is sealed
the same way.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
from temporalio.client import Client

from tflow_devstack.temporal import TemporalServer
from tflow_workers.codec import EncryptionCodec, PayloadKeyError, codec_from_env, key_id
from tflow_workers.connection import connect
from tflow_workers.engine.activities import EngineActivities, SecretStore
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
DOCUMENT = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "sealed", "version": "1.0.0"},
    "use": {"secrets": ["api"]},
    "do": [{"sign": {"set": {"signature": '${ "signed:" + $secret.api.token }'}}}],
}


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def run_and_read_history(client: Client, reader: Client, secrets: Path) -> tuple[str, bytes]:
    """Run the document on `client`'s worker; its id and its history's raw protobuf bytes
    (payload data as stored, not base64) as `reader` fetches them."""
    queue = f"sealed-{uuid.uuid4().hex[:8]}"
    activities = EngineActivities(client=client, secrets=SecretStore(secrets))
    async with build_worker(client, queue, activities):
        handle = await client.start_workflow(
            WORKFLOW_TYPE, RunInput(document=DOCUMENT), id=queue, task_queue=queue
        )
        assert await handle.result() == {"signature": f"signed:{SECRET_VALUE}"}
    history = await reader.get_workflow_handle(handle.id).fetch_history()
    return handle.id, b"".join(event.SerializeToString() for event in history.events)


async def test_history_holds_only_ciphertext(temporal: TemporalServer, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "api").mkdir(parents=True)
    (secrets / "api" / "token").write_text(SECRET_VALUE)
    plain = await connect(temporal.address, temporal.namespace, env={})

    # Control: without a key the secret is in the history in clear.
    _, clear = await run_and_read_history(plain, plain, secrets)
    assert SECRET_VALUE.encode() in clear

    sealed = await connect(
        temporal.address, temporal.namespace, env={"TFLOW_PAYLOAD_KEY": new_key()}
    )
    run_id, stored = await run_and_read_history(sealed, plain, secrets)
    assert SECRET_VALUE.encode() not in stored
    assert b"binary/encrypted" in stored

    # A client with another key is told which key it lacks.
    other = await connect(
        temporal.address, temporal.namespace, env={"TFLOW_PAYLOAD_KEY": new_key()}
    )
    with pytest.raises(Exception, match="encrypted with key"):
        await other.get_workflow_handle(run_id).result()


async def test_the_task_log_is_sealed_in_query_answers(
    temporal: TemporalServer, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "api").mkdir(parents=True)
    (secrets / "api" / "token").write_text(SECRET_VALUE)
    sealed = await connect(
        temporal.address, temporal.namespace, env={"TFLOW_PAYLOAD_KEY": new_key()}
    )
    plain = await connect(temporal.address, temporal.namespace, env={})
    queue = f"sealed-log-{uuid.uuid4().hex[:8]}"
    activities = EngineActivities(client=sealed, secrets=SecretStore(secrets))
    async with build_worker(sealed, queue, activities):
        handle = await sealed.start_workflow(
            WORKFLOW_TYPE, RunInput(document=DOCUMENT), id=queue, task_queue=queue
        )
        await handle.result()
        # With the key: the signing task's output is in the log.
        status = await handle.query("status", result_type=RunStatus)
        (sign,) = status.log
        assert sign.output is not None
        assert SECRET_VALUE in sign.output.text
        # Without it, the answer as the server hands it over is ciphertext.
        answer = await plain.workflow_service.query_workflow(
            QueryWorkflowRequest(
                namespace=temporal.namespace,
                execution=WorkflowExecution(workflow_id=handle.id),
                query=WorkflowQuery(query_type="status"),
            )
        )
    raw = answer.query_result.SerializeToString()
    assert SECRET_VALUE.encode() not in raw
    assert b"binary/encrypted" in raw


async def test_codec_round_trip_rotation_and_plain_payloads() -> None:
    old, new = os.urandom(32), os.urandom(32)
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    (sealed,) = await EncryptionCodec(old).encode([payload])
    assert sealed.metadata["encryption-key-id"].decode() == key_id(old)
    assert b'"a"' not in sealed.data
    # Rotation: the new key is current, the old one still decrypts.
    rotated = EncryptionCodec(new, old_keys=[old])
    assert await rotated.decode([sealed]) == [payload]
    assert (await rotated.encode([payload]))[0].metadata["encryption-key-id"].decode() == key_id(
        new
    )
    # A payload that was never encrypted passes through.
    assert await EncryptionCodec(new).decode([payload]) == [payload]
    with pytest.raises(PayloadKeyError, match=key_id(old)):
        await EncryptionCodec(new).decode([sealed])


def test_key_settings_are_checked() -> None:
    assert codec_from_env({}) is None
    with pytest.raises(PayloadKeyError, match="TFLOW_PAYLOAD_KEY is not base64"):
        codec_from_env({"TFLOW_PAYLOAD_KEY": "not base64!"})
    with pytest.raises(PayloadKeyError, match="must be 32 bytes"):
        codec_from_env({"TFLOW_PAYLOAD_KEY": base64.b64encode(b"short").decode()})
    with pytest.raises(PayloadKeyError, match="TFLOW_PAYLOAD_OLD_KEYS"):
        codec_from_env({"TFLOW_PAYLOAD_KEY": new_key(), "TFLOW_PAYLOAD_OLD_KEYS": "x"})
