"""Documents are read as YAML 1.2 wherever they are read: an unquoted `on:` is the key
"on", never the boolean a YAML 1.1 reader makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflow_cli.documents import load_all, single_workflow
from tflow_workers.dsl.validate import validate_document
from tflow_workers.dsl.yamlio import YamlError, load_yaml, load_yaml_all
from tflow_workers.engine.activities import DirectoryRegistry
from tflow_workers.engine.model import ResolveRequest

EVENT_SCHEDULED = """\
document: {dsl: '1.0.0', namespace: test, name: on-event, version: '1.0.0'}
schedule:
  on:
    one:
      with:
        type: com.example.started
do:
  - flag:
      set:
        on: yes
        off: no
        started: 2024-05-01
"""


def test_unquoted_on_is_the_string_key_on() -> None:
    data = load_yaml(EVENT_SCHEDULED)
    assert "on" in data["schedule"]
    assert data["do"][0]["flag"]["set"] == {"on": "yes", "off": "no", "started": "2024-05-01"}


def test_a_document_with_on_is_refused_by_name_not_as_a_bad_key() -> None:
    issues = [str(issue) for issue in validate_document(load_yaml(EVENT_SCHEDULED))]
    assert issues == [
        "schedule.on: event-triggered schedules are not supported: "
        "start this workflow from an EventRoute"
    ]


def test_the_cli_reads_yaml_1_2(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(EVENT_SCHEDULED)
    assert "on" in load_all(path)[0]["schedule"]
    assert single_workflow(path).document["do"][0]["flag"]["set"]["on"] == "yes"


def test_worker_definitions_read_yaml_1_2(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(EVENT_SCHEDULED)
    resolved = DirectoryRegistry(tmp_path).resolve(
        ResolveRequest(namespace="test", name="on-event")
    )
    assert resolved is not None
    assert "on" in resolved.document["schedule"]


def test_multi_document_and_errors() -> None:
    assert load_yaml_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(YamlError, match="line 1"):
        load_yaml("a: [")


def test_a_yaml_1_1_reading_is_explained_not_reported_as_bad_keys() -> None:
    # What a YAML 1.1 reader hands over for the same text: `on` became the boolean true.
    data = load_yaml(EVENT_SCHEDULED)
    data["schedule"] = {True: data["schedule"]["on"]}
    issues = [str(issue) for issue in validate_document(data)]
    assert issues == [
        "schedule.true: the key is the boolean true, not a string: a YAML 1.1 reader "
        "(kubectl, PyYAML) reads an unquoted on, off, yes or no key so; quote it ('on':)"
    ]
