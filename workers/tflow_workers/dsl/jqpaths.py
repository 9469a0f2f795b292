"""Plain path expressions (`.`, `.a`, `.a.b`) evaluated in Python, as jq would.

Most runtime expressions in documents only pick data out (`with: {state: "${ . }"}`,
`"${ .order.id }"`), and handing each to jq costs a JSON round trip of the whole data and
a jq run. These are answered here instead, giving exactly what jq gives:

* the value jq would output, not the input object: numbers as jq's doubles print them
  (`1.0` -> `1`, integers beyond 2**53 rounded), tuples as lists, fresh containers;
* a field of `null` is `null`, a missing field is `null`.

Whatever this module cannot answer exactly (indexing a non-object, which jq reports as an
error in its own words; NaN, infinities, non-string keys, lone surrogates, types other
than JSON's) raises `NotPlain`, and the caller asks jq, so errors and odd values read the
same as before.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

_PATH = re.compile(r"^(?:\.|(?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")
# jq holds numbers as doubles: integers up to this size are exact.
_EXACT_INT: Final = 2**53


class NotPlain(Exception):
    """The value or the path needs jq itself."""


def plain_path(text: str) -> tuple[str, ...] | None:
    """The field names of `text` when it is a plain path (`()` for `.`), else None."""
    body = text.strip()
    if not _PATH.match(body):
        return None
    return tuple(name for name in body.split(".") if name)


def follow(path: tuple[str, ...], data: Any) -> Any:
    """What jq outputs for the plain `path` on `data`; `NotPlain` when only jq can say."""
    return as_jq(walk(path, data))


def walk(path: tuple[str, ...], data: Any) -> Any:
    """The value at the plain `path` in `data`, as it is (not as jq would output it);
    `NotPlain` where jq would report an error (indexing a non-object)."""
    value = data
    for name in path:
        # Exact types: the workflow sandbox routes every isinstance through a proxy check,
        # and subclasses go to jq anyway.
        kind = type(value)
        if kind is dict:
            value = value.get(name)
        elif value is None:
            return None
        else:
            raise NotPlain
    return value


def check_text(value: str) -> str:
    """`value` when jq reads it as Python does (no lone surrogates), else `NotPlain`."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise NotPlain from None
    return value


def as_jq(value: Any) -> Any:
    """`value` as it comes back out of jq (see the module docstring)."""
    kind = type(value)
    if kind is str:
        return check_text(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if -_EXACT_INT <= value <= _EXACT_INT:
            return value
        try:
            return int(float(value))
        except OverflowError:
            raise NotPlain from None
    if kind is float:
        if not math.isfinite(value):
            raise NotPlain
        return int(value) if value.is_integer() else value
    if kind is dict:
        result = {}
        for key, item in value.items():
            if type(key) is not str:
                raise NotPlain
            result[as_jq(key)] = as_jq(item)
        return result
    if kind is list or kind is tuple:
        return [as_jq(item) for item in value]
    raise NotPlain
