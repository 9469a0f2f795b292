"""Shared pieces of the seed-format converters: the error type, JSON-path-like locations,
the SW 1.0 `document` header, names, and durations."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

DSL_VERSION: Final = "1.0.0"
DEFAULT_VERSION: Final = "1.0.0"
ROOT: Final = "$"

# The SW 1.0 document name/namespace shape: 1-63 letters, digits or '-', alphanumeric at
# both ends (RFC 1123 label, case-insensitive).
_LABEL = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ISO_DURATION = re.compile(
    r"^P(?!$)(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$"
)
_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+$")
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_GO_UNIT_SECONDS: Final[Mapping[str, float]] = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}


class ConversionError(ValueError):
    """A seed-format document that cannot be converted to SW 1.0.

    `path` locates the offending value (`$.steps.step_2.go_to`, `$.edges[3].target`);
    the message always starts with it.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}")


def child(path: str, key: str | int) -> str:
    """The location of `key` under `path`, quoting keys that are not plain identifiers."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def require_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConversionError(path, f"expected an object, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConversionError(path, f"keys must be strings, got {key!r}")
    return value


def require_string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConversionError(path, f"expected a non-empty string, got {_describe(value)}")
    return value


def optional_string(value: object, path: str) -> str | None:
    """A string field where the Go zero value (`""`) and null both mean "not set"."""
    if value is None or value == "":
        return None
    return require_string(value, path)


def reject_unknown(
    mapping: Mapping[str, Any], allowed: Iterable[str], path: str, what: str
) -> None:
    known = set(allowed)
    for key in mapping:
        if key not in known:
            raise ConversionError(
                child(path, key),
                f"unknown {what} field {key!r} (expected one of {', '.join(sorted(known))})",
            )


def header(
    *,
    name: str,
    namespace: str,
    version: str,
    source_format: str,
    title: str | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    """The SW 1.0 `document` block; `tags.converted-from` records the seed format."""
    doc: dict[str, Any] = {
        "dsl": DSL_VERSION,
        "namespace": namespace,
        "name": name,
        "version": version,
    }
    if title:
        doc["title"] = title
    if summary:
        doc["summary"] = summary
    doc["tags"] = {"converted-from": source_format}
    return doc


def check_label(value: object, path: str) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise ConversionError(
            path,
            f"{value!r} is not a valid SW name: 1-63 letters, digits or '-', "
            "starting and ending with a letter or digit",
        )
    return value


def slug(text: str, fallback: str) -> str:
    """A lowercase SW-valid name derived from free text (`"Test Workflow"` -> `test-workflow`)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return cleaned or fallback


def pick_name(explicit: str | None, derived: object, fallback: str) -> str:
    if explicit is not None:
        return check_label(explicit, "name")
    if isinstance(derived, str) and derived.strip():
        return slug(derived, fallback)
    return fallback


def pick_version(value: object, path: str) -> str:
    if value is None:
        return DEFAULT_VERSION
    if not isinstance(value, str) or not _SEMVER.match(value):
        raise ConversionError(path, f"{value!r} is not a semantic version like '1.0.0'")
    return value


def iso_duration(value: object, path: str) -> str:
    """An SW duration string from an ISO 8601 duration, a Go duration (`1m`, `1h30m`) or
    a number of seconds."""
    if isinstance(value, bool):
        raise ConversionError(path, f"expected a duration, got {_describe(value)}")
    if isinstance(value, int | float):
        return seconds_to_iso(float(value), path)
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DURATION.match(text.upper()):
            return text.upper()
        if _GO_DURATION.match(text):
            total = sum(
                float(amount) * _GO_UNIT_SECONDS[unit] for amount, unit in _GO_PART.findall(text)
            )
            return seconds_to_iso(total, path)
    raise ConversionError(
        path,
        f"{value!r} is not a duration: use ISO 8601 ('PT1M'), a Go duration ('1m', '90s') "
        "or a number of seconds",
    )


def seconds_to_iso(seconds: float, path: str) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        raise ConversionError(path, f"duration must be a non-negative number, got {seconds!r}")
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if millis or text == "PT":
        whole, frac = divmod(millis, 1000)
        text += f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "S" if frac else f"{whole}S"
    return text


def find_cycle(roots: Iterable[str], successors: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle a depth-first walk from `roots` (in order) meets, as a closed path
    (`[a, b, a]`), or None. Iterative, so long chains do not hit the recursion limit."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(successors[root])]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                return [*path[path.index(target) :], target]
            elif target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(successors[target]))
    return None


def unique_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`... whichever is free; the result is added to `taken`."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return _type_name(value)
