"""What the outside world sends, mapped to CloudEvents: S3 event notifications (direct, via
SNS or via EventBridge), Azure Event Grid (its own schema and the CloudEvents schema),
SharePoint webhook notifications, and the plain JSON or CloudEvents the webhook accepts.

Every mapper is a pure function of the body it is given. Bad input raises
`EventFormatError` whose message names the offending field (`Records[0].s3.bucket.name:
missing`). Messages that carry no event (S3's `s3:TestEvent`) map to no events; the Event
Grid subscription handshake is recognised separately (`eventgrid_validation_code`).

Event ids are stable across redeliveries wherever the sender gives something stable (the
S3 sequencer, the Event Grid id), since an event's RootOrchestrator run is keyed on its
source and id. The mapping table is in docs/listeners.md.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tflow_workers.cloudevents import CloudEvent, EventFormatError, from_plain_json

__all__ = [
    "DOCUMENT_ADDED",
    "DOCUMENT_CHANGED",
    "DOCUMENT_REMOVED",
    "EVENTGRID_VALIDATION_TYPE",
    "EventFormatError",
    "cloudevent",
    "eventbridge_s3_event",
    "eventgrid_events",
    "eventgrid_validation_code",
    "is_s3_test_event",
    "parse_events",
    "s3_events",
    "s3_type",
    "sharepoint_notifications",
    "unwrap_sns",
]

DOCUMENT_ADDED = "document-added"
DOCUMENT_REMOVED = "document-removed"
DOCUMENT_CHANGED = "document-changed"

S3_SOURCE = "s3"
AZURE_BLOB_SOURCE = "azure-blob"
SHAREPOINT_SOURCE = "sharepoint"
EVENTGRID_SOURCE = "azure-eventgrid"

EVENTGRID_VALIDATION_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"
_BLOB_TYPES = {
    "Microsoft.Storage.BlobCreated": DOCUMENT_ADDED,
    "Microsoft.Storage.BlobDeleted": DOCUMENT_REMOVED,
}
_EVENTBRIDGE_S3_TYPES = {"Object Created": DOCUMENT_ADDED, "Object Deleted": DOCUMENT_REMOVED}


# ---- helpers ----------------------------------------------------------------------------


def _get(obj: Any, where: str, key: str) -> Any:
    """`obj[key]`, which must be there and not null."""
    if not isinstance(obj, Mapping):
        raise EventFormatError(f"{where}: must be an object, got {_kind(obj)}")
    value = obj.get(key)
    if value is None:
        raise EventFormatError(f"{_join(where, key)}: missing")
    return value


def _text(obj: Any, where: str, key: str) -> str:
    value = _get(obj, where, key)
    if not isinstance(value, str) or not value:
        raise EventFormatError(f"{_join(where, key)}: must be a non-empty string")
    return value


def _optional_text(obj: Mapping[str, Any], where: str, key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventFormatError(f"{_join(where, key)}: must be a string, got {_kind(value)}")
    return value


def _object(obj: Any, where: str, key: str) -> Mapping[str, Any]:
    value = _get(obj, where, key)
    if not isinstance(value, Mapping):
        raise EventFormatError(f"{_join(where, key)}: must be an object, got {_kind(value)}")
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _event(**attributes: Any) -> CloudEvent:
    """A CloudEvent from attributes this module computed; an invalid one (say, an empty
    id) is the input's fault and is reported as such."""
    try:
        return CloudEvent(**{k: v for k, v in attributes.items() if v is not None})
    except ValidationError as err:
        raise _validation_error(err) from None


# ---- Amazon S3 --------------------------------------------------------------------------


def is_s3_test_event(body: Any) -> bool:
    """S3 sends `{"Event": "s3:TestEvent", ...}` when a notification configuration is
    saved; it names no object and is acknowledged without starting anything."""
    return isinstance(body, Mapping) and body.get("Event") == "s3:TestEvent"


def s3_type(event_name: str) -> str:
    """`ObjectCreated:*` -> document-added, `ObjectRemoved:*` -> document-removed, any other
    S3 event name `X` -> `aws.s3.X` (e.g. `aws.s3.ObjectRestore:Completed`)."""
    name = event_name.removeprefix("s3:")
    if name.startswith("ObjectCreated:"):
        return DOCUMENT_ADDED
    if name.startswith("ObjectRemoved:"):
        return DOCUMENT_REMOVED
    return f"aws.s3.{name}"


def _s3_id(bucket: str, key: str, obj: Mapping[str, Any], record: Any) -> str:
    # The sequencer orders the events of one key and is the same on every redelivery (and
    # in the EventBridge form of the same event); the eTag with the event time is next
    # best; the record itself last.
    sequencer = obj.get("sequencer")
    if isinstance(sequencer, str) and sequencer:
        return f"{bucket}/{key}@{sequencer}"
    etag = obj.get("eTag") or obj.get("etag")
    time = (record.get("eventTime") or record.get("time")) if isinstance(record, Mapping) else None
    if etag and time:
        return f"{bucket}/{key}@{etag}@{time}"
    return f"{bucket}/{key}@{_digest(record)}"


def s3_events(body: Any) -> list[CloudEvent]:
    """An S3 event notification (the body S3 sends to SQS, SNS or Lambda): one CloudEvent
    per record, source `s3`, data `{bucket, key, size, eTag, documentUri, eventName,
    region}` with the key URL-decoded. `s3:TestEvent` gives no events."""
    if is_s3_test_event(body):
        return []
    records = _get(body, "", "Records")
    if not isinstance(records, list):
        raise EventFormatError(f"Records: must be an array, got {_kind(records)}")
    events = []
    for i, record in enumerate(records):
        where = f"Records[{i}]"
        source = _get(record, where, "eventSource")
        if source != "aws:s3":
            raise EventFormatError(f"{where}.eventSource: expected 'aws:s3', got {source!r}")
        event_name = _text(record, where, "eventName")
        s3 = _object(record, where, "s3")
        bucket = _text(_object(s3, f"{where}.s3", "bucket"), f"{where}.s3.bucket", "name")
        obj = _object(s3, f"{where}.s3", "object")
        # Keys arrive URL-encoded, with `+` for a space.
        key = urllib.parse.unquote_plus(_text(obj, f"{where}.s3.object", "key"))
        region = record.get("awsRegion")
        data: dict[str, Any] = {
            "bucket": bucket,
            "key": key,
            "size": obj.get("size"),
            "eTag": obj.get("eTag"),
            "versionId": obj.get("versionId"),
            "documentUri": f"s3://{bucket}/{key}",
            "eventName": event_name,
            "region": region,
        }
        events.append(
            _event(
                id=_s3_id(bucket, key, obj, record),
                source=S3_SOURCE,
                type=s3_type(event_name),
                subject=key,
                time=record.get("eventTime"),
                datacontenttype="application/json",
                data={k: v for k, v in data.items() if v is not None},
            )
        )
    return events


def _is_eventbridge_s3(body: Mapping[str, Any]) -> bool:
    return body.get("source") == "aws.s3" and "detail-type" in body and "detail" in body


def eventbridge_s3_event(body: Any) -> CloudEvent:
    """An S3 event delivered through EventBridge (`detail-type: Object Created`): the same
    event, type and id as its S3 notification form. Keys are not URL-encoded here."""
    detail = _object(body, "", "detail")
    detail_type = _text(body, "", "detail-type")
    bucket = _text(_object(detail, "detail", "bucket"), "detail.bucket", "name")
    obj = _object(detail, "detail", "object")
    key = _text(obj, "detail.object", "key")
    data: dict[str, Any] = {
        "bucket": bucket,
        "key": key,
        "size": obj.get("size"),
        "eTag": obj.get("etag"),
        "versionId": obj.get("version-id"),
        "documentUri": f"s3://{bucket}/{key}",
        "eventName": detail_type,
        "region": body.get("region"),
    }
    return _event(
        id=_s3_id(bucket, key, obj, body),
        source=S3_SOURCE,
        type=_EVENTBRIDGE_S3_TYPES.get(detail_type, f"aws.s3.{detail_type}"),
        subject=key,
        time=body.get("time"),
        datacontenttype="application/json",
        data={k: v for k, v in data.items() if v is not None},
    )


def _is_sns_notification(body: Mapping[str, Any]) -> bool:
    return body.get("Type") == "Notification" and "TopicArn" in body and "Message" in body


def unwrap_sns(body: Any) -> Any:
    """The message inside an SNS notification envelope (S3 -> SNS -> SQS), parsed as JSON."""
    message = _text(body, "", "Message")
    try:
        return json.loads(message)
    except ValueError as err:
        raise EventFormatError(f"Message: the SNS message is not JSON: {err}") from None


# ---- Azure Event Grid -------------------------------------------------------------------


def _eventgrid_items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


def eventgrid_validation_code(body: Any) -> str | None:
    """The code of an Event Grid subscription validation event (answered with
    `{"validationResponse": code}`), or None when the body is not one."""
    for i, item in enumerate(_eventgrid_items(body)):
        if isinstance(item, Mapping) and item.get("eventType") == EVENTGRID_VALIDATION_TYPE:
            where = f"[{i}]" if isinstance(body, list) else ""
            data = _object(item, where, "data")
            return _text(data, _join(where, "data"), "validationCode")
    return None


def _is_eventgrid_schema(body: Mapping[str, Any]) -> bool:
    # Event Grid always delivers these; the seed's plain JSON has a `source` instead.
    return (
        all(k in body for k in ("id", "eventType", "eventTime", "subject"))
        and any(k in body for k in ("topic", "dataVersion", "metadataVersion"))
        and "source" not in body
    )


def _blob_location(subject: str | None, url: str | None) -> tuple[str, str] | None:
    """(container, blob name) from `/blobServices/default/containers/C/blobs/B` or from
    the blob URL `https://account.blob.core.windows.net/C/B`."""
    if subject:
        prefix, sep, rest = subject.partition("/containers/")
        container, sep2, blob = rest.partition("/blobs/")
        if sep and sep2 and container and blob and prefix.endswith("blobServices/default"):
            return container, blob
    if url:
        path = urllib.parse.urlsplit(url).path
        container, _, blob = path.lstrip("/").partition("/")
        if container and blob:
            return container, urllib.parse.unquote(blob)
    return None


def _blob_event(
    event_id: str,
    event_type: str,
    topic: str | None,
    subject: str | None,
    time: str | None,
    data: Any,
    where: str,
) -> CloudEvent:
    if not isinstance(data, Mapping):
        raise EventFormatError(f"{_join(where, 'data')}: must be an object, got {_kind(data)}")
    url = _optional_text(data, _join(where, "data"), "url")
    location = _blob_location(subject, url)
    if location is None:
        raise EventFormatError(
            f"{_join(where, 'subject')}: cannot tell the container and blob from the subject "
            f"{subject!r} or data.url {url!r}"
        )
    container, blob = location
    host = urllib.parse.urlsplit(url).hostname if url else None
    account = host.split(".")[0] if host else None
    if account is None and topic:
        account = topic.rstrip("/").rsplit("/", 1)[-1]
    fields: dict[str, Any] = {
        "container": container,
        # `bucket` too, so a flow written against S3 events reads Azure ones unchanged.
        "bucket": container,
        "key": blob,
        "size": data.get("contentLength"),
        "eTag": data.get("eTag"),
        "contentType": data.get("contentType"),
        "documentUri": f"azblob://{container}/{blob}",
        "url": url,
        "account": account,
        "api": data.get("api"),
        "eventName": event_type,
    }
    return _event(
        id=event_id,
        source=AZURE_BLOB_SOURCE,
        type=_BLOB_TYPES[event_type],
        subject=subject,
        time=time,
        datacontenttype="application/json",
        data={k: v for k, v in fields.items() if v is not None},
    )


def _eventgrid_event(item: Any, where: str) -> CloudEvent:
    if not isinstance(item, Mapping):
        raise EventFormatError(f"{where or 'event'}: must be an object, got {_kind(item)}")
    if "specversion" in item:  # the CloudEvents schema
        return cloudevent(item, where)
    event_id = _text(item, where, "id")
    event_type = _text(item, where, "eventType")
    if event_type == EVENTGRID_VALIDATION_TYPE:
        raise EventFormatError(
            f"{_join(where, 'eventType')}: a subscription validation event is a handshake, "
            "not an event; POST it to /webhook/azure-eventgrid"
        )
    topic = _optional_text(item, where, "topic")
    subject = _optional_text(item, where, "subject")
    time = _optional_text(item, where, "eventTime")
    if event_type in _BLOB_TYPES:
        return _blob_event(event_id, event_type, topic, subject, time, item.get("data"), where)
    extensions: dict[str, Any] = {}
    data_version = item.get("dataVersion")
    if isinstance(data_version, str) and data_version:
        extensions["dataversion"] = data_version
    return _event(
        id=event_id,
        source=topic or EVENTGRID_SOURCE,
        type=event_type,
        subject=subject or None,
        time=time,
        datacontenttype="application/json",
        data=item.get("data"),
        **extensions,
    )


def eventgrid_events(body: Any) -> list[CloudEvent]:
    """Azure Event Grid deliveries, one event or an array, in the Event Grid schema (id,
    eventType, subject, eventTime, data, topic: source = topic, type = eventType) or the
    CloudEvents schema. Blob storage events become `document-added` / `document-removed`
    from source `azure-blob`, like S3's."""
    if isinstance(body, list):
        return [_eventgrid_event(item, f"[{i}]") for i, item in enumerate(body)]
    return [_eventgrid_event(body, "")]


# ---- SharePoint -------------------------------------------------------------------------


def _is_sharepoint(body: Mapping[str, Any]) -> bool:
    value = body.get("value")
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(n, Mapping) and "subscriptionId" in n for n in value)
    )


def sharepoint_notifications(
    body: Any, delivery_id: str, client_state: str | None = None
) -> list[CloudEvent]:
    """SharePoint webhook notifications (`{"value": [{subscriptionId, clientState,
    resource, tenantId, siteUrl, webId, expirationDateTime}]}`): one `document-changed`
    event from source `sharepoint` each, saying that list `resource` changed (the changes
    themselves are read with the list's GetChanges).

    SharePoint gives a notification no id, and a second change to a list sends the very
    same body, so the ids come from `delivery_id` (unique per delivery, chosen by the
    caller) and the notification's position. When `client_state` is given every
    notification must carry it; the clientState never goes into the event."""
    value = _get(body, "", "value")
    if not isinstance(value, list) or not value:
        raise EventFormatError(f"value: must be a non-empty array, got {_kind(value)}")
    events = []
    for i, note in enumerate(value):
        where = f"value[{i}]"
        subscription = _text(note, where, "subscriptionId")
        resource = _text(note, where, "resource")
        if client_state is not None and note.get("clientState") != client_state:
            raise EventFormatError(f"{where}.clientState: does not match the expected value")
        data: dict[str, Any] = {
            "subscriptionId": subscription,
            "resource": resource,
            "siteUrl": note.get("siteUrl"),
            "webId": note.get("webId"),
            "tenantId": note.get("tenantId"),
            "expirationDateTime": note.get("expirationDateTime"),
        }
        events.append(
            _event(
                id=f"{subscription}/{delivery_id}/{i}",
                source=SHAREPOINT_SOURCE,
                type=DOCUMENT_CHANGED,
                subject=resource,
                datacontenttype="application/json",
                data={k: v for k, v in data.items() if v is not None},
            )
        )
    return events


# ---- CloudEvents and plain JSON ---------------------------------------------------------


def cloudevent(item: Any, where: str = "") -> CloudEvent:
    """A structured CloudEvent (it must have `specversion`); Azure blob storage types are
    normalised as they are from Event Grid."""
    if not isinstance(item, Mapping):
        raise EventFormatError(f"{where or 'event'}: must be an object, got {_kind(item)}")
    if "specversion" not in item:
        raise EventFormatError(f"{_join(where, 'specversion')}: missing (a CloudEvent needs it)")
    try:
        event = _plain(item, "webhook")
    except EventFormatError as err:
        raise _at(where, err) from None
    if event.type in _BLOB_TYPES:
        return _blob_event(
            event.id, event.type, event.source, event.subject, event.time, event.data, where
        )
    return event


def parse_events(
    body: Any, *, default_source: str = "webhook", delivery_id: str | None = None
) -> list[CloudEvent]:
    """Whatever a webhook or a queue message carries, recognised by its shape: an array
    (each item on its own), an SNS envelope (its message), an S3 notification or test
    event, an S3 event from EventBridge, Event Grid events (either schema), SharePoint
    notifications (needs `delivery_id`), a structured CloudEvent, or the seed's plain JSON
    (`{"eventType": ..., "source": ...}`; source `default_source` when it has none)."""
    if isinstance(body, list):
        events: list[CloudEvent] = []
        for i, item in enumerate(body):
            if isinstance(item, list):
                raise EventFormatError(f"[{i}]: an event must be a JSON object, got array")
            try:
                events.extend(
                    parse_events(item, default_source=default_source, delivery_id=delivery_id)
                )
            except EventFormatError as err:
                raise _at(f"[{i}]", err) from None
        return events
    if not isinstance(body, Mapping):
        raise EventFormatError(f"an event must be a JSON object, got {_kind(body)}")
    if _is_sns_notification(body):
        return parse_events(unwrap_sns(body), default_source=default_source)
    if is_s3_test_event(body):
        return []
    if "Records" in body:
        return s3_events(body)
    if _is_eventbridge_s3(body):
        return [eventbridge_s3_event(body)]
    if "specversion" in body:
        return [cloudevent(body, "")]
    if _is_eventgrid_schema(body):
        return eventgrid_events(body)
    if _is_sharepoint(body):
        if delivery_id is None:
            raise EventFormatError("value: SharePoint notifications need a delivery id")
        return sharepoint_notifications(body, delivery_id)
    return [_plain(body, default_source)]


def _plain(body: Mapping[str, Any], default_source: str) -> CloudEvent:
    try:
        return from_plain_json(dict(body), default_source=default_source)
    except ValidationError as err:  # an attribute of the wrong type, say
        raise _validation_error(err) from None


def _validation_error(err: ValidationError) -> EventFormatError:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "event"
    return EventFormatError(f"{where}: {first.get('msg')}")


def _at(where: str, err: EventFormatError) -> EventFormatError:
    """The error located under `where`: `[2].id: ...` for a field path, `[2]: ...` for a
    message that names no field."""
    message = str(err)
    if not where:
        return err
    head = message.split(":", 1)[0]
    if head.startswith("["):
        return EventFormatError(f"{where}{message}")
    if head and " " not in head and head != "event":
        return EventFormatError(f"{where}.{message}")
    return EventFormatError(f"{where}: {message.removeprefix('event: ')}")
