"""The image: one Dockerfile, linted, non-root, with an entry point for every component.

These check the Dockerfile statically (hadolint's rules, its stages, that what it copies
exists and is what the image tag hashes); tests/integration/test_image.py builds it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tflow_devstack import images, tools

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    name: str
    parent: str
    copies: list[str] = field(default_factory=list)  # sources from the build context
    copies_from: list[str] = field(default_factory=list)  # stages copied from
    runs: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


def stages() -> dict[str, Stage]:
    # Join continuation lines, so each instruction is one line.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        instruction = words[0].upper()
        if instruction == "FROM":
            assert len(words) == 4, f"every stage is named: {line}"
            assert words[2].upper() == "AS", line
            current = Stage(name=words[3], parent=words[1])
            found[current.name] = current
        elif current is None:
            continue
        elif instruction == "COPY":
            if words[1].startswith("--from="):
                current.copies_from.append(words[1].removeprefix("--from="))
            else:
                current.copies.extend(w.rstrip("/") for w in words[1:-1])
        elif instruction == "RUN":
            current.runs.append(" ".join(words[1:]))
        elif instruction == "USER":
            current.users.append(words[1])
    return found


def lineage(all_stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and every stage it is built from or copies from."""
    seen: list[Stage] = []
    pending = [name]
    while pending:
        stage = all_stages.get(pending.pop())
        if stage is None or stage in seen:
            continue
        seen.append(stage)
        pending.extend([stage.parent, *stage.copies_from])
    return seen


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_a_build_argument_defaulting_to_the_official_slim_image_by_digest() -> None:
    text = DOCKERFILE.read_text()
    # From a registry, the official image's multi-platform index, pinned by its digest.
    assert re.search(
        r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$", text, re.MULTILINE
    )
    all_stages = stages()
    for stage in all_stages.values():
        # Every stage starts from the chosen base or from an earlier stage: no other image.
        assert stage.parent == "${BASE_IMAGE}" or stage.parent in all_stages, stage


def test_uv_is_installed_from_the_hashed_lock_at_the_one_pinned_version() -> None:
    all_stages = stages()
    # uv comes from a venv of its own (Debian's python refuses a system pip install), from
    # the lock whose files' hashes pip checks, the same lock `make venv` installs from.
    (uv_install,) = [r for s in all_stages.values() for r in s.runs if "uv-requirements" in r]
    assert "python3 -m venv" in uv_install
    assert "--require-hashes" in uv_install
    assert "hack/uv-requirements.txt" in all_stages["uv"].copies
    assert "-r hack/uv-requirements.txt" in (ROOT / "Makefile").read_text()
    # One version: the lock's is hack/versions.env's, and nothing else names one.
    lock = (ROOT / "hack" / "uv-requirements.txt").read_text()
    assert re.findall(r"^uv==(\S+) ", lock, re.MULTILINE) == [tools.versions()["UV_VERSION"]]
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", lock)) > 1
    assert not re.search(r"^ARG UV_VERSION", DOCKERFILE.read_text(), re.MULTILINE)


def test_targets_non_root_and_default_is_production() -> None:
    all_stages = stages()
    assert list(all_stages)[-1] == "production"  # the default target of a plain build
    assert set(images.TARGETS) <= set(all_stages)
    for target in images.TARGETS:
        users = [u for s in lineage(all_stages, target) for u in s.users]
        assert users == ["65532:65532"], (target, users)
    # The chart and the operator's pods run as that uid with a read-only root file system.
    values = (ROOT / "charts" / "temporal-flow" / "values.yaml").read_text()
    assert "runAsUser: 65532" in values
    assert "readOnlyRootFilesystem: true" in values


def test_production_has_neither_devstack_samples_nor_extras() -> None:
    all_stages = stages()
    production = lineage(all_stages, "production")
    copied = {c for s in production for c in s.copies}
    assert not copied & {"devstack", "samples", "tests", "bench"}, copied
    syncs = [r for s in production for r in s.runs if "uv sync" in r]
    assert syncs
    for sync in syncs:
        assert "--extra" not in sync, sync
        assert "--all-extras" not in sync, sync
        assert "--frozen" in sync, sync
    # The dev stack's console script is declared by the project; the image drops it.
    assert any("rm /opt/tflow/bin/tflow-dev" in r for r in syncs)
    samples = lineage(all_stages, "samples")
    assert "samples" in {c for s in samples for c in s.copies}
    assert any("--extra samples" in r for s in samples for r in s.runs)


def test_image_tag_hashes_what_each_target_copies() -> None:
    """A changed file that goes into an image must change its tag: the trees and files each
    target's stages copy are exactly the ones tflow_devstack.images hashes."""
    all_stages = stages()
    for target in images.TARGETS:
        copied = {c for s in lineage(all_stages, target) for c in s.copies}
        for source in copied:
            assert (ROOT / source).exists(), source
        hashed_trees = set(images._TREES[target])
        hashed_files = set(images._COMMON_FILES) - {"Dockerfile", ".dockerignore"}
        assert copied == hashed_trees | hashed_files, (target, copied)


def test_tag_changes_with_the_inputs_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "repo"
    for name in (*images._COMMON_FILES, "operator/tflow_operator/__init__.py"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text((ROOT / name).read_text() if "/" not in name else "")
    for name in ("workers", "listeners", "cli", "samples"):
        (tree / name / "pkg").mkdir(parents=True)
        (tree / name / "pkg" / "mod.py").write_text(f"# {name}\n")
    monkeypatch.setattr(images, "REPO_ROOT", tree)
    base = "localhost/temporal-flow-base:bookworm-test"
    production = images.image_tag("production", base)
    samples = images.image_tag("samples", base)
    assert production != samples
    assert production != images.image_tag("production", base + "x")
    # The build's context is a copy of exactly the hashed files: same tag, no samples.
    context = tmp_path / "context"
    images._snapshot("production", context)
    assert images.image_tag("production", base, context) == production
    assert not (context / "samples").exists()
    # What the build context ignores does not count.
    (tree / "workers" / "pkg" / "__pycache__").mkdir()
    (tree / "workers" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"x")
    assert images.image_tag("production", base) == production
    # A change to the samples leaves the production tag alone.
    (tree / "samples" / "pkg" / "mod.py").write_text("changed = True\n")
    assert images.image_tag("production", base) == production
    assert images.image_tag("samples", base) != samples
    # A change to anything production copies changes its tag; so does the lock file.
    (tree / "workers" / "pkg" / "mod.py").write_text("changed = True\n")
    changed = images.image_tag("production", base)
    assert changed != production
    (tree / "uv.lock").write_text("# changed\n")
    assert images.image_tag("production", base) not in (production, changed)


def test_entry_points_exist_and_the_chart_uses_only_them() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for command in ("tflow", "tflow-operator", "tflow-worker", "tflow-listener"):
        assert command in scripts
    chart = ROOT / "charts" / "temporal-flow" / "templates"
    used = set(
        re.findall(
            r'command: \["(tflow[-a-z]*)"', "".join(p.read_text() for p in chart.rglob("*.yaml"))
        )
    )
    assert used <= set(scripts) - {"tflow-dev"}, used - set(scripts)
