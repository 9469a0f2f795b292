"""The UI's remote codec endpoint (`tflow ui --codec`) on the dev server: a run started by
a client with a payload key has ciphertext in its history; the endpoint turns that very
payload back into the JSON the run was started with, answers the CORS preflight Temporal's
Web UI sends, and refuses another Temporal namespace. The run's page decodes it too."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType

from tflow_cli.ui.server import UiApp, UiSettings
from tflow_devstack.temporal import TemporalServer
from tflow_workers.connection import connect
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput

pytestmark = pytest.mark.integration

TEMPORAL_UI = "http://127.0.0.1:8233/some/path"
DOCUMENT = {
    "document": {"dsl": "1.0.0", "namespace": "t", "name": "sealed", "version": "1.0.0"},
    "do": [{"hold": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}}],
}


@pytest.fixture
async def sealed_run(
    temporal: TemporalServer, task_queue: str
) -> AsyncIterator[tuple[Any, dict[str, Any], str]]:
    """A run started with a payload key (no worker), and the raw payload of its input."""
    key = base64.b64encode(os.urandom(32)).decode()
    sealed = await connect(temporal.address, temporal.namespace, env={"TFLOW_PAYLOAD_KEY": key})
    plain = await connect(temporal.address, temporal.namespace, env={})
    handle = await sealed.start_workflow(
        WORKFLOW_TYPE,
        RunInput(document=DOCUMENT, input={"card": "4111-secret"}),
        id=f"sealed-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    raw = None
    async for event in plain.get_workflow_handle(handle.id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            raw = event.workflow_execution_started_event_attributes.input
            break
    assert raw is not None
    assert b"4111-secret" not in raw.SerializeToString()
    try:
        yield sealed, MessageToDict(raw), handle.id
    finally:
        await handle.terminate("test done")


async def _client(app: UiApp) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(app.app()))
    await client.start_server()
    return client


async def test_the_codec_decodes_what_the_history_holds(
    sealed_run: tuple[Any, dict[str, Any], str],
) -> None:
    sealed, body, run_id = sealed_run
    # Who may call the UI is test_ui_access.py's; here the codec only.
    settings = UiSettings(auth="none", codec=True, temporal_ui=TEMPORAL_UI, namespaces=("*",))
    client = await _client(UiApp(sealed, settings))
    try:
        headers = {"X-Namespace": sealed.namespace}
        response = await client.post("/codec/decode", json=body, headers=headers)
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8233"
        (payload,) = (await response.json())["payloads"]
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
        assert b"4111-secret" in base64.b64decode(payload["data"])

        # Encoding gives ciphertext that decodes back to the same payload.
        encoded = await client.post("/codec/encode", json={"payloads": [payload]})
        (sealed_again,) = (await encoded.json())["payloads"]
        assert base64.b64decode(sealed_again["metadata"]["encoding"]) == b"binary/encrypted"
        round_trip = await client.post("/codec/decode", json={"payloads": [sealed_again]})
        assert (await round_trip.json())["payloads"] == [payload]

        preflight = await client.options(
            "/codec/decode",
            headers={"Origin": "http://127.0.0.1:8233", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status == 204
        assert "X-Namespace" in preflight.headers["Access-Control-Allow-Headers"]

        other = await client.post("/codec/decode", json=body, headers={"X-Namespace": "prod"})
        assert other.status == 403
        garbage = await client.post("/codec/decode", json={"payloads": "no"})
        assert garbage.status == 400

        # The UI's own page reads the run through the same key.
        run_id = (await sealed.list_workflows('WorkflowId STARTS_WITH "sealed-"').__anext__()).id
        view = await (await client.get("/api/run", params={"id": run_id})).json()
        assert view["document"] == DOCUMENT
    finally:
        await client.close()


async def test_the_codec_is_off_unless_asked(
    sealed_run: tuple[Any, dict[str, Any], str],
) -> None:
    sealed, body, _ = sealed_run
    client = await _client(UiApp(sealed, UiSettings(auth="none")))
    try:
        response = await client.post("/codec/decode", json=body)
        assert response.status == 404
    finally:
        await client.close()
