"""Kubernetes Events about the operator's objects (``kubectl describe`` shows them).

Events are posted on transitions only (a definition becoming invalid, a route losing its
target), never on every resync, so a broken object does not flood the namespace.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tflow_operator.kube import KubeClient, KubeError

log = logging.getLogger("tflow.operator.events")

COMPONENT: Final = "temporal-flow-operator"
MAX_EVENT_MESSAGE: Final = 1024


def involved(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``involvedObject`` reference of an object body."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }


def event_body(
    ref: Mapping[str, Any], event_type: str, reason: str, message: str
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(message) > MAX_EVENT_MESSAGE:
        message = message[: MAX_EVENT_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{ref['name']}.{uuid.uuid4().hex[:12]}",
            "namespace": ref["namespace"],
        },
        "involvedObject": {k: v for k, v in ref.items() if v is not None},
        "type": event_type,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def post_event(
    kube: KubeClient, ref: Mapping[str, Any], event_type: str, reason: str, message: str
) -> None:
    """Post an Event; a failure is logged, never raised (events are best effort)."""
    body = event_body(ref, event_type, reason, message)
    try:
        await kube.create(body)
    except (KubeError, OSError) as err:
        if isinstance(err, KubeError) and err.status == 403 and "terminat" in str(err):
            return  # the namespace is being deleted: nobody will read it
        where = f"{ref.get('namespace')}/{ref.get('name')}"
        log.warning("could not post event %s on %s: %s", reason, where, err)
