"""Kubernetes Events about the operator's objects (``kubectl describe`` shows them).

Events are posted on transitions only (a definition becoming invalid, a route losing its
target), never on every resync, so a broken object does not flood the namespace. A
transition that two reconciles can see at once (a change handler and the resync pass
reading the same not-yet-updated status) is posted under a name derived from what it says,
so the second post finds the first and adds nothing.
"""

from __future__ import annotations

import hashlib
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
    ref: Mapping[str, Any], event_type: str, reason: str, message: str, key: str | None = None
) -> dict[str, Any]:
    """An Event; with ``key``, its name is derived from the object's uid, the reason and the
    key, so that posting the same fact twice names the same Event."""
    if key is None:
        suffix = uuid.uuid4().hex[:12]
    else:
        fact = "\0".join((str(ref.get("uid")), reason, key))
        suffix = hashlib.sha256(fact.encode()).hexdigest()[:12]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(message) > MAX_EVENT_MESSAGE:
        message = message[: MAX_EVENT_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{ref['name']}.{suffix}",
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
    kube: KubeClient,
    ref: Mapping[str, Any],
    event_type: str,
    reason: str,
    message: str,
    key: str | None = None,
) -> None:
    """Post an Event; a failure is logged, never raised (events are best effort). With
    ``key``, an Event already posted for the same object, reason and key is left as it is."""
    body = event_body(ref, event_type, reason, message, key)
    try:
        await kube.create(body)
    except (KubeError, OSError) as err:
        if key is not None and isinstance(err, KubeError) and err.status == 409:
            return  # the same fact, posted by a reconcile that raced this one
        if isinstance(err, KubeError) and err.status == 403 and "terminat" in str(err):
            return  # the namespace is being deleted: nobody will read it
        where = f"{ref.get('namespace')}/{ref.get('name')}"
        log.warning("could not post event %s on %s: %s", reason, where, err)
