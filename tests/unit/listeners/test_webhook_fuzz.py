"""Fuzzing the webhook listener's HTTP surface: whatever the body, headers, content type,
method and path, it answers with no 5xx but the intended 503 (Temporal did not accept),
and every 4xx carries a JSON body naming the problem.

Temporal here is a stand-in that accepts, reports duplicates or refuses by the event's id,
so that every outcome is reached; the real hand-off is covered by the integration tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.process import free_port
from tflow_listeners.handoff import Outcome
from tflow_listeners.webhook import Secret, WebhookListener, WebhookSettings
from tflow_workers.cloudevents import CloudEvent
from tflow_workers.connection import TemporalUnavailable

SECRET = b"fuzz-secret"
TOKEN = b"fuzz-token"


class StandIn:
    """Accepts, reports duplicates, or is unavailable, decided by the event's id."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    async def submit(self, event: CloudEvent) -> Outcome:
        if hashlib.sha256(event.id.encode("utf-8", "replace")).digest()[0] % 5 == 0:
            raise TemporalUnavailable("stand-in: down for this one")
        key = (event.source, event.id)
        if key in self.seen:
            return "duplicate"
        self.seen.add(key)
        return "started"


@pytest.fixture(scope="module")
async def hooks() -> AsyncIterator[dict[bool, TestClient[Any, Any]]]:
    """An open listener and one that wants a signature and a bearer token; both with a
    Temporal client to a dead port (the runs API answers 503) and a stand-in hand-off."""
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    clients: dict[bool, TestClient[Any, Any]] = {}
    for secured in (False, True):
        config = WebhookSettings(max_body_bytes=4096)
        if secured:
            config = WebhookSettings(
                max_body_bytes=4096,
                hmac_secret=Secret(SECRET),
                bearer_token=Secret(TOKEN),
                run_control=True,
                namespace="fuzz",
            )
        listener = WebhookListener(dead, config, handoff=StandIn())
        clients[secured] = TestClient(TestServer(listener.app()))
        await clients[secured].start_server()
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.close()


# ---- strategies -----------------------------------------------------------------------------

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
attribute = st.sampled_from(
    [
        "specversion",
        "id",
        "source",
        "type",
        "eventType",
        "subject",
        "time",
        "data",
        "Records",
        "value",
        "eventTime",
        "topic",
        "dataVersion",
        "detail-type",
        "detail",
        "Type",
        "Message",
        "TopicArn",
        "Event",
        "data_base64",
        "datacontenttype",
        "validationCode",
    ]
)
event_like = st.dictionaries(
    attribute,
    st.sampled_from(
        [
            "1.0",
            "0.3",
            "",
            "incident",
            "aws:s3",
            "s3:TestEvent",
            "Notification",
            "Microsoft.Storage.BlobCreated",
            "Microsoft.EventGrid.SubscriptionValidationEvent",
        ]
    )
    | json_values,
    max_size=8,
)
names = st.text(min_size=1, max_size=12)
valid_events = st.one_of(
    st.fixed_dictionaries(
        {"specversion": st.just("1.0"), "id": names, "source": names, "type": names},
        optional={"data": json_values, "subject": st.text(), "ext1": json_scalars},
    ),
    st.fixed_dictionaries(
        {"eventType": names, "source": names}, optional={"message": st.text(), "id": json_scalars}
    ),
    st.fixed_dictionaries(
        {
            "id": names,
            "eventType": st.sampled_from(["incident", "Microsoft.Storage.BlobCreated"]),
            "subject": st.sampled_from(["", "/blobServices/default/containers/c/blobs/b.pdf"]),
            "eventTime": st.just("2025-03-04T10:15:30Z"),
            "dataVersion": st.just("1"),
            "topic": st.text(max_size=10),
            "data": json_values,
        }
    ),
)
sharepoint = st.fixed_dictionaries(
    {
        "value": st.lists(
            st.fixed_dictionaries(
                {"subscriptionId": names, "resource": names},
                optional={"clientState": st.sampled_from(["fuzz-token", "other"])},
            ),
            max_size=3,
        )
    }
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
    st.lists(event_like, max_size=4).map(lambda v: json.dumps(v).encode()),
    valid_events.map(lambda v: json.dumps(v).encode()),
    valid_events.map(lambda v: json.dumps(v).encode()),
    st.lists(valid_events, max_size=4).map(lambda v: json.dumps(v).encode()),
    sharepoint.map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 120 + b"]" * 120),
    st.just(b'{"type": "t", "x": "\\ud800"}'),
    st.integers(4000, 5000).map(lambda n: b"x" * n),
)
content_types = st.one_of(
    st.just("application/json"),
    st.just("application/cloudevents+json"),
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/json; charset=utf-8",
            "application/json; charset=nonsense",
            "text/plain",
            "text/plain; charset=nonsense",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/vnd.acme+json",
            ";;",
        ]
    ),
    header_text,
)
known_paths = st.sampled_from(
    [
        "/events",
        "/webhook",
        "/webhook/sharepoint",
        "/webhook/sharepoint?validationToken=abc",
        "/webhook/azure-eventgrid",
        "/runs/some-run",
        "/runs/some-run/signal/approve",
        "/runs/%F0%9F%98%80/signal/%00",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/nope",
    ]
)
paths = st.one_of(
    st.just("/events"),
    known_paths,
    known_paths,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz/%?=&-_.0123456789", max_size=30).map(
        lambda p: "/" + p.lstrip("/")
    ),
)
header_names = st.sampled_from(
    [
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-subject",
        "ce-Tenant",
        "ce-data",
        "ce-bad-name",
        "X-Signature-256",
        "X-Hub-Signature-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "Authorization",
        "WebHook-Request-Origin",
        "aeg-event-type",
    ]
)
headers = st.dictionaries(
    header_names, header_text | st.sampled_from(["1.0", "Bearer x"]), max_size=6
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    secured = draw(st.booleans())
    body = draw(bodies)
    chosen = draw(headers)
    if secured and draw(st.booleans()):  # a correctly authenticated request, often
        webhook_id = f"msg_{uuid.uuid4().hex}"  # fresh: a repeated id is a (refused) replay
        stamp = str(int(time.time()))
        digest = hmac.new(SECRET, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
        chosen["webhook-id"] = webhook_id
        chosen["webhook-timestamp"] = stamp
        chosen["webhook-signature"] = "v1," + base64.b64encode(digest.digest()).decode()
        chosen["Authorization"] = "Bearer " + TOKEN.decode()
    return {
        "secured": secured,
        "method": draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "OPTIONS", "DELETE"])),
        "path": draw(paths),
        "content_type": draw(content_types),
        "headers": chosen,
        "body": body,
    }


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=requests())
async def test_no_unintended_5xx_and_every_4xx_names_its_problem(
    hooks: dict[bool, TestClient[Any, Any]], request: dict[str, Any]
) -> None:
    client = hooks[request["secured"]]
    sent = dict(request["headers"])
    if request["content_type"] is not None:
        sent["Content-Type"] = request["content_type"]
    response = await client.request(
        request["method"],
        request["path"],
        data=request["body"],
        headers=sent,
        skip_auto_headers=["Content-Type"] if request["content_type"] is None else [],
    )
    raw = await response.read()
    status = response.status
    event(f"status {status}")  # `--hypothesis-show-statistics` shows what was reached
    if status >= 500:
        assert status == 503, (status, raw)
        assert json.loads(raw)["reason"] == "temporal-unavailable", raw
        assert "Retry-After" in response.headers
    elif status >= 400:
        problem = json.loads(raw)
        assert problem["status"] == status, problem
        assert isinstance(problem["reason"], str), problem
        assert problem["reason"], problem
        assert isinstance(problem["detail"], str), problem
        assert problem["detail"], problem
        if status == 429:
            assert "Retry-After" in response.headers
    elif status == 202:
        answer = json.loads(raw)
        assert answer["accepted"] == len(answer["events"])
        assert all(e["outcome"] in ("started", "duplicate") for e in answer["events"])
