"""Events inside a run: signals become CloudEvents, and listen filters match them.

A signal named `event` carries a CloudEvent (what the router delivers). Any other signal
name is taken as an event of that type with the signal's argument as its data, so
`temporal workflow signal --name approve --input '{...}'` feeds `listen` just the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tflow_workers.dsl.expressions import is_expression

EVENT_SIGNAL = "event"
SIGNAL_SOURCE = "temporalflow/signal"


def event_from_signal(name: str, payload: Any, now: str, new_id: str) -> dict[str, Any]:
    if name == EVENT_SIGNAL and isinstance(payload, dict) and "type" in payload:
        event = dict(payload)
        event.setdefault("specversion", "1.0")
        event.setdefault("id", new_id)
        event.setdefault("source", SIGNAL_SOURCE)
        event.setdefault("time", now)
        return event
    return {
        "specversion": "1.0",
        "id": new_id,
        "source": SIGNAL_SOURCE,
        "type": name,
        "time": now,
        "datacontenttype": "application/json",
        "data": payload,
    }


def _subset(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in wanted.items()
        )
    return bool(wanted == actual)


def matches_filter(
    event: dict[str, Any],
    attributes: dict[str, Any],
    evaluate: Callable[[str, Any], Any] | None,
) -> bool:
    """True when every attribute of the filter matches the event.

    A literal compares equal (objects: as a subset, so `data: {orderId: 1}` matches any
    event whose data has that field); a `${ }` expression is evaluated against the event
    and must be truthy.
    """
    for key, wanted in attributes.items():
        if is_expression(wanted):
            if evaluate is None:
                return False
            result = evaluate(wanted, event)
            if result is None or result is False:
                return False
        elif not _subset(wanted, event.get(key)):
            return False
    return True
