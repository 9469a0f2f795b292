"""Durations: ISO 8601 strings and the inline form, into timedelta; bad values name themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tflow_workers.dsl.durations import parse_duration, parse_inline_duration, parse_iso_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT3M", timedelta(minutes=3)),
        ("PT30S", timedelta(seconds=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1,5S", timedelta(milliseconds=1500)),
        ("P1D", timedelta(days=1)),
        ("P2W", timedelta(days=14)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("PT36H", timedelta(hours=36)),
        ("P0D", timedelta(0)),
    ],
)
def test_iso_durations(text: str, expected: timedelta) -> None:
    assert parse_iso_duration(text) == expected
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "1D", "PT5X", "pt5s", "PT-5S", "P1H", "T5S"]
)
def test_bad_iso_durations_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="invalid ISO 8601 duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["P1Y", "P2M", "P1Y2M3D"])
def test_calendar_units_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="years and months have no fixed length"):
        parse_duration(text)


def test_huge_duration_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("P999999999999D")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"seconds": 30}, timedelta(seconds=30)),
        ({"minutes": 5, "seconds": 30}, timedelta(minutes=5, seconds=30)),
        (
            {"days": 1, "hours": 2, "minutes": 3, "seconds": 4, "milliseconds": 5},
            timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5),
        ),
        ({"milliseconds": 0}, timedelta(0)),
    ],
)
def test_inline_durations(value: dict[str, object], expected: timedelta) -> None:
    assert parse_inline_duration(value) == expected
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "set at least one of days, hours, minutes, seconds, milliseconds"),
        ({"secs": 5}, "unknown field 'secs'"),
        ({"seconds": -1}, "seconds must be a non-negative integer"),
        ({"seconds": 1.5}, "seconds must be a non-negative integer"),
        ({"seconds": "5"}, "seconds must be a non-negative integer"),
        ({"seconds": True}, "seconds must be a non-negative integer"),
    ],
)
def test_bad_inline_durations(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="invalid inline duration") as caught:
        parse_duration(value)
    assert message in str(caught.value)


@pytest.mark.parametrize("value", [None, 5, 1.5, ["PT1S"], True])
def test_other_types_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration ") as caught:
        parse_duration(value)
    assert repr(value) in str(caught.value)
