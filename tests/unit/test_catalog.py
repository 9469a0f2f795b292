"""The custom function catalog: entry points of installed packages and explicit lists."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tflow_workers.engine.catalog import CatalogError, discover, parse_specs


@pytest.fixture
def installed_team_package(tmp_path: Path) -> Iterator[None]:
    """A package installed the ordinary way: a module plus dist-info with entry points."""
    (tmp_path / "team_payments.py").write_text(
        "def charge(args):\n    return {'charged': args['amount']}\n"
    )
    dist = tmp_path / "team_payments-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: team-payments\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[temporalflow.functions]\ncharge-payment = team_payments:charge\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("team_payments", None)


def test_entry_points_register_functions(installed_team_package: None) -> None:
    functions = discover()
    assert functions["charge-payment"]({"amount": 5}) == {"charged": 5}


def test_explicit_functions_override_entry_points(installed_team_package: None) -> None:
    functions = discover(parse_specs(["charge-payment=test_functions:add"]))
    assert functions["charge-payment"]({"a": 1, "b": 2}) == {"sum": 3}


def test_specs_are_comma_separated_and_repeatable() -> None:
    assert parse_specs(["a=m:f, b=m:g", "", "c=n:h"]) == {"a": "m:f", "b": "m:g", "c": "n:h"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nameonly", "function 'nameonly' is not of the form name=module:callable"),
        ("x=nomodule", "function reference 'nomodule' is not of the form module:callable"),
        ("x=no_such_module_zz:f", "cannot load function 'no_such_module_zz:f'"),
        ("x=test_functions:missing", "cannot load function 'test_functions:missing'"),
        ("x=test_functions:CALLS", "function 'test_functions:CALLS' is not callable"),
    ],
)
def test_bad_references_name_the_function(spec: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        discover(parse_specs([spec]))
