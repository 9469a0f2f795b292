"""The processes' log formats: JSON lines carry the ids passed in ``extra`` as fields;
``auto`` is JSON unless the stream is a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tflow_workers.logs import configure_logging, use_json


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_carry_the_ids_as_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logging.getLogger("tflow.test").info(
        "event %s started", "e1", extra={"event_id": "e1", "workflow_id": "w1", "run_id": "r1"}
    )
    logging.getLogger("tflow.test").debug("below the level")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "event e1 started"
    assert (record["level"], record["logger"]) == ("INFO", "tflow.test")
    assert (record["event_id"], record["workflow_id"], record["run_id"]) == ("e1", "w1", "r1")
    assert record["time"]


def test_text_for_a_terminal_json_otherwise() -> None:
    assert use_json("auto", io.StringIO())
    assert not use_json("auto", Terminal())
    assert use_json("json", Terminal())
    assert not use_json("text", io.StringIO())
    with pytest.raises(ValueError, match="log format"):
        use_json("yaml", io.StringIO())
    out = Terminal()
    configure_logging("INFO", "auto", out)
    logging.getLogger("tflow.test").info("plain", extra={"event_id": "e1"})
    assert out.getvalue().rstrip().endswith("INFO tflow.test: plain")


def test_the_sdks_workflow_and_activity_ids_become_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logger = logging.getLogger("tflow.test")
    activity = {"workflow_id": "w1", "workflow_run_id": "r1", "namespace": "temporal-ns"}
    logger.info("from an activity", extra={"temporal_activity": activity})
    workflow = {"workflow_id": "w2", "run_id": "r2", "namespace": "temporal-ns"}
    # A line's own ids win over the SDK's.
    logger.info("own ids", extra={"temporal_workflow": workflow, "workflow_id": "mine"})
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["workflow_id"], first["run_id"]) == ("w1", "r1")
    # Temporal's namespace is not the tenant's `namespace` field.
    assert "namespace" not in first
    assert (second["workflow_id"], second["run_id"]) == ("mine", "r2")
