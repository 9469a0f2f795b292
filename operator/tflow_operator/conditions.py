"""Status helpers: conditions in the Kubernetes convention, and the smallest status patch.

Statuses are written only when something in them changed (a condition keeps its
``lastTransitionTime`` while its status stays the same), so a resync or an operator
restart that finds everything in order writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from tflow_operator.api.common import Condition, ConditionStatus, set_condition

MAX_MESSAGE: Final = 32000


def make_condition(
    type_: str, status: bool | None, reason: str, message: str, generation: int | None
) -> Condition:
    value = (
        ConditionStatus.UNKNOWN
        if status is None
        else (ConditionStatus.TRUE if status else ConditionStatus.FALSE)
    )
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=datetime.now(UTC),
        observed_generation=generation,
    )


def _parse(raw: Any) -> list[Condition]:
    parsed: list[Condition] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            parsed.append(Condition.model_validate(item))
        except ValidationError:
            continue  # somebody else's malformed entry: replaced below if ours
    return parsed


def merge_conditions(current: Any, new: Iterable[Condition]) -> list[dict[str, Any]]:
    """``current`` (raw status.conditions) with every condition of ``new`` set."""
    conditions = _parse(current)
    for condition in new:
        conditions = set_condition(conditions, condition)
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions]


def condition_of(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    for item in (status or {}).get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == type_:
            return item
    return None


def status_changes(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level status fields of ``desired`` that differ from ``current``."""
    current = current or {}
    return {key: value for key, value in desired.items() if current.get(key) != value}
