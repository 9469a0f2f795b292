"""The worker's orchestrator mode: its flags, environment and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE
from tflow_workers.worker import parse_args


def test_orchestrator_mode_defaults_to_the_router_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TFLOW_TASK_QUEUE", raising=False)
    args = parse_args(
        ["--serve-orchestrator", "--routes-dir", str(tmp_path), "--definitions-dir", "d"]
    )
    assert (args.serve_orchestrator, args.task_queue, args.routes_dir) == (
        True,
        DEFAULT_ROUTER_TASK_QUEUE,
        tmp_path,
    )
    with_queue = ["--routes-dir", "r", "--definitions-dir", "d", "--task-queue", "q"]
    assert parse_args(["--serve-orchestrator", *with_queue]).task_queue == "q"


def test_orchestrator_mode_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TFLOW_TASK_QUEUE", raising=False)
    monkeypatch.setenv("TFLOW_SERVE_ORCHESTRATOR", "1")
    monkeypatch.setenv("TFLOW_ROUTES_DIR", str(tmp_path))
    monkeypatch.setenv("TFLOW_DEFINITIONS_DIR", str(tmp_path))
    args = parse_args([])
    assert (args.serve_orchestrator, args.routes_dir) == (True, tmp_path)


def test_orchestrator_mode_needs_a_routing_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TFLOW_ROUTES_DIR", raising=False)
    monkeypatch.delenv("TFLOW_DEFINITIONS_DIR", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["--serve-orchestrator", "--definitions-dir", "d"])
    assert "needs --routes-dir (or TFLOW_ROUTES_DIR)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--serve-orchestrator", "--routes-dir", "r"])
    assert "needs --definitions-dir (or TFLOW_DEFINITIONS_DIR)" in capsys.readouterr().err


def test_a_flow_worker_still_needs_its_task_queue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TFLOW_TASK_QUEUE", raising=False)
    monkeypatch.delenv("TFLOW_SERVE_ORCHESTRATOR", raising=False)
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--task-queue" in capsys.readouterr().err
    monkeypatch.setenv("TFLOW_TASK_QUEUE", "orders")
    assert parse_args([]).task_queue == "orders"
