"""The task log's data previews: cut per value, bounded per run, invisible to readers and
continue-as-new inputs that do not know them, and one line of each in `tflow`'s table."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from tflow_cli.output import excerpt, task_log
from tflow_workers.engine.model import DataPreview, ResumeState, RunStatus, TaskLogEntry
from tflow_workers.engine.tasklog import (
    ENTRY_COST,
    LogRecord,
    PreviewBudget,
    at_ns,
    ns_of,
    preview,
    preview_of_json,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def entry(name: str = "t") -> LogRecord:
    return LogRecord(name, f"/do/0/{name}", "set", ns_of(NOW))


def test_a_preview_is_compact_json_cut_at_the_limit() -> None:
    small = preview({"a": [1, 2], "é": None})
    assert (small.text, small.truncated) == ('{"a":[1,2],"é":null}', False)
    big = preview({"numbers": list(range(10_000))}, limit=100)
    assert big.truncated
    assert len(big.text) == 100
    assert big.text.startswith('{"numbers":[0,1,2')
    exact = preview("x" * 8, limit=10)  # '"xxxxxxxx"' is 10 characters: not cut
    assert (exact.text, exact.truncated) == ('"' + "x" * 8 + '"', False)
    assert preview({"when": NOW}).text == '{"when":"<datetime>"}'


def test_the_budget_lets_the_oldest_previews_go() -> None:
    budget = PreviewBudget(budget=3 * (ENTRY_COST + 10))
    entries = [entry(f"t{i}") for i in range(5)]
    for e in entries:
        budget.set_input(e, "x" * 8)  # 10 characters of JSON
    assert [e.input is not None for e in entries] == [False, False, True, True, True]
    assert budget.size == 3 * (ENTRY_COST + 10)
    # An output set later is charged on its own and is the newest.
    budget.set_output(entries[2], "y" * 8)
    assert entries[2].output is not None
    assert entries[2].input is None
    assert [e.input is not None for e in entries] == [False, False, False, True, True]


def test_the_same_value_twice_in_a_row_is_previewed_once() -> None:
    budget = PreviewBudget()
    first, second, third = entry("a"), entry("b"), entry("c")
    data = {"n": [1, 2]}
    budget.set_output(first, data)
    budget.set_input(second, data)  # the next task's input: the same object
    assert second.input is first.output
    equal = {"n": [1, 2]}
    budget.set_input(third, equal)  # equal, not the same: previewed again
    assert third.input is not None
    assert third.input is not first.output
    assert third.input.text == '{"n":[1,2]}'
    # Each is charged, as each entry holds it.
    assert budget.size == 3 * (ENTRY_COST + len('{"n":[1,2]}'))


def test_entries_without_previews_are_written_and_read_as_before() -> None:
    plain = entry().entry()
    dumped = json.loads(plain.model_dump_json())
    assert "input" not in dumped
    assert "output" not in dumped
    # What the continue-as-new input carries: no preview fields at all.
    shown = entry()
    PreviewBudget().set_output(shown, {"a": 1})
    state = ResumeState(next_task=1, started_at=NOW, log=[shown.entry(previews=False)])
    carried = json.loads(state.model_dump_json())["log"][0]
    assert "output" not in carried
    assert json.loads(shown.entry().model_dump_json())["output"] == {
        "text": '{"a":1}',
        "truncated": False,
    }
    # A continued run reads the entry back as the record it was, previews and all.
    back = LogRecord.of(shown.entry())
    assert back.entry() == shown.entry()
    assert LogRecord.of(TaskLogEntry.model_validate(carried)).output is None


def test_a_record_keeps_the_workflow_clock_and_reads_as_datetimes() -> None:
    # What `workflow.now()` gives for a workflow time, to the microsecond, both ways.
    moment = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
    assert at_ns(ns_of(moment)) == moment
    assert ns_of(moment.replace(tzinfo=None)) == ns_of(moment)
    record = entry()
    record.ended_ns = ns_of(moment)
    written = record.entry()
    assert (written.started_at, written.ended_at) == (NOW, moment)
    assert LogRecord.of(written).entry() == written


def test_a_preview_from_json_text_reads_as_one_encoded_here() -> None:
    value = {"name": "caf\u00e9", "n": [1, 2.5, None, True]}
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert preview_of_json(text.encode()) == preview(value)
    long = {"items": list(range(3000))}
    text = json.dumps(long, separators=(",", ":"))
    assert preview_of_json(text.encode(), 100) == preview(long, 100)
    # Cut inside a character of four bytes: that character is dropped, never garbled.
    wide = "\U0001f600" * 50
    cut = preview_of_json(json.dumps(wide, ensure_ascii=False).encode(), 10)
    assert cut.truncated
    assert cut.text == ('"' + wide)[:10]
    huge = preview_of_json(json.dumps(wide * 100, ensure_ascii=False).encode(), 10)
    assert huge.truncated
    assert huge.text == ('"' + wide)[:10]


def test_older_and_newer_workers_answers_parse() -> None:
    logged: dict[str, Any] = {"name": "t", "reference": "/do/0/t", "kind": "set"}
    logged["started_at"] = NOW.isoformat()
    older = RunStatus.model_validate({"phase": "completed", "log": [logged]})
    assert older.log[0].output is None
    later = {**logged, "output": {"text": "1"}, "somethingLater": True}
    newer = RunStatus.model_validate({"phase": "completed", "log": [later]})
    assert newer.log[0].output == DataPreview(text="1")


def test_the_cli_task_log_shows_one_line_of_each_preview() -> None:
    assert excerpt({"text": '{"a":1}', "truncated": False}) == '{"a":1}'
    assert excerpt({"text": '{"a":[1,2', "truncated": True}) == '{"a":[1,2…'
    assert excerpt({"text": "x" * 100}, width=10) == "x" * 9 + "…"
    assert excerpt(None) == "-"
    out = io.StringIO()
    shown = entry("prepare")
    PreviewBudget().set_output(shown, {"n": 2})
    task_log([shown.entry().model_dump(mode="json", exclude_none=True)], out)
    header, row = out.getvalue().splitlines()
    assert header.split() == ["TASK", "KIND", "OUTCOME", "TOOK", "INPUT", "OUTPUT", "ERROR"]
    assert row.split() == ["prepare", "set", "running", "-", "-", '{"n":2}']
