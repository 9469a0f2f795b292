"""The process commands the operator writes into pods name what the packages really
provide: the worker's console script, the listeners' module and every source of it."""

from __future__ import annotations

import importlib
import tomllib

from tflow_devstack.tools import REPO_ROOT
from tflow_listeners.__main__ import SOURCES as LISTENER_MODULES
from tflow_listeners.__main__ import build_parser
from tflow_operator.api.listener import ListenerType
from tflow_operator.listener_children import SOURCES as OPERATOR_SOURCES
from tflow_workers.commands import LISTENER_COMMAND, LISTENER_SOURCES, WORKER_COMMAND
from tflow_workers.worker import cli


def test_the_worker_command_is_the_worker_console_script() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (script,) = WORKER_COMMAND
    module, function = scripts[script].split(":")
    assert getattr(importlib.import_module(module), function) is cli


def test_every_listener_type_runs_a_source_the_listener_module_has() -> None:
    assert LISTENER_COMMAND[-1] == "tflow_listeners"
    assert set(OPERATOR_SOURCES) == set(ListenerType)
    assert sorted(OPERATOR_SOURCES.values()) == sorted(LISTENER_SOURCES)
    assert list(LISTENER_MODULES) == list(LISTENER_SOURCES)
    for source in LISTENER_SOURCES:
        module = importlib.import_module(LISTENER_MODULES[source])
        assert callable(module.add_arguments)
        parser = build_parser(source)
        assert parser.prog == " ".join(LISTENER_COMMAND)
