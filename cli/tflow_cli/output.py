"""Printing results: tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO


def print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


# How much of a task's input and output a table row shows; `-o json` has the whole
# preview the worker kept.
EXCERPT = 40


def excerpt(preview: Any, width: int = EXCERPT) -> str:
    """One line of a task log preview (`{"text", "truncated"}`), `…` where it is cut."""
    if not isinstance(preview, dict) or "text" not in preview:
        return "-"
    text = str(preview["text"])  # compact JSON: one line already
    if len(text) > width:
        return text[: width - 1] + "…"
    return text + "…" if preview.get("truncated") else text


def task_log(log: Sequence[dict[str, Any]], out: TextIO) -> None:
    rows = []
    for entry in log:
        error = entry.get("error") or {}
        rows.append(
            [
                str(entry.get("name", "")),
                str(entry.get("kind", "")),
                str(entry.get("outcome", "")),
                duration(entry.get("started_at"), entry.get("ended_at")),
                excerpt(entry.get("input")),
                excerpt(entry.get("output")),
                str(error.get("detail") or error.get("title") or ""),
            ]
        )
    table(rows, ["task", "kind", "outcome", "took", "input", "output", "error"], out)
