"""How every process of the project logs: plain text lines for a person at a terminal, or
one JSON object per line for a log pipeline (``--log-format json``; ``auto``, the
default, picks JSON unless stderr is a terminal).

In JSON the ids a line is about are fields of their own, as the code passes them in
``extra``: :data:`ID_FIELDS`. The Temporal SDK's workflow and activity loggers add theirs
(``temporal_workflow``, ``temporal_activity``) the same way; their workflow and run ids are
copied to ``workflow_id`` and ``run_id`` so that one query finds a run's lines from every
process. ``namespace`` is always the Kubernetes namespace (the tenant); Temporal's stays
inside those objects.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS: Final = ("auto", "text", "json")
ID_FIELDS: Final = ("event_id", "workflow_id", "run_id", "definition", "namespace")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TemporalIds(logging.Filter):
    """Copies the workflow and run id of the SDK's workflow and activity log records to
    ``workflow_id`` and ``run_id``, unless the line set its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        workflow = getattr(record, "temporal_workflow", None)
        activity = getattr(record, "temporal_activity", None)
        if isinstance(workflow, dict):
            ids = (workflow.get("workflow_id"), workflow.get("run_id"))
        elif isinstance(activity, dict):
            ids = (activity.get("workflow_id"), activity.get("workflow_run_id"))
        else:
            return True
        for name, value in zip(("workflow_id", "run_id"), ids, strict=True):
            if value and not hasattr(record, name):
                setattr(record, name, value)
        return True


def use_json(log_format: str, stream: TextIO) -> bool:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


def configure_logging(level: int | str, log_format: str, stream: TextIO | None = None) -> None:
    """Set up the root logger for the whole process (once, at start)."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    if use_json(log_format, out):
        # Imported here, not with the module: `tflow` builds its parser from modules that
        # import this one, and its start-up should not load the SDK for that.
        from temporalio import activity, workflow

        # The SDK's ids are fields already: no copy of them appended to every message.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(TemporalIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
