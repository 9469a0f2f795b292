"""The supported-feature table: its documentation is generated from it, and every feature
it marks supported is run through the engine by an integration test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tflow_workers.dsl.features import (
    BEGIN_MARKER,
    END_MARKER,
    FEATURES,
    SUPPORTED,
    UNSUPPORTED,
    MarkersMissing,
    render_page,
    render_table,
)
from tflow_workers.dsl.features.__main__ import main

_ROW = re.compile(r"^\|\s*`(?P<key>[a-z0-9_.]+)`\s*\|\s*(?P<status>yes|no)\s*\|", re.MULTILINE)
# A test runs a document through the real engine when it gets one of these fixtures: the
# in-process worker harness, or a client of the dev server it starts its own worker on.
_ENGINE_FIXTURES = frozenset({"engine", "temporal_client", "client"})


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


def test_the_table_shows_why_a_feature_is_refused() -> None:
    table = render_table()
    grpc = next(line for line in table.splitlines() if line.startswith("| `call.grpc`"))
    assert grpc == (
        "| `call.grpc` | no | needs proto resolution and a gRPC client. "
        "Validation reports: *'grpc' calls are not supported yet* |"
    )


def test_render_page_replaces_only_the_generated_section() -> None:
    page = f"# Title\n\nprose\n\n{BEGIN_MARKER}\nstale rows\n{END_MARKER}\n\nmore prose\n"
    rendered = render_page(page)
    assert rendered.startswith("# Title\n\nprose\n\n" + BEGIN_MARKER)
    assert rendered.endswith(END_MARKER + "\n\nmore prose\n")
    assert "stale rows" not in rendered
    assert render_page(rendered) == rendered
    with pytest.raises(MarkersMissing):
        render_page("# no markers here\n")


def test_command_writes_then_checks_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "dsl-support.md"
    page.write_text(f"intro\n{BEGIN_MARKER}\n| `old` | yes | gone |\n{END_MARKER}\n")
    assert main(["--docs", str(page), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--docs", str(page)]) == 0
    assert "| `old` |" not in page.read_text()
    assert main(["--docs", str(page), "--check"]) == 0
    page.write_text("no markers\n")
    assert main(["--docs", str(page), "--check"]) == 1


def test_the_committed_page_is_up_to_date(repo_root: Path) -> None:
    page = repo_root / "docs" / "dsl-support.md"
    text = page.read_text()
    assert render_page(text) == text


# --- every "yes" is run ------------------------------------------------------------------


def _runs_marker(decorator: ast.expr) -> ast.Call | None:
    if (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "runs"
        and isinstance(decorator.func.value, ast.Attribute)
        and decorator.func.value.attr == "mark"
    ):
        return decorator
    return None


def engine_tests_by_feature(root: Path) -> dict[str, list[str]]:
    """Feature key -> the engine tests marked as running it, read from their source."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "tests" / "integration" / "engine").glob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            test_id = f"{path.name}::{node.name}"
            for decorator in node.decorator_list:
                marker = _runs_marker(decorator)
                if marker is None:
                    continue
                assert node.name.startswith("test_"), f"{test_id} is marked but is no test"
                fixtures = {arg.arg for arg in node.args.args}
                assert fixtures & _ENGINE_FIXTURES, (
                    f"{test_id} is marked runs(...) but takes none of {sorted(_ENGINE_FIXTURES)}"
                )
                for arg in marker.args:
                    assert isinstance(arg, ast.Constant), f"{test_id}: runs() takes literals"
                    assert isinstance(arg.value, str), f"{test_id}: runs() takes feature keys"
                    found.setdefault(arg.value, []).append(test_id)
    return found


def test_every_supported_feature_is_run_by_an_engine_test(repo_root: Path) -> None:
    runs = engine_tests_by_feature(repo_root)
    unknown = sorted(set(runs) - set(FEATURES))
    assert not unknown, f"runs(...) names features the table does not have: {unknown}"
    refused = sorted(set(runs) & UNSUPPORTED)
    assert not refused, f"runs(...) names features the table marks unsupported: {refused}"
    untested = sorted(SUPPORTED - set(runs))
    assert not untested, f"supported features no engine test runs: {untested}"
