"""The webhook listener against a real Temporal: every content mode starts the event's
RootOrchestrator run, redelivery is a duplicate, credentials and limits are enforced,
Temporal down is a 503, the Microsoft handshakes, and the signal and status API."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from engine_harness import EngineHarness
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from tflow_devstack.process import free_port
from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.webhook import Secret, WebhookListener, WebhookSettings
from tflow_workers.cloudevents import CloudEvent, event_workflow_id
from tflow_workers.engine.model import SA_NAMESPACE, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration

CE_JSON = "application/cloudevents+json"
HookFactory = Callable[..., Awaitable[tuple[TestClient[Any, Any], WebhookListener]]]


class RecordingHandOff(HandOff):
    """The real hand-off, remembering what it started so the test can clean up."""

    started: set[str]

    async def submit(self, event: CloudEvent) -> Outcome:
        outcome = await super().submit(event)
        self.started.add(event_workflow_id(event.source, event.id))
        return outcome


@pytest.fixture
async def make_hook(temporal_client: Client, task_queue: str) -> AsyncIterator[HookFactory]:
    """Starts listeners on real sockets; terminates every run they started afterwards."""
    clients: list[TestClient[Any, Any]] = []
    started: set[str] = set()

    async def make(
        settings: WebhookSettings | None = None, client: Client | None = None
    ) -> tuple[TestClient[Any, Any], WebhookListener]:
        settings = settings or WebhookSettings()
        handoff = RecordingHandOff(client or temporal_client, task_queue, settings.namespace)
        handoff.started = started
        listener = WebhookListener(client or temporal_client, settings, handoff=handoff)
        http = TestClient(TestServer(listener.app()))
        await http.start_server()
        clients.append(http)
        return http, listener

    try:
        yield make
    finally:
        for http in clients:
            await http.close()
        for workflow_id in started:
            with contextlib.suppress(RPCError):  # already closed
                await temporal_client.get_workflow_handle(workflow_id).terminate("test done")


def ce(type_: str = "incident", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "test/webhook",
        "type": type_,
        **extra,
    }


async def post(
    listener: WebhookListener,
    http: TestClient[Any, Any],
    path: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    expect: int = 202,
) -> dict[str, Any]:
    raw = data if data is not None else json.dumps(body).encode()
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    skip = [] if content_type is not None else ["Content-Type"]
    response = await http.post(path, data=raw, headers=all_headers, skip_auto_headers=skip)
    answer = await response.json(content_type=None)
    assert response.status == expect, answer
    return dict(answer)


async def started_input(client: Client, workflow_id: str) -> dict[str, Any]:
    """The RootOrchestrator run's input, as Temporal recorded it."""
    handle = client.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payload = event.workflow_execution_started_event_attributes.input.payloads[0]
            return dict(json.loads(payload.data))
    raise AssertionError("no start event")


# ---- content modes --------------------------------------------------------------------------


async def test_structured_cloudevent_starts_its_root_run_then_redelivery_is_duplicate(
    make_hook: HookFactory, temporal_client: Client, task_queue: str
) -> None:
    http, listener = await make_hook()
    event = ce(data={"message": "disk full"})
    answer = await post(listener, http, "/events", event, content_type=CE_JSON)
    workflow_id = event_workflow_id("test/webhook", event["id"])
    assert answer == {
        "accepted": 1,
        "events": [
            {
                "id": event["id"],
                "source": "test/webhook",
                "type": "incident",
                "workflowId": workflow_id,
                "outcome": "started",
            }
        ],
    }
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.workflow_type == "RootOrchestratorWorkflow"
    assert described.task_queue == task_queue
    assert (await started_input(temporal_client, workflow_id))["event"]["data"] == {
        "message": "disk full"
    }
    again = await post(listener, http, "/events", event, content_type=CE_JSON)
    assert again["events"][0]["outcome"] == "duplicate"
    assert listener.metrics.value("tflow_listener_events_total", outcome="duplicate") == 1


async def test_binary_mode_cloudevent(make_hook: HookFactory, temporal_client: Client) -> None:
    http, listener = await make_hook()
    event_id = uuid.uuid4().hex
    answer = await post(
        listener,
        http,
        "/events",
        data=b'{"orderId": 42}',
        content_type="application/json; charset=utf-8",
        headers={
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-source": "/shop",
            "ce-type": "order.created",
            "ce-subject": "orders/42",
            "ce-tenant": "acme%20corp",  # an extension, percent-encoded
        },
    )
    [accepted] = answer["events"]
    assert accepted["workflowId"] == event_workflow_id("/shop", event_id)
    event = (await started_input(temporal_client, accepted["workflowId"]))["event"]
    assert event["data"] == {"orderId": 42}
    assert event["subject"] == "orders/42"
    assert event["tenant"] == "acme corp"
    assert event["datacontenttype"] == "application/json; charset=utf-8"

    # Non-JSON data travels base64-encoded; a missing ce-type is named.
    answer = await post(
        listener,
        http,
        "/events",
        data=b"\x00\x01binary",
        content_type="application/octet-stream",
        headers={
            "ce-specversion": "1.0",
            "ce-id": uuid.uuid4().hex,
            "ce-source": "/s",
            "ce-type": "t",
        },
    )
    event = (await started_input(temporal_client, answer["events"][0]["workflowId"]))["event"]
    assert event["data_base64"] == "AAFiaW5hcnk="
    problem = await post(
        listener,
        http,
        "/events",
        data=b"{}",
        headers={"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s"},
        expect=400,
    )
    assert problem == {
        "status": 400,
        "reason": "missing-type",
        "detail": "ce-type: missing (binary-mode CloudEvent)",
    }


async def test_plain_json_and_batches(make_hook: HookFactory, temporal_client: Client) -> None:
    http, listener = await make_hook()
    marker = uuid.uuid4().hex
    seed = {"eventType": "incident", "source": "monitoring", "message": f"failure {marker}"}
    [plain] = (await post(listener, http, "/events", seed))["events"]
    assert (plain["type"], plain["source"], plain["outcome"]) == (
        "incident",
        "monitoring",
        "started",
    )
    # The seed's generic endpoint is the same route; the same body is the same event.
    [again] = (await post(listener, http, "/webhook", seed))["events"]
    assert (again["id"], again["outcome"]) == (plain["id"], "duplicate")

    batch = [ce("a"), ce("b"), ce("c")]
    answer = await post(
        listener, http, "/events", batch, content_type="application/cloudevents-batch+json"
    )
    assert answer["accepted"] == 3
    assert [e["type"] for e in answer["events"]] == ["a", "b", "c"]
    assert {e["outcome"] for e in answer["events"]} == {"started"}
    for accepted in answer["events"]:
        await temporal_client.get_workflow_handle(accepted["workflowId"]).describe()

    mixed = [ce("x"), {"eventType": "incident", "source": "monitoring", "n": marker}]
    answer = await post(listener, http, "/events", mixed)
    assert [e["type"] for e in answer["events"]] == ["x", "incident"]

    # One bad event refuses the whole batch before anything is started.
    bad = [ce("fine"), {"source": "monitoring"}]
    problem = await post(listener, http, "/events", bad, expect=400)
    assert problem["reason"] == "missing-type"
    assert problem["detail"].startswith("[1]: missing event type")
    fine = event_workflow_id("test/webhook", bad[0]["id"])
    assert not [w async for w in temporal_client.list_workflows(f'WorkflowId = "{fine}"')]


async def test_bad_input_is_a_4xx_naming_the_problem(make_hook: HookFactory) -> None:
    http, listener = await make_hook()
    cases: list[tuple[bytes, str | None, int, str, str]] = [
        (b'{"type": ', "application/json", 400, "malformed-json", "not valid JSON"),
        (b"", "application/json", 400, "empty-body", "empty"),
        (b'{"source": "x"}', "application/json", 400, "missing-type", "missing event type"),
        (b"[1]", "application/json", 400, "invalid-event", "must be a JSON object"),
        (b'{"specversion": "1.0", "id": "1", "source": "s"}', CE_JSON, 400, "missing-type", "type"),
        (b'{"type": "t"}', "text/plain", 415, "unsupported-media-type", "text/plain"),
        (b'{"type": "t"}', None, 415, "unsupported-media-type", "no Content-Type"),
        (b'{"type": "t", "n": NaN}', "application/json", 400, "malformed-json", "NaN"),
        (b"[" * 150 + b"]" * 150, "application/json", 400, "too-deep", "deeper than 100"),
        (b'{"a": 1}', "application/cloudevents-batch+json", 400, "not-a-batch", "array"),
    ]
    for body, content_type, status, reason, words in cases:
        problem = await post(
            listener, http, "/events", data=body, content_type=content_type, expect=status
        )
        assert problem["reason"] == reason, (body, problem)
        assert words in problem["detail"], (body, problem)
    response = await http.get("/events")
    assert response.status == 405
    assert (await response.json())["reason"] == "method-not-allowed"
    assert listener.metrics.value("tflow_listener_rejections_total", reason="too-deep") == 1
    assert (
        listener.metrics.value(
            "tflow_listener_requests_total", route="/events", method="POST", status="415"
        )
        == 2
    )


# ---- credentials ----------------------------------------------------------------------------


def sign(secret: bytes, body: bytes) -> str:
    """GitHub's scheme: the body only."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def standard(
    secret: bytes, body: bytes, webhook_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for a body, signed now (or `at`)."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if at is None else at))
    signed = f"{webhook_id}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{signature}",
    }


async def test_standard_webhooks_signature(make_hook: HookFactory, tmp_path: Path) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text("s3cr3t\n")  # a trailing newline, as `kubectl create secret` leaves
    http, listener = await make_hook(WebhookSettings(hmac_secret=Secret.from_file(secret_file)))
    body = json.dumps(ce()).encode()
    good = standard(b"s3cr3t", body)
    await post(listener, http, "/events", data=body, content_type=CE_JSON, headers=good)

    async def refused(headers: dict[str, str], data: bytes = body) -> dict[str, Any]:
        return await post(
            listener, http, "/events", data=data, content_type=CE_JSON, headers=headers, expect=401
        )

    # The very same request again, inside the window: a replay.
    problem = await refused(good)
    assert problem["reason"] == "replayed"
    assert good["webhook-id"] in problem["detail"]
    # A fresh id with an old or a future timestamp.
    assert (await refused(standard(b"s3cr3t", body, at=time.time() - 301)))[
        "reason"
    ] == "stale-timestamp"
    future = await refused(standard(b"s3cr3t", body, at=time.time() + 600))
    assert "in the future" in future["detail"]
    # Unsigned, wrongly signed, the body or id changed, GitHub's header instead.
    assert (await refused({}))["reason"] == "missing-signature"
    assert (await refused(standard(b"other", body)))["reason"] == "bad-signature"
    tampered = await refused(standard(b"s3cr3t", body), data=body + b" ")
    assert "id.timestamp.body" in tampered["detail"]
    moved = {**standard(b"s3cr3t", body), "webhook-id": f"msg_{uuid.uuid4().hex}"}
    assert (await refused(moved))["reason"] == "bad-signature"
    assert (await refused({"X-Hub-Signature-256": sign(b"s3cr3t", body)}))[
        "reason"
    ] == "missing-signature"
    no_v1 = {**standard(b"s3cr3t", body), "webhook-signature": "v1a,abc"}
    assert "no v1" in (await refused(no_v1))["detail"]
    assert listener.metrics.value("tflow_listener_rejections_total", reason="replayed") == 1

    # A sender rotating its secret signs with both; either matching is enough.
    both = standard(b"s3cr3t", body := json.dumps(ce()).encode())
    old = standard(b"old-secret", body, both["webhook-id"], float(both["webhook-timestamp"]))
    both["webhook-signature"] = f"{old['webhook-signature']} {both['webhook-signature']}"
    await post(listener, http, "/events", data=body, content_type=CE_JSON, headers=both)

    # A whsec_ secret is the base64 of the key, as Standard Webhooks libraries mean it.
    key = b"\x01\x02binary key"
    secret_file.write_text("whsec_" + base64.b64encode(key).decode())
    os.utime(secret_file, ns=(1, 10**18))
    body = json.dumps(ce()).encode()
    await post(
        listener, http, "/events", data=body, content_type=CE_JSON, headers=standard(key, body)
    )


async def test_a_request_that_failed_on_our_side_may_be_retried_with_its_id(
    make_hook: HookFactory, tmp_path: Path
) -> None:
    """Standard Webhooks senders keep the webhook-id when they retry: a 503 must not turn
    the retry into a "replay"."""
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    (tmp_path / "hmac").write_text("k")
    http, _ = await make_hook(
        WebhookSettings(hmac_secret=Secret.from_file(tmp_path / "hmac")), client=dead
    )
    body = json.dumps(ce()).encode()
    headers = {"Content-Type": CE_JSON, **standard(b"k", body)}
    for _ in range(2):
        response = await http.post("/events", data=body, headers=headers)
        assert response.status == 503, await response.text()


async def test_github_signature_when_asked_for(make_hook: HookFactory, tmp_path: Path) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text("s3cr3t\n")
    http, listener = await make_hook(
        WebhookSettings(hmac_secret=Secret.from_file(secret_file), hmac_scheme="github")
    )
    body = json.dumps(ce()).encode()
    for header in ("X-Hub-Signature-256", "X-Signature-256"):
        good = {header: sign(b"s3cr3t", body)}
        await post(listener, http, "/events", data=body, content_type=CE_JSON, headers=good)

    missing = await post(listener, http, "/events", data=body, content_type=CE_JSON, expect=401)
    assert missing["reason"] == "missing-signature"
    assert "X-Hub-Signature-256" in missing["detail"]
    bad = {"X-Hub-Signature-256": sign(b"other", body)}
    problem = await post(
        listener, http, "/events", data=body, content_type=CE_JSON, headers=bad, expect=401
    )
    assert problem["reason"] == "bad-signature"
    malformed = {"X-Hub-Signature-256": "md5=abc"}
    problem = await post(
        listener, http, "/events", data=body, content_type=CE_JSON, headers=malformed, expect=401
    )
    assert "64 hex digits" in problem["detail"]
    # The signature is over the exact bytes sent.
    github = {"X-Hub-Signature-256": sign(b"s3cr3t", body + b" ")}
    await post(
        listener, http, "/events", data=body, content_type=CE_JSON, headers=github, expect=401
    )
    # A Standard Webhooks signature means nothing to a GitHub-scheme listener.
    await post(
        listener,
        http,
        "/events",
        data=body,
        content_type=CE_JSON,
        headers=standard(b"s3cr3t", body),
        expect=401,
    )

    # A rotated Secret takes effect without a restart.
    secret_file.write_text("rotated-secret-value")
    rotated = json.dumps(ce()).encode()
    headers = {"X-Hub-Signature-256": sign(b"rotated-secret-value", rotated)}
    await post(listener, http, "/events", data=rotated, content_type=CE_JSON, headers=headers)
    assert listener.metrics.value("tflow_listener_rejections_total", reason="bad-signature") == 3


async def test_bearer_token_and_both_checks(make_hook: HookFactory, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-123")
    http, listener = await make_hook(WebhookSettings(bearer_token=Secret.from_file(token_file)))
    body = ce()
    await post(listener, http, "/events", body, headers={"Authorization": "Bearer tok-123"})
    response = await http.post("/events", json=ce())
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["reason"] == "missing-token"
    for wrong in ("Bearer tok-124", "Basic dG9rLTEyMw==", "Bearer"):
        problem = await post(
            listener, http, "/events", ce(), headers={"Authorization": wrong}, expect=401
        )
        assert problem["reason"] == "bad-token"

    (tmp_path / "hmac").write_text("k")
    both_http, both = await make_hook(
        WebhookSettings(
            bearer_token=Secret.from_file(token_file),
            hmac_secret=Secret.from_file(tmp_path / "hmac"),
        )
    )
    raw = json.dumps(ce()).encode()
    only_token = {"Authorization": "Bearer tok-123"}
    problem = await post(both, both_http, "/events", data=raw, headers=only_token, expect=401)
    assert problem["reason"] == "missing-signature"
    await post(both, both_http, "/events", data=raw, headers={**only_token, **standard(b"k", raw)})


# ---- limits ---------------------------------------------------------------------------------


async def test_body_too_large_names_the_limit(make_hook: HookFactory) -> None:
    http, listener = await make_hook(WebhookSettings(max_body_bytes=200))
    big = ce(data={"text": "x" * 300})
    problem = await post(listener, http, "/events", big, content_type=CE_JSON, expect=413)
    assert problem["reason"] == "too-large"
    assert "200 bytes (maxBodyBytes)" in problem["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(10):
            yield b"x" * 50

    response = await http.post("/events", data=chunks(), headers={"Content-Type": CE_JSON})
    assert response.status == 413
    assert listener.metrics.value("tflow_listener_rejections_total", reason="too-large") == 2
    await post(listener, http, "/events", ce(), content_type=CE_JSON)


async def test_rate_limit_answers_429_with_retry_after(make_hook: HookFactory) -> None:
    http, listener = await make_hook(WebhookSettings(rate_limit=2))
    statuses = []
    for _ in range(4):
        response = await http.post("/events", json=ce())
        statuses.append(response.status)
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["reason"] == "rate-limited"
    assert statuses[:2] == [202, 202]
    assert 429 in statuses[2:]
    # Probes are never rate limited.
    assert (await http.get("/healthz")).status == 200
    assert listener.metrics.value("tflow_listener_rejections_total", reason="rate-limited") >= 1


# ---- Temporal down --------------------------------------------------------------------------


async def test_temporal_down_is_503_with_retry_after_and_not_ready(
    make_hook: HookFactory, tmp_path: Path
) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    token = tmp_path / "token"
    token.write_text(TOKEN)
    settings = WebhookSettings(
        retry_after=7, bearer_token=Secret.from_file(token), run_control=True, namespace=TEAM
    )
    http, listener = await make_hook(settings, client=dead)
    response = await http.post("/events", json=[ce(), ce()], headers=AUTH)
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    problem = await response.json()
    assert problem["reason"] == "temporal-unavailable"
    assert "did not accept 2 of 2" in problem["detail"]
    assert listener.metrics.value("tflow_listener_events_total", outcome="unavailable") == 2
    readyz = await http.get("/readyz")
    assert readyz.status == 503
    assert "Retry-After" in readyz.headers
    for path in ("/runs/some-run", "/runs/some-run/signal/go"):
        method = http.get if "signal" not in path else http.post
        response = await method(path, headers=AUTH)
        assert response.status == 503, path
    live_http, _ = await make_hook()
    assert (await live_http.get("/readyz")).status == 200


# ---- Microsoft handshakes and deliveries ----------------------------------------------------


async def test_sharepoint_validation_and_notifications(
    make_hook: HookFactory, temporal_client: Client, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("client-state-secret")
    http, listener = await make_hook(
        WebhookSettings(bearer_token=Secret.from_file(tmp_path / "token"))
    )
    response = await http.post("/webhook/sharepoint?validationToken=a%2Bb%20c")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "a+b c"

    def notification(state: str) -> dict[str, Any]:
        return {
            "value": [
                {
                    "subscriptionId": "91779246-afe9-4525-b122-6c199ae89211",
                    "clientState": state,
                    "expirationDateTime": "2025-04-01T16:17:57.0000000Z",
                    "resource": "b9f6f714-9df8-470b-b22e-653855e1c181",
                    "tenantId": "00000000-0000-ffff-0000-000000000000",
                    "siteUrl": "/sites/team-docs",
                    "webId": "5a6a4b1e-9a24-4e42-b1c4-0e2f6b2a3d11",
                }
            ]
        }

    # SharePoint sends no Authorization header: the clientState is the credential.
    answer = await post(listener, http, "/webhook/sharepoint", notification("client-state-secret"))
    [accepted] = answer["events"]
    assert (accepted["type"], accepted["source"]) == ("document-changed", "sharepoint")
    event = (await started_input(temporal_client, accepted["workflowId"]))["event"]
    assert event["data"]["resource"] == "b9f6f714-9df8-470b-b22e-653855e1c181"
    # The same body again is another change, not a duplicate.
    again = await post(listener, http, "/webhook/sharepoint", notification("client-state-secret"))
    assert again["events"][0]["outcome"] == "started"
    problem = await post(listener, http, "/webhook/sharepoint", notification("nope"), expect=401)
    assert problem["reason"] == "bad-client-state"


async def test_eventgrid_handshakes_and_both_schemas(
    make_hook: HookFactory, temporal_client: Client, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("eg-token")
    http, listener = await make_hook(
        WebhookSettings(bearer_token=Secret.from_file(tmp_path / "token"), rate_limit=50)
    )
    # The subscription validation handshake is answered without credentials: it starts nothing.
    validation = [
        {
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
            "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/"
            "storageAccounts/teamdocs",
            "subject": "",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2025-03-04T10:15:30.1234567Z",
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]
    response = await http.post(
        "/webhook/azure-eventgrid",
        json=validation,
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert response.status == 200
    assert await response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}

    # CloudEvents webhook abuse protection (the CloudEvents schema's handshake).
    response = await http.options(
        "/webhook/azure-eventgrid", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert response.status == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert response.headers["WebHook-Allowed-Rate"] == "3000"  # per minute

    auth = {"Authorization": "Bearer eg-token"}
    blob_id = uuid.uuid4().hex
    blob = {
        "topic": validation[0]["topic"],
        "subject": "/blobServices/default/containers/inbox/blobs/reports/q1.pdf",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": blob_id,
        "data": {
            "api": "PutBlob",
            "contentType": "application/pdf",
            "contentLength": 524288,
            "url": "https://teamdocs.blob.core.windows.net/inbox/reports/q1.pdf",
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2025-03-04T10:15:30.1234567Z",
    }
    unauthenticated = await post(listener, http, "/webhook/azure-eventgrid", [blob], expect=401)
    assert unauthenticated["reason"] == "missing-token"
    answer = await post(listener, http, "/webhook/azure-eventgrid", [blob], headers=auth)
    [accepted] = answer["events"]
    assert accepted["workflowId"] == event_workflow_id("azure-blob", blob_id)
    event = (await started_input(temporal_client, accepted["workflowId"]))["event"]
    assert event["type"] == "document-added"
    assert event["data"]["documentUri"] == "azblob://inbox/reports/q1.pdf"

    cloud = ce("order.created", source="/shop")
    answer = await post(
        listener, http, "/webhook/azure-eventgrid", cloud, content_type=CE_JSON, headers=auth
    )
    assert answer["events"][0]["source"] == "/shop"
    problem = await post(
        listener,
        http,
        "/webhook/azure-eventgrid",
        data=b"x",
        content_type="text/plain",
        headers=auth,
        expect=415,
    )
    assert problem["reason"] == "unsupported-media-type"


# ---- runs: signal and status ----------------------------------------------------------------

TEAM = "team-a"
TOKEN = "run-control-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def run_control(tmp_path: Path, namespace: str = TEAM) -> WebhookSettings:
    token_file = tmp_path / f"run-control-{uuid.uuid4().hex}"
    token_file.write_text(TOKEN)
    return WebhookSettings(
        bearer_token=Secret.from_file(token_file), run_control=True, namespace=namespace
    )


APPROVAL = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "approval", "version": "1.0.0"},
    "do": [
        {"awaitApproval": {"listen": {"to": {"one": {"with": {"type": "approve"}}}}}},
        {"done": {"set": {"approvedBy": "${ .[0].by }"}}},
    ],
}


async def start_definition_run(engine: EngineHarness, namespace: str) -> WorkflowHandle[Any, Any]:
    """A run of WorkflowDefinition `<namespace>/approval`, started the way every starter does."""
    run = RunInput(
        document=APPROVAL, definition=DefinitionRef(namespace=namespace, name="approval")
    )
    return await start_run(
        engine.client, run, engine.task_queue, execution_timeout=timedelta(seconds=60)
    )


async def test_signal_and_status_of_a_flow_run(
    make_hook: HookFactory, engine: EngineHarness, tmp_path: Path
) -> None:
    http, _ = await make_hook(run_control(tmp_path))
    handle = await start_definition_run(engine, TEAM)
    for _ in range(50):
        response = await http.get(f"/runs/{handle.id}", headers=AUTH)
        assert response.status == 200
        run = await response.json()
        if run["status"]["current_task"] == "awaitApproval":
            break
    assert run["workflowType"] == "ServerlessWorkflow"
    assert run["execution"] == "RUNNING"
    assert run["status"]["phase"] in ("running", "waiting")
    assert [entry["name"] for entry in run["status"]["log"]] == ["awaitApproval"]

    response = await http.post(
        f"/runs/{handle.id}/signal/approve", json={"by": "ops"}, headers=AUTH
    )
    assert response.status == 202
    assert await response.json() == {"workflowId": handle.id, "signal": "approve"}
    assert await handle.result() == {"approvedBy": "ops"}

    run = await (await http.get(f"/runs/{handle.id}", headers=AUTH)).json()
    assert run["execution"] == "COMPLETED"
    assert run["status"]["phase"] == "completed"
    assert run["status"]["output"] == {"approvedBy": "ops"}
    assert [e["outcome"] for e in run["status"]["log"]] == ["completed", "completed"]

    response = await http.post(f"/runs/{handle.id}/signal/approve", json={}, headers=AUTH)
    assert response.status == 409  # closed: nothing to signal
    assert (await response.json())["reason"] == "run-closed"
    response = await http.post(f"/runs/{handle.id}/signal/approve", data=b"x", headers=AUTH)
    assert response.status == 415


async def test_runs_of_other_namespaces_and_unknown_runs_get_the_same_403(
    make_hook: HookFactory, engine: EngineHarness, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    http, listener = await make_hook(run_control(tmp_path))
    theirs = await start_definition_run(engine, "team-b")
    cleanup_runs.append(theirs.id)
    # An ad-hoc run (no WorkflowDefinition) belongs to no namespace, whatever its id says.
    adhoc = await engine.start(APPROVAL, id=f"{TEAM}-adhoc-{uuid.uuid4().hex}")
    cleanup_runs.append(adhoc.id)
    unknown = f"{TEAM}-approval-{uuid.uuid4().hex}"

    answers = []
    for workflow_id in (theirs.id, adhoc.id, unknown):
        for method, path in (
            ("GET", f"/runs/{workflow_id}"),
            ("POST", f"/runs/{workflow_id}/signal/approve"),
        ):
            response = await http.request(method, path, json={"by": "mallory"}, headers=AUTH)
            answer = await response.json()
            assert response.status == 403, (path, answer)
            assert answer["reason"] == "forbidden-run"
            # The detail is the same sentence whether or not the run exists.
            answers.append(answer["detail"].replace(workflow_id, "<id>"))
    assert len(set(answers)) == 1, answers
    assert "team-a" in answers[0]
    assert listener.metrics.value("tflow_listener_rejections_total", reason="forbidden-run") == 6
    # Nothing reached the other namespace's run: it still waits for its approval.
    status = await theirs.query("status")
    assert status["phase"] in ("running", "waiting")

    # The other namespace's own listener reaches it.
    their_http, _ = await make_hook(run_control(tmp_path, "team-b"))
    response = await their_http.post(
        f"/runs/{theirs.id}/signal/approve", json={"by": "bob"}, headers=AUTH
    )
    assert response.status == 202
    assert await theirs.result() == {"approvedBy": "bob"}


async def test_run_control_is_off_by_default_and_needs_credentials_when_on(
    make_hook: HookFactory, engine: EngineHarness, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    handle = await start_definition_run(engine, TEAM)
    cleanup_runs.append(handle.id)
    off_http, _ = await make_hook(WebhookSettings(namespace=TEAM))
    for method, path in (("GET", f"/runs/{handle.id}"), ("POST", f"/runs/{handle.id}/signal/x")):
        response = await off_http.request(method, path, headers=AUTH)
        assert response.status == 404
        answer = await response.json()
        assert answer["reason"] == "run-control-disabled"
        assert "spec.webhook.runControl.enabled" in answer["detail"]

    http, _ = await make_hook(run_control(tmp_path))
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for method, path in (
            ("GET", f"/runs/{handle.id}"),
            ("POST", f"/runs/{handle.id}/signal/x"),
        ):
            response = await http.request(method, path, headers=headers)
            assert response.status == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A wrong token on an unknown run is still 401: credentials are checked first.
    response = await http.get(f"/runs/unknown-{uuid.uuid4().hex}")
    assert response.status == 401

    with pytest.raises(ValueError, match="needs authentication"):
        WebhookSettings(run_control=True, namespace=TEAM)
    token = tmp_path / "t"
    token.write_text("x")
    with pytest.raises(ValueError, match="Kubernetes namespace"):
        WebhookSettings(bearer_token=Secret.from_file(token), run_control=True)


async def test_status_of_a_root_run_has_no_flow_status(
    make_hook: HookFactory, temporal_client: Client, tmp_path: Path
) -> None:
    http, listener = await make_hook(run_control(tmp_path))
    [accepted] = (await post(listener, http, "/events", ce(), headers=AUTH))["events"]
    described = await temporal_client.get_workflow_handle(accepted["workflowId"]).describe()
    assert described.typed_search_attributes.get(SA_NAMESPACE) == TEAM
    run = await (await http.get(f"/runs/{accepted['workflowId']}", headers=AUTH)).json()
    assert run["workflowType"] == "RootOrchestratorWorkflow"
    assert run["status"] is None
    # The event's run belongs to the namespace of the listener that received it.
    other_http, _ = await make_hook(run_control(tmp_path, "team-b"))
    response = await other_http.get(f"/runs/{accepted['workflowId']}", headers=AUTH)
    assert response.status == 403


# ---- metrics and the API document -----------------------------------------------------------


async def test_metrics_and_openapi(make_hook: HookFactory) -> None:
    http, listener = await make_hook()
    await post(listener, http, "/events", ce())
    await post(listener, http, "/events", data=b"{", expect=400)
    text = await (await http.get("/metrics")).text()
    assert (
        'tflow_listener_requests_total{listener="webhook",method="POST",route="/events",'
        'status="202"} 1.0'
    ) in text
    assert 'tflow_listener_events_total{listener="webhook",outcome="started"} 1.0' in text
    assert 'tflow_listener_rejections_total{listener="webhook",reason="malformed-json"} 1.0' in text
    assert 'tflow_listener_handoff_seconds_count{listener="webhook"} 1.0' in text

    document = await (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/events",
        "/webhook/sharepoint",
        "/webhook/azure-eventgrid",
        "/runs/{workflowId}",
        "/runs/{workflowId}/signal/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    text = json.dumps(document)
    for ref in {r.split('"')[0] for r in text.split('"$ref": "')[1:]}:
        name = ref.removeprefix("#/components/schemas/")
        assert name in document["components"]["schemas"], ref
