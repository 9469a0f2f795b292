"""The operator hands its log format (TFLOW_LOG_FORMAT, the chart's `logFormat`) on to the
worker and listener pods it makes, and those processes' own parsers take it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tflow_listeners.__main__ import build_parser
from tflow_operator.api.listener import ListenerSpec
from tflow_operator.config import Config, ConfigError
from tflow_operator.listener_children import listener_deployment
from tflow_operator.model import definition_info
from tflow_operator.workers import merge_settings, worker_deployment
from tflow_workers.worker import parse_args

CONFIG = Config(worker_image="registry.example/worker:test", listener_image="l:test")
WORKFLOW = {
    "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
    "do": [{"a": {"set": {"x": 1}}}],
}


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def worker_env(config: Config) -> dict[str, str]:
    body = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"taskQueue": "q", "workflow": WORKFLOW},
    }
    members = [definition_info(body)]
    settings = merge_settings(members, config.worker_image)
    return container_env(worker_deployment("ns", "q", members, settings, config))


def listener_env(config: Config) -> dict[str, str]:
    spec = ListenerSpec.model_validate({"type": "webhook", "webhook": {"path": "/events"}})
    return container_env(listener_deployment("hooks", "ns", "u", spec, config))


def test_the_operators_log_format_reaches_worker_and_listener_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config.from_env({"TFLOW_LOG_FORMAT": "json"})
    assert config.log_format == "json"
    json_config = dataclasses.replace(CONFIG, log_format="json")
    worker, listener = worker_env(json_config), listener_env(json_config)
    assert worker["TFLOW_LOG_FORMAT"] == listener["TFLOW_LOG_FORMAT"] == "json"

    # The processes in those pods read it as their default.
    monkeypatch.setenv("TFLOW_LOG_FORMAT", worker["TFLOW_LOG_FORMAT"])
    assert parse_args(["--task-queue", "q"]).log_format == "json"
    assert build_parser("webhook").parse_args(["webhook"]).log_format == "json"


def test_unset_leaves_the_pods_to_choose_and_a_bad_value_is_refused() -> None:
    assert "TFLOW_LOG_FORMAT" not in worker_env(CONFIG)
    assert "TFLOW_LOG_FORMAT" not in listener_env(CONFIG)
    with pytest.raises(ConfigError, match="TFLOW_LOG_FORMAT"):
        Config.from_env({"TFLOW_LOG_FORMAT": "yaml"})
