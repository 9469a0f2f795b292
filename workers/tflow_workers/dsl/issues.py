"""Problems found in a workflow document: `Issue`, `DocumentError`, and the conversion of
pydantic validation errors into issues whose paths read like the YAML an author wrote
(`do[2].checkStock.switch[1].then`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

ROOT_PATH: Final = "(root)"

# Union members are tagged "kind=..." so that pydantic error locations can be told apart
# from field names and dropped from the path an author sees.
TAG_PREFIX: Final = "kind="

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where (`path`) and what (`message`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DocumentError(Exception):
    """A document that cannot be loaded; carries every problem found, not just the first."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid workflow document ({len(self.issues)} problem(s)):\n{lines}")


def join_path(path: str, key: object) -> str:
    """Append a mapping key to a path; keys that are not plain words are quoted."""
    text = str(key)
    segment = text if _PLAIN_KEY.match(text) else f'"{text}"'
    if path in ("", ROOT_PATH):
        return segment
    return f"{path}.{segment}"


def index_path(path: str, index: int) -> str:
    """Append a list index to a path."""
    return f"{'' if path == ROOT_PATH else path}[{index}]"


def format_path(loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into `a.b[0].c`, without union tags."""
    path = ROOT_PATH
    for part in loc:
        if isinstance(part, int):
            path = index_path(path, part)
        elif part.startswith(TAG_PREFIX) or part == "[key]":
            continue
        else:
            path = join_path(path, part)
    return path


def describe_type(value: object) -> str:
    """The JSON-ish name of a value's type, for messages."""
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
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggest(word: str, vocabulary: Collection[str]) -> str:
    """` (did you mean 'x'?)` when `word` looks like a typo of a known word, else ``."""
    if not vocabulary or word in vocabulary:
        return ""
    matches = difflib.get_close_matches(word, list(vocabulary), n=1, cutoff=0.7)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


_TYPE_MESSAGES: Final[dict[str, str]] = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}

_PREFIXES: Final = ("Value error, ", "Assertion failed, ")


FieldsAt = Callable[[Sequence[int | str]], Collection[str]]


def _no_fields(_loc: Sequence[int | str]) -> Collection[str]:
    return ()


def _message(error: Any, fields_at: FieldsAt) -> tuple[Sequence[int | str], str]:
    loc: Sequence[int | str] = error["loc"]
    kind: str = error["type"]
    value = error.get("input")
    if kind == "missing" and loc:
        return loc[:-1], f"missing required field '{loc[-1]}'"
    if kind == "extra_forbidden" and loc:
        field = str(loc[-1])
        return loc[:-1], f"unknown field '{field}'{suggest(field, fields_at(loc[:-1]))}"
    if kind in _TYPE_MESSAGES:
        return loc, f"{_TYPE_MESSAGES[kind]}, got {describe_type(value)}"
    message: str = error["msg"]
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind == "literal_error":
        message = message.replace("Input should be", "expected", 1) + f", got {value!r}"
    elif kind == "too_short":
        message = f"expected at least {error['ctx']['min_length']} item(s)"
    elif message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return loc, message


def issues_from_validation_error(
    error: ValidationError, fields_at: FieldsAt = _no_fields
) -> list[Issue]:
    """Every error pydantic found, as issues. `fields_at(loc)` names the fields allowed at
    a location; it feeds the did-you-mean hints for unknown fields."""
    issues: list[Issue] = []
    for item in error.errors(include_url=False):
        loc, message = _message(item, fields_at)
        issue = Issue(format_path(loc), message)
        if issue not in issues:
            issues.append(issue)
    return issues
