"""Outside payloads mapped to CloudEvents: S3 (direct, SNS, EventBridge), Event Grid (both
schemas, the validation handshake), SharePoint, and the generic recogniser."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tflow_listeners.envelopes import (
    EventFormatError,
    cloudevent,
    eventgrid_events,
    eventgrid_validation_code,
    is_s3_test_event,
    parse_events,
    s3_events,
    s3_type,
    sharepoint_notifications,
)


def s3_record(
    event_name: str = "ObjectCreated:Put",
    key: str = "uploads/quarterly+report%282024%29.pdf",
    **object_fields: Any,
) -> dict[str, Any]:
    obj = {
        "key": key,
        "size": 18734,
        "eTag": "0b5e3c3f8a1d4a9a9d2f8e6b1c7d2a10",
        "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "sequencer": "0065A1B2C3D4E5F601",
    }
    obj.update(object_fields)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2025-03-04T10:15:30.123Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSER"},
        "requestParameters": {"sourceIPAddress": "203.0.113.9"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "tflow-documents",
            "bucket": {
                "name": "team-docs",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::team-docs",
            },
            "object": obj,
        },
    }


# ---- S3 -----------------------------------------------------------------------------------


def test_s3_object_created_becomes_document_added() -> None:
    [event] = s3_events({"Records": [s3_record()]})
    assert event.type == "document-added"
    assert event.source == "s3"
    assert event.time == "2025-03-04T10:15:30.123Z"
    key = "uploads/quarterly report(2024).pdf"  # `+` is a space, %28/%29 parentheses
    assert event.subject == key
    assert event.data == {
        "bucket": "team-docs",
        "key": key,
        "size": 18734,
        "eTag": "0b5e3c3f8a1d4a9a9d2f8e6b1c7d2a10",
        "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "documentUri": f"s3://team-docs/{key}",
        "eventName": "ObjectCreated:Put",
        "region": "eu-west-1",
    }


def test_s3_ids_are_stable_across_redeliveries_and_distinct_per_event() -> None:
    body = {"Records": [s3_record()]}
    first = s3_events(body)[0].id
    assert s3_events(copy.deepcopy(body))[0].id == first
    assert "team-docs/uploads/quarterly report(2024).pdf" in first
    later = s3_events({"Records": [s3_record(sequencer="0065A1B2C3D4E5F699")]})[0]
    assert later.id != first


def test_s3_without_sequencer_falls_back_to_etag_and_time_then_digest() -> None:
    record = s3_record()
    del record["s3"]["object"]["sequencer"]
    by_etag = s3_events({"Records": [record]})[0].id
    assert "0b5e3c3f8a1d4a9a9d2f8e6b1c7d2a10" in by_etag
    del record["s3"]["object"]["eTag"]
    digest = s3_events({"Records": [record]})[0].id
    assert digest == s3_events({"Records": [copy.deepcopy(record)]})[0].id
    assert digest != by_etag


def test_s3_removal_and_other_event_names() -> None:
    removed = s3_record("ObjectRemoved:Delete", key="old.txt", size=None, eTag=None)
    restored = s3_record("ObjectRestore:Completed", key="archive/x.bin")
    events = s3_events({"Records": [removed, restored]})
    assert [e.type for e in events] == ["document-removed", "aws.s3.ObjectRestore:Completed"]
    assert "size" not in events[0].data
    assert "eTag" not in events[0].data
    assert s3_type("s3:ObjectCreated:CompleteMultipartUpload") == "document-added"
    assert s3_type("ObjectRemoved:DeleteMarkerCreated") == "document-removed"


def test_s3_test_event_is_recognised_and_ignored() -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2025-03-04T10:00:00.000Z",
        "Bucket": "team-docs",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert is_s3_test_event(test_event)
    assert s3_events(test_event) == []
    assert parse_events(test_event) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["s3"]["bucket"].pop("name"), "Records[0].s3.bucket.name: missing"),
        (lambda r: r["s3"]["object"].update(key=""), "Records[0].s3.object.key: must be"),
        (lambda r: r.pop("eventName"), "Records[0].eventName: missing"),
        (lambda r: r.update(eventSource="aws:sqs"), "Records[0].eventSource: expected"),
        (lambda r: r.update(s3=[]), "Records[0].s3: must be an object, got array"),
    ],
)
def test_s3_errors_name_the_field(mutate: Any, message: str) -> None:
    record = s3_record()
    mutate(record)
    with pytest.raises(EventFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        s3_events({"Records": [record]})


def test_s3_through_sns_is_unwrapped() -> None:
    envelope = {
        "Type": "Notification",
        "MessageId": "b7c1f0d4-5c3e-5f1b-9d0c-1e2f3a4b5c6d",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:docs-events",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps({"Records": [s3_record()]}),
        "Timestamp": "2025-03-04T10:15:31.000Z",
        "SignatureVersion": "1",
    }
    [event] = parse_events(envelope)
    assert event.type == "document-added"
    assert event.id == s3_events({"Records": [s3_record()]})[0].id
    with pytest.raises(EventFormatError, match="Message: the SNS message is not JSON"):
        parse_events({**envelope, "Message": "hello"})


def test_s3_through_eventbridge_is_the_same_event() -> None:
    body = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-03-04T10:15:30Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:s3:::team-docs"],
        "detail": {
            "version": "0",
            "bucket": {"name": "team-docs"},
            "object": {
                "key": "uploads/quarterly report(2024).pdf",
                "size": 18734,
                "etag": "0b5e3c3f8a1d4a9a9d2f8e6b1c7d2a10",
                "sequencer": "0065A1B2C3D4E5F601",
            },
            "reason": "PutObject",
        },
    }
    [event] = parse_events(body)
    assert (event.type, event.source) == ("document-added", "s3")
    assert event.id == s3_events({"Records": [s3_record()]})[0].id
    assert event.data["documentUri"] == "s3://team-docs/uploads/quarterly report(2024).pdf"


# ---- Azure Event Grid ---------------------------------------------------------------------

STORAGE_TOPIC = (
    "/subscriptions/0f3e2d1c-aaaa-bbbb-cccc-123456789abc/resourceGroups/docs-rg"
    "/providers/Microsoft.Storage/storageAccounts/teamdocs"
)


def blob_created(blob: str = "uploads/q1 report.pdf") -> dict[str, Any]:
    return {
        "topic": STORAGE_TOPIC,
        "subject": f"/blobServices/default/containers/inbox/blobs/{blob}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "api": "PutBlob",
            "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca89a05",
            "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
            "eTag": "0x8D4BCC2E4835CD0",
            "contentType": "application/pdf",
            "contentLength": 524288,
            "blobType": "BlockBlob",
            "url": "https://teamdocs.blob.core.windows.net/inbox/uploads/q1%20report.pdf",
            "sequencer": "00000000000004420000000000028963",
            "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2025-03-04T10:15:30.1234567Z",
    }


def test_eventgrid_blob_created_becomes_document_added() -> None:
    [event] = eventgrid_events([blob_created()])
    assert (event.type, event.source) == ("document-added", "azure-blob")
    assert event.id == "831e1650-001e-001b-66ab-eeb76e069631"
    assert event.time == "2025-03-04T10:15:30.1234567Z"
    assert event.subject == "/blobServices/default/containers/inbox/blobs/uploads/q1 report.pdf"
    assert event.data == {
        "container": "inbox",
        "bucket": "inbox",
        "key": "uploads/q1 report.pdf",
        "size": 524288,
        "eTag": "0x8D4BCC2E4835CD0",
        "contentType": "application/pdf",
        "documentUri": "azblob://inbox/uploads/q1 report.pdf",
        "url": "https://teamdocs.blob.core.windows.net/inbox/uploads/q1%20report.pdf",
        "account": "teamdocs",
        "api": "PutBlob",
        "eventName": "Microsoft.Storage.BlobCreated",
    }


def test_eventgrid_blob_deleted_and_location_from_url() -> None:
    deleted = blob_created()
    deleted["eventType"] = "Microsoft.Storage.BlobDeleted"
    deleted["subject"] = "unexpected"
    [event] = eventgrid_events(deleted)
    assert event.type == "document-removed"
    assert event.data["key"] == "uploads/q1 report.pdf"  # from data.url, decoded
    deleted["data"].pop("url")
    with pytest.raises(EventFormatError, match="subject: cannot tell the container"):
        eventgrid_events(deleted)


def test_eventgrid_other_events_keep_type_and_topic() -> None:
    custom = {
        "id": "9aeb0fdf-c01e-0131-0922-9eb54906e209",
        "topic": "/subscriptions/x/resourceGroups/ops/providers/Microsoft.EventGrid/topics/alerts",
        "subject": "monitoring/db-1",
        "eventType": "incident",
        "eventTime": "2025-03-04T10:15:30Z",
        "data": {"message": "Critical system failure detected"},
        "dataVersion": "1.0",
    }
    [event] = eventgrid_events(custom)
    assert event.source == custom["topic"]
    assert (event.type, event.subject) == ("incident", "monitoring/db-1")
    assert event.data == {"message": "Critical system failure detected"}
    assert event.as_data()["dataversion"] == "1.0"
    assert parse_events(custom)[0] == event  # recognised by shape, too


def test_eventgrid_errors_name_the_index_and_field() -> None:
    bad = blob_created()
    del bad["id"]
    with pytest.raises(EventFormatError, match=r"^\[1\]\.id: missing"):
        eventgrid_events([blob_created(), bad])
    with pytest.raises(EventFormatError, match=r"\[0\]: must be an object, got string"):
        eventgrid_events(["x"])


def test_eventgrid_cloudevents_schema() -> None:
    blob = {
        "specversion": "1.0",
        "type": "Microsoft.Storage.BlobCreated",
        "source": STORAGE_TOPIC,
        "id": "9aeb0fdf-c01e-0131-0922-9eb54906e209",
        "time": "2025-03-04T10:15:30.1234567Z",
        "subject": "/blobServices/default/containers/inbox/blobs/a.pdf",
        "dataschema": "#",
        "data": {"api": "PutBlob", "contentLength": 10, "url": ""},
    }
    other = {
        "specversion": "1.0",
        "type": "order.created",
        "source": "/shop",
        "id": "o-1",
        "data": {"orderId": 1},
    }
    added, order = eventgrid_events([blob, other])
    assert (added.type, added.source, added.data["documentUri"]) == (
        "document-added",
        "azure-blob",
        "azblob://inbox/a.pdf",
    )
    assert added.data["account"] == "teamdocs"  # from the source (the topic)
    assert (order.type, order.source, order.data) == ("order.created", "/shop", {"orderId": 1})


def test_eventgrid_validation_is_recognised_separately() -> None:
    validation: list[dict[str, Any]] = [
        {
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
            "topic": STORAGE_TOPIC,
            "subject": "",
            "data": {
                "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x",
            },
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2025-03-04T10:15:30.1234567Z",
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]
    assert eventgrid_validation_code(validation) == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert eventgrid_validation_code([blob_created()]) is None
    with pytest.raises(EventFormatError, match="subscription validation event is a handshake"):
        eventgrid_events(validation)
    del validation[0]["data"]["validationCode"]
    with pytest.raises(EventFormatError, match=r"\[0\]\.data\.validationCode: missing"):
        eventgrid_validation_code(validation)


# ---- SharePoint ---------------------------------------------------------------------------


def sharepoint_body() -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": "91779246-afe9-4525-b122-6c199ae89211",
                "clientState": "tflow-client-state",
                "expirationDateTime": "2025-04-01T16:17:57.0000000Z",
                "resource": "b9f6f714-9df8-470b-b22e-653855e1c181",
                "tenantId": "00000000-0000-ffff-0000-000000000000",
                "siteUrl": "/sites/team-docs",
                "webId": "5a6a4b1e-9a24-4e42-b1c4-0e2f6b2a3d11",
            },
            {
                "subscriptionId": "91779246-afe9-4525-b122-6c199ae89211",
                "clientState": "tflow-client-state",
                "expirationDateTime": "2025-04-01T16:17:57.0000000Z",
                "resource": "0c2a4e3b-1111-2222-3333-444455556666",
                "tenantId": "00000000-0000-ffff-0000-000000000000",
                "siteUrl": "/sites/team-docs",
                "webId": "5a6a4b1e-9a24-4e42-b1c4-0e2f6b2a3d11",
            },
        ]
    }


def test_sharepoint_notifications_become_document_changed() -> None:
    first, second = sharepoint_notifications(sharepoint_body(), "delivery-1")
    assert (first.type, first.source, first.subject) == (
        "document-changed",
        "sharepoint",
        "b9f6f714-9df8-470b-b22e-653855e1c181",
    )
    assert first.data == {
        "subscriptionId": "91779246-afe9-4525-b122-6c199ae89211",
        "resource": "b9f6f714-9df8-470b-b22e-653855e1c181",
        "siteUrl": "/sites/team-docs",
        "webId": "5a6a4b1e-9a24-4e42-b1c4-0e2f6b2a3d11",
        "tenantId": "00000000-0000-ffff-0000-000000000000",
        "expirationDateTime": "2025-04-01T16:17:57.0000000Z",
    }
    assert "clientState" not in json.dumps(first.as_data())  # a secret stays out
    assert first.id != second.id
    # The same body delivered again is a new change: SharePoint gives no event id.
    again = sharepoint_notifications(sharepoint_body(), "delivery-2")[0]
    assert again.id != first.id
    assert parse_events(sharepoint_body(), delivery_id="delivery-1")[0] == first


def test_sharepoint_client_state_and_errors() -> None:
    assert len(sharepoint_notifications(sharepoint_body(), "d", "tflow-client-state")) == 2
    with pytest.raises(EventFormatError, match=r"value\[0\]\.clientState: does not match"):
        sharepoint_notifications(sharepoint_body(), "d", "other")
    body = sharepoint_body()
    del body["value"][1]["resource"]
    with pytest.raises(EventFormatError, match=r"value\[1\]\.resource: missing"):
        sharepoint_notifications(body, "d")
    with pytest.raises(EventFormatError, match="value: must be a non-empty array"):
        sharepoint_notifications({"value": []}, "d")
    with pytest.raises(EventFormatError, match="need a delivery id"):
        parse_events(sharepoint_body())


# ---- CloudEvents, plain JSON, arrays --------------------------------------------------------


def test_structured_cloudevent_and_plain_json() -> None:
    structured = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/crm",
        "type": "customer.created",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {"name": "Ada"},
    }
    [event] = parse_events(structured)
    assert event.as_data()["traceparent"].startswith("00-")
    assert cloudevent(structured) == event
    [plain] = parse_events({"eventType": "incident", "message": "disk full"}, default_source="hook")
    assert (plain.type, plain.source, plain.data) == ("incident", "hook", {"message": "disk full"})


def test_arrays_mix_shapes_and_name_the_index() -> None:
    events = parse_events(
        [{"eventType": "incident", "source": "monitoring"}, {"Records": [s3_record()]}]
    )
    assert [e.type for e in events] == ["incident", "document-added"]
    with pytest.raises(EventFormatError, match=r"^\[1\]: missing event type"):
        parse_events([{"type": "a"}, {"source": "x"}])
    with pytest.raises(EventFormatError, match=r"^\[0\]\.id: "):
        parse_events([{"specversion": "1.0", "id": "", "source": "s", "type": "t"}])
    with pytest.raises(EventFormatError, match=r"^\[0\]: an event must be a JSON object"):
        parse_events([[{"type": "a"}]])
    with pytest.raises(EventFormatError, match="got string"):
        parse_events("incident")


def test_wrong_attribute_types_are_format_errors() -> None:
    with pytest.raises(EventFormatError, match=r"^subject: "):
        parse_events({"type": "t", "subject": 5})
    with pytest.raises(EventFormatError, match=r"^specversion: "):
        cloudevent({"specversion": "0.3", "id": "1", "source": "s", "type": "t"})
    with pytest.raises(EventFormatError, match="specversion: missing"):
        cloudevent({"id": "1", "source": "s", "type": "t"})
