"""The image: one Dockerfile, linted, non-root, with an entry point for every component.

No Docker engine runs where this project is built, so the image is checked statically:
hadolint's rules, and that what the Dockerfile copies and runs exists in the project."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_and_non_root() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) == 2
    assert all("slim" in s for s in stages)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user == ["65532:65532"]
    # The chart and the operator's pods run as that uid with a read-only root file system.
    values = (ROOT / "charts" / "temporal-flow" / "values.yaml").read_text()
    assert "runAsUser: 65532" in values
    assert "readOnlyRootFilesystem: true" in values


def test_copied_packages_and_entry_points_exist() -> None:
    text = DOCKERFILE.read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)/ ", text, re.MULTILINE):
        assert (ROOT / source).is_dir(), source
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for command in ("tflow", "tflow-operator", "tflow-worker", "tflow-listener"):
        assert command in scripts
    chart = ROOT / "charts" / "temporal-flow" / "templates"
    used = set(
        re.findall(
            r'command: \["(tflow[-a-z]*)"', "".join(p.read_text() for p in chart.rglob("*.yaml"))
        )
    )
    assert used <= set(scripts), used - set(scripts)
