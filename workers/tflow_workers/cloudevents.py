"""CloudEvents 1.0 inside Temporal Flow: the event model every listener produces and the
root orchestrator consumes, and the id of the RootOrchestrator run an event starts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

# The seed's names: `temporal workflow start --task-queue root_orchestrator-queue
# --type RootOrchestratorWorkflow` must keep working.
ROOT_ORCHESTRATOR_WORKFLOW_TYPE = "RootOrchestratorWorkflow"
DEFAULT_ROUTER_TASK_QUEUE = "root_orchestrator-queue"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event (structured JSON form). Extension attributes are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    specversion: str = Field(default="1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None

    def as_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def event_workflow_id(source: str, event_id: str, namespace: str | None = None) -> str:
    """The RootOrchestrator workflow id of an event: the same event (source + id) always
    maps to the same id, so a redelivery can never start a second run.

    An event received in a Kubernetes namespace has the namespace in its id too: another
    tenant sending an event with the same source and id must neither collide with it
    ("duplicate") nor be able to claim its id first."""
    key = (
        f"{source}\x00{event_id}" if namespace is None else f"{namespace}\x00{source}\x00{event_id}"
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"event-{digest}"


class RootInput(BaseModel):
    """The RootOrchestratorWorkflow's input: one event to route, or none for the
    long-running form that routes events signalled to it (`trigger`) and continues as new
    with the ones it has not routed yet."""

    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any] | None = None
    pending: list[dict[str, Any]] = Field(default_factory=list)
    routed: int = 0
    # The Kubernetes namespace the event was received in (a Listener's) or emitted from
    # (a flow's): it is routed to that namespace's routes, and to routes of the namespaces
    # in `share_with` that accept events from it. None: sent by hand through Temporal,
    # routed to every route as before namespaces were boundaries.
    namespace: str | None = None
    share_with: list[str] = Field(default_factory=list)
    # Route and deliver as local activities (their results are markers in the workflow
    # task that asked for them). Runs whose input lacks it use activities, as they did
    # before: they replay unchanged. The project's starters and the long-running form's
    # next run set it; a bare event or `{}` sent by hand does not.
    local_routing: bool = False


# The memo every starter in the project gives a root run: the run starts its flow runs
# with a local activity each (`tflow.start-run`), so it completes in the workflow task
# that routed the event; without it (runs begun before, or started by hand) they are
# child workflows, whose start costs the server a second workflow task per event. A memo
# rather than a `RootInput` field, so that an orchestrator older than its listeners
# (during an upgrade) reads the input as before and starts children.
LOCAL_STARTS_MEMO = "tflowLocalStarts"
ROOT_MEMO: Final[Mapping[str, bool]] = MappingProxyType({LOCAL_STARTS_MEMO: True})


class EventFormatError(ValueError):
    """Input that cannot become a CloudEvent; the message names the field and the reason."""


_TYPE_KEYS = ("type", "eventType", "event_type")
_ID_KEYS = ("id", "eventId", "event_id")


def from_plain_json(body: Any, default_source: str = "webhook") -> CloudEvent:
    """A structured CloudEvent as is, or the seed's plain JSON (`{"eventType": "incident",
    "source": "monitoring", ...}`) mapped to one: the type from `eventType` (or `type`),
    the source from `source`, the id from `id`/`eventId` or, when there is none, a digest
    of the body, so the same body delivered twice is the same event. The other fields
    become the event's data (or `data`, when the body has one)."""
    if not isinstance(body, dict):
        raise EventFormatError(f"an event must be a JSON object, got {type(body).__name__}")
    if "specversion" in body:
        try:
            return CloudEvent.model_validate(body)
        except ValueError as err:
            raise EventFormatError(_first_error(err)) from None
    event_type = next((body[k] for k in _TYPE_KEYS if body.get(k)), None)
    if not isinstance(event_type, str) or not event_type:
        raise EventFormatError("missing event type: set `type` or `eventType`")
    source = body.get("source") or default_source
    event_id = next((body[k] for k in _ID_KEYS if body.get(k)), None)
    if event_id is None:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        event_id = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    consumed = {*_TYPE_KEYS, *_ID_KEYS, "source", "time", "subject"}
    data = body["data"] if "data" in body else {k: v for k, v in body.items() if k not in consumed}
    return CloudEvent(
        id=str(event_id),
        source=str(source),
        type=event_type,
        subject=body.get("subject"),
        time=body.get("time"),
        datacontenttype="application/json",
        data=data,
    )


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "event"
        return f"{where}: {first.get('msg')}"
    return str(err)
