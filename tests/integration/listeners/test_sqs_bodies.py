"""What the SQS listener makes of message bodies and flags, without any server."""

from __future__ import annotations

import argparse
import json

import pytest

from tflow_listeners.metrics import ListenerMetrics
from tflow_listeners.queue import QueueCounters
from tflow_listeners.settlement import PoisonMessage
from tflow_listeners.sqs import add_arguments, events_from_body, settings_from_args


def s3_record(key: str) -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2025-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": "docs"}, "object": {"key": key, "sequencer": "01"}},
    }


def test_s3_notification_gives_one_event_per_record() -> None:
    body = json.dumps({"Records": [s3_record("a+b.pdf"), s3_record("c.pdf")]})
    events = events_from_body(body)
    assert [(e.source, e.type, e.data["key"]) for e in events] == [
        ("s3", "document-added", "a b.pdf"),
        ("s3", "document-added", "c.pdf"),
    ]


def test_sns_wrapped_notification_is_unwrapped() -> None:
    inner = json.dumps({"Records": [s3_record("x.pdf")]})
    body = json.dumps({"Type": "Notification", "TopicArn": "arn:t", "Message": inner})
    [event] = events_from_body(body)
    assert event.data["key"] == "x.pdf"


def test_nothing_to_route() -> None:
    assert events_from_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    confirmation = {"Type": "SubscriptionConfirmation", "TopicArn": "arn:t", "Token": "t"}
    assert events_from_body(json.dumps(confirmation)) == []


def test_plain_json_defaults_its_source() -> None:
    [event] = events_from_body(json.dumps({"eventType": "incident", "id": "7"}), "orders-queue")
    assert (event.id, event.source, event.type) == ("7", "orders-queue", "incident")
    # The same body without an id is the same event every time it is delivered.
    body = json.dumps({"eventType": "incident", "message": "disk full"})
    assert events_from_body(body)[0].id == events_from_body(body)[0].id


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        ("not json", "malformed-json", "body is not JSON"),
        ("[1, 2]", "not-an-event", "must be a JSON object"),
        ('{"source": "x"}', "not-an-event", "missing event type"),
        ('{"Records": [{"s3": {}}]}', "not-an-event", "Records[0]"),
        (
            json.dumps({"Type": "Notification", "TopicArn": "a", "Message": "{"}),
            "not-an-event",
            "SNS message is not JSON",
        ),
    ],
)
def test_poison_bodies(body: str, kind: str, reason: str) -> None:
    with pytest.raises(PoisonMessage) as raised:
        events_from_body(body)
    assert raised.value.kind == kind
    assert reason in raised.value.reason


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFLOW_LISTENER_QUEUE_URL", "http://sqs.local/1/q")
    monkeypatch.setenv("TFLOW_LISTENER_VISIBILITY_TIMEOUT_SECONDS", "90")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = settings_from_args(parse("--max-messages", "5"))
    assert settings.queue_url == "http://sqs.local/1/q"
    assert settings.visibility_timeout_seconds == 90
    assert settings.max_messages == 5
    assert settings.region == "eu-west-1"
    assert settings.heartbeat_interval == 30


def test_bad_flags_are_named() -> None:
    with pytest.raises(ValueError, match="--wait-time-seconds") as raised:
        settings_from_args(parse("--queue-url", "http://q", "--wait-time-seconds", "30"))
    assert "--max-messages" not in str(raised.value)
    with pytest.raises(ValueError, match="--max-messages must be within 1-10"):
        settings_from_args(parse("--queue-url", "http://q", "--max-messages", "11"))


def test_counters_are_served_with_the_listener_metrics() -> None:
    metrics = ListenerMetrics("sqs")
    counters = QueueCounters(received=3, acknowledged=2, in_flight=1)
    metrics.registry.register(counters.collector("sqs"))
    text = metrics.render().decode()
    assert 'tflow_listener_queue_received_total{listener="sqs"} 3.0' in text
    assert 'tflow_listener_queue_acknowledged_total{listener="sqs"} 2.0' in text
    assert 'tflow_listener_queue_in_flight{listener="sqs"} 1.0' in text
    counters.acknowledged += 1
    assert metrics.value("tflow_listener_queue_acknowledged_total") == 3.0
