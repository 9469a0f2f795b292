"""Serverless Workflow durations: ISO 8601 strings (`PT30S`, `P1DT2H`) and the inline form
(`{days, hours, minutes, seconds, milliseconds}`), parsed into `datetime.timedelta`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Final

INLINE_FIELDS: Final = ("days", "hours", "minutes", "seconds", "milliseconds")

_NUMBER = r"\d+(?:[.,]\d+)?"
_ISO = re.compile(
    rf"^P(?!$)(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?"
    rf"(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?=\d)(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?$"
)


def parse_iso_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as `PT5M` or `P1DT2H3M4.5S`.

    Years and months are refused: they have no fixed length, and a timer needs one.
    """
    match = _ISO.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"invalid ISO 8601 duration {text!r}: expected a form like 'PT30S', 'PT5M' or 'P1DT2H'"
        )
    parts = {
        name: float(value.replace(",", ".")) for name, value in match.groupdict().items() if value
    }
    if "years" in parts or "months" in parts:
        raise ValueError(
            f"invalid duration {text!r}: years and months have no fixed length; use days or weeks"
        )
    try:
        return timedelta(
            weeks=parts.get("weeks", 0.0),
            days=parts.get("days", 0.0),
            hours=parts.get("hours", 0.0),
            minutes=parts.get("minutes", 0.0),
            seconds=parts.get("seconds", 0.0),
        )
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def parse_inline_duration(value: Mapping[str, object]) -> timedelta:
    """Parse the inline form, e.g. `{minutes: 5, seconds: 30}`."""
    if not value:
        raise ValueError(
            f"invalid inline duration {dict(value)!r}: "
            f"set at least one of {', '.join(INLINE_FIELDS)}"
        )
    amounts: dict[str, int] = {}
    for key, amount in value.items():
        if key not in INLINE_FIELDS:
            raise ValueError(
                f"invalid inline duration {dict(value)!r}: unknown field {key!r} "
                f"(expected {', '.join(INLINE_FIELDS)})"
            )
        # bool is an int in Python, but `seconds: true` is a mistake, not a second.
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(
                f"invalid inline duration {dict(value)!r}: {key} must be a non-negative integer"
            )
        amounts[key] = amount
    try:
        return timedelta(**amounts)
    except OverflowError:
        raise ValueError(f"invalid inline duration {dict(value)!r}: too long") from None


def parse_duration(value: object) -> timedelta:
    """Parse either duration form; anything else is a `ValueError` naming the value."""
    if isinstance(value, str):
        return parse_iso_duration(value)
    if isinstance(value, Mapping):
        return parse_inline_duration(value)
    raise ValueError(
        f"invalid duration {value!r}: expected an ISO 8601 string such as 'PT30S' "
        "or a mapping such as {seconds: 30}"
    )
