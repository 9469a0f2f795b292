"""Events in: structured CloudEvents and the seed's plain JSON become one model."""

from __future__ import annotations

import pytest

from tflow_workers.cloudevents import EventFormatError, event_workflow_id, from_plain_json


def test_seed_plain_json_becomes_a_cloudevent() -> None:
    body = {"eventType": "incident", "source": "monitoring", "message": "Critical failure"}
    event = from_plain_json(body)
    assert (event.type, event.source, event.data) == (
        "incident",
        "monitoring",
        {"message": "Critical failure"},
    )
    # No id in the body: the same body is the same event.
    assert event.id == from_plain_json(dict(body)).id
    assert event.id != from_plain_json({**body, "message": "other"}).id


def test_structured_cloudevent_passes_through_with_extensions() -> None:
    event = from_plain_json(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "s3",
            "type": "document-added",
            "data": {"key": "a.pdf"},
            "traceparent": "00-abc",
        }
    )
    assert event.as_data()["traceparent"] == "00-abc"
    assert event.data == {"key": "a.pdf"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "an event must be a JSON object, got list"),
        ({"source": "x"}, "missing event type: set `type` or `eventType`"),
        ({"specversion": "1.0", "id": "1", "source": "s"}, "type: Field required"),
        ({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}, "specversion:"),
    ],
)
def test_bad_events_name_the_problem(body: object, message: str) -> None:
    with pytest.raises(EventFormatError, match=message):
        from_plain_json(body)


def test_workflow_id_depends_on_source_and_id_only() -> None:
    assert event_workflow_id("s3", "1") == event_workflow_id("s3", "1")
    assert event_workflow_id("s3", "1") != event_workflow_id("s3", "2")
    assert event_workflow_id("s3", "1") != event_workflow_id("sqs", "1")
