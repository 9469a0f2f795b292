"""Shared API helpers: durations, timestamps, conditions, names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tflow_operator.api import (
    Condition,
    ConditionStatus,
    Schedule,
    WorkflowDefinition,
    WorkflowDefinitionStatus,
    get_condition,
    parse_duration,
    set_condition,
)
from tflow_operator.api.common import DURATION_PATTERN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        ("1m", timedelta(minutes=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("PT1M", timedelta(minutes=1)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1D", timedelta(days=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W", timedelta(weeks=2)),
        ("PT0.5S", timedelta(milliseconds=500)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["", "P", "PT", "1", "1d", "one minute", "-1m", "PT1H1D"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    assert not re.fullmatch(DURATION_PATTERN, text)


def test_schedule_defaults() -> None:
    schedule = Schedule.model_validate({"cron": ["0 * * * *"]})
    assert schedule.timezone == "UTC"
    assert schedule.overlap == "Skip"
    assert parse_duration(schedule.catchup_window) == timedelta(minutes=1)
    assert schedule.paused is False
    assert schedule.input == {}


def _condition(status: ConditionStatus, at: datetime, reason: str = "Reconciled") -> Condition:
    return Condition(type="Ready", status=status, reason=reason, last_transition_time=at)


def test_timestamps_are_rfc3339_utc() -> None:
    paris = timezone(timedelta(hours=2))
    cond = _condition(ConditionStatus.TRUE, datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=paris))
    dumped = cond.model_dump(mode="json")
    assert dumped["lastTransitionTime"] == "2025-06-01T10:00:00Z"
    assert Condition.model_validate(dumped).last_transition_time == datetime(
        2025, 6, 1, 10, 0, 0, tzinfo=UTC
    )
    naive = _condition(ConditionStatus.TRUE, datetime(2025, 6, 1, 12, 0, 0))
    assert naive.model_dump(mode="json")["lastTransitionTime"] == "2025-06-01T12:00:00Z"


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    first = set_condition([], _condition(ConditionStatus.FALSE, t0, "Pending"))
    same = set_condition(first, _condition(ConditionStatus.FALSE, t1, "StillPending"))
    assert len(same) == 1
    assert same[0].last_transition_time == t0
    assert same[0].reason == "StillPending"
    changed = set_condition(same, _condition(ConditionStatus.TRUE, t1))
    assert changed[0].last_transition_time == t1
    other = Condition(
        type="Scheduled", status=ConditionStatus.TRUE, reason="Created", last_transition_time=t1
    )
    both = set_condition(changed, other)
    assert [c.type for c in both] == ["Ready", "Scheduled"]
    assert get_condition(both, "Scheduled") == other
    assert get_condition(both, "Missing") is None


def test_status_round_trips_with_camel_case() -> None:
    status = WorkflowDefinitionStatus.model_validate(
        {
            "observedGeneration": 3,
            "lastRun": "2025-01-01T00:00:00Z",
            "running": 2,
            "somethingNew": "ignored",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reconciled",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
        }
    )
    assert status.observed_generation == 3
    dumped = status.model_dump(mode="json", exclude_none=True)
    assert dumped["lastRun"] == "2025-01-01T00:00:00Z"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert "somethingNew" not in dumped


def test_resource_names() -> None:
    names = WorkflowDefinition.NAMES
    assert names.crd_name == "workflowdefinitions.temporalflow.dev"
    assert names.list_kind == "WorkflowDefinitionList"
