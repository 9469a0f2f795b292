"""`tflow` builds its whole parser (every command, `--help`) without loading the heavy
parts: the DSL's document models, the Temporal SDK, an HTTP client. Each command imports
what it uses when it runs, so `tflow --help` and the commands that read no document start
in a fraction of the time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tflow_workers.dsl.models", "temporalio", "httpx", "pydantic", "aiohttp")

PROBE = f"""
import json, sys
from tflow_cli.main import parser
parser()
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_building_the_parser_loads_none_of_the_heavy_modules() -> None:
    # A fresh interpreter: this test process has imported all of them already.
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(probe.stdout) == []


def test_help_still_lists_every_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "tflow_cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for command in ("run", "validate", "convert", "graph", "runs", "signal", "send", "api"):
        assert command in shown
