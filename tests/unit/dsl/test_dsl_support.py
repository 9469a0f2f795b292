"""The supported-feature table and its documentation agree."""

from __future__ import annotations

import re
from pathlib import Path

from tflow_workers.dsl.support import FEATURES, SUPPORTED, UNSUPPORTED

_ROW = re.compile(r"^\|\s*`(?P<key>[a-z0-9_.]+)`\s*\|\s*(?P<status>yes|no)\s*\|", re.MULTILINE)


def test_every_unsupported_feature_has_a_message() -> None:
    for feature in FEATURES.values():
        assert bool(feature.message) is not feature.supported, feature.key
        assert feature.summary


def test_supported_and_unsupported_partition_the_table() -> None:
    assert SUPPORTED.isdisjoint(UNSUPPORTED)
    assert set(FEATURES) == SUPPORTED | UNSUPPORTED
    assert {"call.http", "call.function", "run.workflow", "task.listen"} <= SUPPORTED
    assert {"call.grpc", "run.container", "run.shell", "schedule.on"} <= UNSUPPORTED


def test_docs_list_every_feature_with_its_status(repo_root: Path) -> None:
    text = (repo_root / "docs" / "dsl-support.md").read_text()
    documented = {match["key"]: match["status"] == "yes" for match in _ROW.finditer(text)}
    assert documented == {key: feature.supported for key, feature in FEATURES.items()}
