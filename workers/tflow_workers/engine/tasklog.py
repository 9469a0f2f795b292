"""Each task's input and output in the task log, bounded: what a person reading a run
(the UI, `tflow runs show`, the run API) sees of the data a task took and gave.

The log lives in workflow memory for as long as a run is cached on a worker, and every
`status` query answers it whole, so the previews are capped twice:

- `PREVIEW_LIMIT` characters of compact JSON per value (`DataPreview.truncated` when cut).
  No full size is given: knowing it would mean serialising the whole value, and a task's
  data can be megabytes in a loop of thousands of iterations; stopping at the limit keeps
  the cost of a preview near that of a few kilobytes (one long string is still encoded
  whole, at C speed).
- `PREVIEW_BUDGET` characters per run over all entries: past it, the oldest entries' previews
  are let go (newest kept, as they are the ones a person looks at). A worker holding
  1000 open runs thus holds at most about 1000 x 64 KiB of previews, and a query answer
  stays far below Temporal's message limits.

The continue-as-new input carries the log without previews: they are a view for people,
not state, and that input is then written as older workers write and read it.

Building a preview is pure (no time, no randomness, no I/O) and nothing it produces
reaches a command, so it is safe in workflow code and on replay.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from tflow_workers.engine.errors import Problem
from tflow_workers.engine.model import DataPreview, TaskLogEntry, TaskOutcome

PREVIEW_LIMIT = 4096
PREVIEW_BUDGET = 64 * 1024
# What each preview costs on top of its text, so that many tiny previews (`null`, `{}`)
# also run out the budget instead of keeping every entry forever.
ENTRY_COST = 64


def _unjsonable(value: Any) -> str:
    # Run data is JSON; anything else is named by its type rather than failing the task.
    return f"<{type(value).__name__}>"


# Not one-shot: `iterencode` then yields piece by piece and stops being asked once the
# limit is reached, instead of serialising the whole value first.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_unjsonable)


def _surely_small(value: Any, limit: int) -> bool:
    """Whether `value` is made of JSON's own types and about `limit` characters of JSON
    at most, found without serialising it: strings and containers count their length,
    anything else one character. Not exact, and need not be: it only bounds what encoding
    the whole value at once can cost."""
    left = limit
    stack = [value]
    while stack:
        item = stack.pop()
        # Exact types: the workflow sandbox routes every isinstance through a proxy check.
        kind = type(item)
        if kind is str:
            left -= len(item) + 2
        elif kind is dict:
            left -= 2 + 2 * len(item)
            if left < 0:
                return False
            for key, member in item.items():
                if type(key) is str:
                    left -= len(key)
                stack.append(member)
        elif kind is list or kind is tuple:
            left -= 2 + len(item)
            if left < 0:
                return False
            stack.extend(item)
        elif item is None or kind is bool or kind is int or kind is float:
            left -= 1
        else:
            return False
        if left < 0:
            return False
    return True


class Preview(NamedTuple):
    """A preview as a run holds it; a `DataPreview` only when the log is read."""

    text: str
    truncated: bool = False


_NOT_JSON = Preview("<not JSON>", True)


def preview(value: Any, limit: int = PREVIEW_LIMIT) -> Preview:
    """`value` as compact JSON, at most `limit` characters."""
    if _surely_small(value, limit):
        # Most task data is small: the C encoder does it at once, and cutting its text
        # gives what the piecewise encoding below would (same encoder, same options).
        # `iterencode(..., True)` is what `encode` runs, without its two `isinstance`
        # checks, which the workflow sandbox routes through a proxy.
        try:
            text = "".join(_ENCODER.iterencode(value, True))
        except (ValueError, RecursionError):
            return _NOT_JSON
        if len(text) > limit:
            return Preview(text[:limit], True)
        return Preview(text)
    parts: list[str] = []
    size = 0
    try:
        for chunk in _ENCODER.iterencode(value):
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                return Preview("".join(parts)[:limit], True)
    except (ValueError, RecursionError):
        return _NOT_JSON
    return Preview("".join(parts))


def preview_of_json(data: bytes, limit: int = PREVIEW_LIMIT) -> Preview:
    """The preview of a value from compact JSON that already encodes it (an activity's
    result payload), without encoding the value again. UTF-8 takes at most four bytes a
    character, so only the first `4 * limit` bytes are ever decoded; a character cut at
    that edge is dropped."""
    if len(data) > 4 * limit:
        return Preview(data[: 4 * limit].decode("utf-8", "ignore")[:limit], True)
    text = data.decode("utf-8", "replace")
    if len(text) > limit:
        return Preview(text[:limit], True)
    return Preview(text)


def at_ns(ns: int) -> datetime:
    """The workflow time `ns` (`workflow.time_ns()`) as `workflow.now()` gives it."""
    return datetime.fromtimestamp(ns / 1e9, UTC)


def ns_of(moment: datetime) -> int:
    """`moment` as workflow clock nanoseconds (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LogRecord:
    """A task log entry as a run keeps it: plain attributes, set as the task goes, and
    made a `TaskLogEntry` only when the log is read (the status query, continue-as-new).
    A validated model per task, with its previews and assignments, cost about twenty
    times as much, on every task of every run, for a log that is mostly never read.
    Times are kept as the workflow clock's nanoseconds, and made datetimes when read."""

    __slots__ = (
        "ended_ns",
        "error",
        "input",
        "kind",
        "name",
        "outcome",
        "output",
        "reference",
        "started_ns",
    )

    def __init__(self, name: str, reference: str, kind: str, started_ns: int) -> None:
        self.name = name
        self.reference = reference
        self.kind = kind
        self.started_ns = started_ns
        self.ended_ns: int | None = None
        self.outcome: TaskOutcome = "running"
        self.error: Problem | None = None
        self.input: Preview | None = None
        self.output: Preview | None = None

    @property
    def started_at(self) -> datetime:
        return at_ns(self.started_ns)

    @property
    def ended_at(self) -> datetime | None:
        return None if self.ended_ns is None else at_ns(self.ended_ns)

    @classmethod
    def of(cls, entry: TaskLogEntry) -> LogRecord:
        """The record of an entry a continued run carried over."""
        record = cls(entry.name, entry.reference, entry.kind, ns_of(entry.started_at))
        record.ended_ns = None if entry.ended_at is None else ns_of(entry.ended_at)
        record.outcome = entry.outcome
        record.error = entry.error
        if entry.input is not None:
            record.input = Preview(entry.input.text, entry.input.truncated)
        if entry.output is not None:
            record.output = Preview(entry.output.text, entry.output.truncated)
        return record

    def entry(self, previews: bool = True) -> TaskLogEntry:
        """The entry readers get; without the previews for the continue-as-new input."""
        shown_input = self.input if previews else None
        shown_output = self.output if previews else None
        return TaskLogEntry(
            name=self.name,
            reference=self.reference,
            kind=self.kind,
            started_at=self.started_at,
            ended_at=self.ended_at,
            outcome=self.outcome,
            error=self.error,
            input=None if shown_input is None else DataPreview(**shown_input._asdict()),
            output=None if shown_output is None else DataPreview(**shown_output._asdict()),
        )


class PreviewBudget:
    """Which task log entries keep their previews: the newest, within `budget` characters.

    Each preview is charged when it is set and let go oldest first. An entry dropped
    from the log stays charged until its previews are let go, so what is counted is what
    is held in memory."""

    def __init__(self, budget: int = PREVIEW_BUDGET) -> None:
        self.budget = budget
        self._held: deque[tuple[LogRecord, str, int]] = deque()
        self.size = 0
        # The value previewed last and its preview: a task's output is usually the very
        # object the next task takes as input (or a parent's, or its last child's), so
        # its preview is made once. Identity, not equality, and only the last one: the
        # object cannot have changed between two consecutive previews of the run.
        self._last: tuple[Any, Preview] | None = None

    def encoded(self, value: Any, data: bytes) -> None:
        """`value` was just decoded from the compact JSON `data`: previewing it (as the
        output of its task, then the input of the next) reads that text instead of
        encoding the value again."""
        self._last = (value, preview_of_json(data))

    def set_input(self, entry: LogRecord, value: Any) -> None:
        self._set(entry, "input", value)

    def set_output(self, entry: LogRecord, value: Any) -> None:
        self._set(entry, "output", value)

    def _set(self, entry: LogRecord, field: str, value: Any) -> None:
        last = self._last
        if last is not None and last[0] is value:
            shown = last[1]
        else:
            shown = preview(value)
            self._last = (value, shown)
        setattr(entry, field, shown)
        cost = ENTRY_COST + len(shown.text)
        self._held.append((entry, field, cost))
        self.size += cost
        while self.size > self.budget:
            old, old_field, old_cost = self._held.popleft()
            self.size -= old_cost
            setattr(old, old_field, None)
