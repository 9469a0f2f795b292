"""Events inside a run: signals become CloudEvents, and listen filters match them.

A signal named `event` carries a CloudEvent (what the router delivers). Any other signal
name is taken as an event of that type with the signal's argument as its data, so
`temporal workflow signal --name approve --input '{...}'` feeds `listen` just the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tflow_workers.dsl.expressions import is_expression
from tflow_workers.dsl.models import (
    AllEventConsumptionStrategy,
    AnyEventConsumptionStrategy,
    EventFilter,
    OneEventConsumptionStrategy,
)

Strategy = AllEventConsumptionStrategy | AnyEventConsumptionStrategy | OneEventConsumptionStrategy

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


@lru_cache(maxsize=512)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        # Not a regular expression, so it can only be meant literally.
        return None


def _matches(wanted: Any, actual: Any, evaluate: Callable[[str, Any], Any], regex: bool) -> bool:
    if is_expression(wanted):
        result = evaluate(wanted, actual)
        if isinstance(result, bool) or result is None:
            return result is True
        # An expression that yields a value (`${ "order." + $input.kind }`) is compared.
        return bool(result == actual)
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and _matches(v, actual[k], evaluate, regex) for k, v in wanted.items()
        )
    if wanted == actual:
        return True
    if regex and isinstance(wanted, str) and isinstance(actual, str):
        pattern = _pattern(wanted)
        return pattern is not None and pattern.fullmatch(actual) is not None
    return False


def matches_filter(
    event: dict[str, Any],
    attributes: dict[str, Any],
    evaluate: Callable[[str, Any], Any],
    regex: bool = True,
) -> bool:
    """True when every attribute of the filter matches the event.

    A literal compares equal (objects: as a subset, so `data: {orderId: 1}` matches any
    event whose data has that field). A literal string is also a regular expression that
    must match the whole of a string attribute (`type: order\\.(placed|paid)`), as the
    spec's *Event Filter* allows; a string that is not a valid pattern matches only
    itself. `regex=False` is how runs recorded before patterns were supported matched. A
    `${ }` expression is evaluated against the attribute it sits on, as the spec's *Event
    Filter* says (`data: ${ .temperature > 38 }` sees the event's data): `true` matches,
    `false`/`null` do not, any other value must equal the attribute.
    """
    return all(
        key in event and _matches(wanted, event[key], evaluate, regex)
        for key, wanted in attributes.items()
    )


class Consumption:
    """How far a listen's event consumption strategy (`one`, `all`, `any` with `until`)
    has got over the events offered to it, in arrival order.

    `offer` consumes an event when the strategy wants it. For `any` with an `until` given
    as events, those events are consumed by the `until` (and kept out of the output), and
    listening goes on until the `until` strategy is complete.
    """

    def __init__(
        self,
        strategy: Strategy,
        matches: Callable[[dict[str, Any], EventFilter], bool],
        until_met: Callable[[list[dict[str, Any]]], bool],
    ) -> None:
        self.matches = matches
        self.until_met = until_met
        self.consumed: list[dict[str, Any]] = []
        self.done = False
        self.until: Consumption | str | None = None
        if isinstance(strategy, OneEventConsumptionStrategy):
            self.kind = "one"
            self.filters: list[EventFilter] = [strategy.one]
        elif isinstance(strategy, AllEventConsumptionStrategy):
            self.kind = "all"
            self.filters = list(strategy.all)
            self.done = not self.filters
        else:
            self.kind = "any"
            self.filters = list(strategy.any)
            if isinstance(strategy.until, str):
                self.until = strategy.until
            elif strategy.until is not None:
                self.until = Consumption(strategy.until, matches, until_met)

    def offer(self, event: dict[str, Any]) -> bool:
        if self.done:
            return False
        if isinstance(self.until, Consumption) and self.until.offer(event):
            self.done = self.until.done
            return True
        for index, flt in enumerate(self.filters):
            if self.matches(event, flt):
                if self.kind == "all":
                    del self.filters[index]
                self.consumed.append(event)
                self._advance()
                return True
        if self.kind == "any" and not self.filters:
            # `any: []` listens to every event.
            self.consumed.append(event)
            self._advance()
            return True
        return False

    def _advance(self) -> None:
        if self.kind == "one":
            self.done = True
        elif self.kind == "all":
            self.done = not self.filters
        elif self.until is None:
            self.done = True
        elif isinstance(self.until, str):
            self.done = self.until_met(self.consumed)

    def filter_types(self) -> set[Any]:
        """The `type` attributes of every filter still waiting, `until` included."""
        types = {f.with_.type for f in self.filters}
        if isinstance(self.until, Consumption):
            types |= self.until.filter_types()
        return types
