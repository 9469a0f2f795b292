"""From a request to CloudEvents, by content mode: structured (`application/cloudevents+json`),
batch (`application/cloudevents-batch+json`), binary (`ce-*` headers, the body is the
data), or plain JSON in any shape `tflow_listeners.envelopes` knows (the seed's
`{eventType, ...}`, S3, Event Grid, arrays of these)."""

from __future__ import annotations

import base64
import re
import urllib.parse
import uuid
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from tflow_listeners.envelopes import (
    EventFormatError,
    cloudevent,
    eventgrid_events,
    eventgrid_validation_code,
    parse_events,
)
from tflow_listeners.problems import Refusal, is_json, parse_json
from tflow_workers.cloudevents import CloudEvent

_CE_ATTRIBUTE = re.compile(r"^[a-z0-9]{1,20}$")


def format_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "event"
        return f"{where}: {first.get('msg')}"
    return str(err)


def bad_event(err: Exception) -> Refusal:
    message = format_error(err)
    head, _, rest = message.partition(": ")
    missing = "missing" in rest or "Field required" in rest
    no_type = "missing event type" in message or (head.split(".")[-1] == "type" and missing)
    return Refusal(400, "missing-type" if no_type else "invalid-event", message)


def validation_code(request: web.Request, body: bytes) -> str | None:
    """The code of an Event Grid subscription validation request, or None when the request
    is anything else (then it is read, and refused if need be, as a delivery)."""
    mime = request.content_type
    if not is_json(mime) or mime.startswith("application/cloudevents"):
        return None
    try:
        return eventgrid_validation_code(parse_json(body))
    except (Refusal, EventFormatError):
        return None


def decode(request: web.Request, body: bytes, generic: bool) -> list[CloudEvent]:
    """The events of a request, by content mode: structured, batch, binary, or JSON."""
    mime = request.content_type
    try:
        if mime == "application/cloudevents+json":
            return [cloudevent(parse_json(body))]
        if mime == "application/cloudevents-batch+json":
            batch = parse_json(body)
            if not isinstance(batch, list):
                raise Refusal(
                    400, "not-a-batch", "a CloudEvents batch must be a JSON array of events"
                )
            return [cloudevent(item, f"[{i}]") for i, item in enumerate(batch)]
        if generic and "ce-specversion" in request.headers:
            return [binary(request, body)]
        if "Content-Type" not in request.headers:
            raise Refusal(
                415,
                "unsupported-media-type",
                "the request has no Content-Type; send application/json, "
                "application/cloudevents+json or application/cloudevents-batch+json",
            )
        if is_json(mime):
            value = parse_json(body)
            if generic:
                return parse_events(value, delivery_id=uuid.uuid4().hex)
            return eventgrid_events(value)
    except (EventFormatError, ValidationError) as err:
        raise bad_event(err) from None
    kinds = "application/json, application/cloudevents+json, application/cloudevents-batch+json"
    if generic:
        kinds += " or a binary-mode CloudEvent (ce-* headers)"
    raise Refusal(
        415, "unsupported-media-type", f"Content-Type {mime} is not accepted; send {kinds}"
    )


def binary(request: web.Request, body: bytes) -> CloudEvent:
    """A binary-mode CloudEvent: attributes in `ce-*` headers, the body is the data."""
    attributes: dict[str, Any] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if not lower.startswith("ce-"):
            continue
        attribute = lower[3:]
        if not _CE_ATTRIBUTE.match(attribute) or attribute in ("data", "datacontenttype"):
            raise Refusal(
                400,
                "invalid-attribute",
                f"{name}: not a CloudEvents attribute name (lowercase letters and digits)",
            )
        attributes[attribute] = urllib.parse.unquote(value)
    for required in ("id", "source", "type"):
        if not attributes.get(required):
            reason = "missing-type" if required == "type" else "invalid-event"
            raise Refusal(400, reason, f"ce-{required}: missing (binary-mode CloudEvent)")
    if attributes["specversion"] != "1.0":
        raise Refusal(
            400,
            "invalid-event",
            f"ce-specversion: {attributes['specversion']!r} is not supported; send 1.0",
        )
    content_type = request.headers.get("Content-Type")
    mime = request.content_type
    if content_type:
        attributes["datacontenttype"] = content_type
    if not body:
        pass
    elif is_json(mime):
        attributes["data"] = parse_json(body, "the event's data")
    elif mime.startswith("text/") or mime in ("application/xml", "application/yaml"):
        try:
            attributes["data"] = body.decode(request.charset or "utf-8")
        except (UnicodeDecodeError, LookupError) as err:
            raise Refusal(400, "invalid-text", f"the body is not valid text: {err}") from None
    else:
        attributes["data_base64"] = base64.b64encode(body).decode()
    return cloudevent(attributes)


# -- OPTIONS: CloudEvents webhook abuse protection --
