"""``make crds``: writes the CustomResourceDefinitions (:mod:`tflow_operator.api.crds`)
and the CRD reference (:mod:`tflow_operator.api.crddocs`), or checks them for drift::

    python -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md
    python -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md --check
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tflow_operator.api.crddocs import render_docs
from tflow_operator.api.crds import GENERATED_HEADER, KINDS, REGENERATE_COMMAND, generate_crds


def _expected(out_dir: Path, docs: Path | None) -> dict[Path, str]:
    files = {out_dir / name: text for name, text in generate_crds().items()}
    if docs is not None:
        files[docs] = render_docs()
    return files


def _stale(out_dir: Path, expected: Mapping[Path, str]) -> list[Path]:
    """Generated CRD files (they carry the header) that no model produces any more."""
    if not out_dir.is_dir():
        return []
    return [
        path
        for path in sorted(out_dir.glob("*.yaml"))
        if path not in expected and GENERATED_HEADER in path.read_text(encoding="utf-8")[:200]
    ]


def check(out_dir: Path, docs: Path | None) -> list[str]:
    """Problems found comparing the files on disk with what the models generate."""
    expected = _expected(out_dir, docs)
    problems: list[str] = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != text:
            diff = list(
                difflib.unified_diff(
                    actual.splitlines(),
                    text.splitlines(),
                    fromfile=f"{path} (on disk)",
                    tofile=f"{path} (generated)",
                    lineterm="",
                )
            )
            shown = diff[:60] + (
                [f"... {len(diff) - 60} more diff lines"] if len(diff) > 60 else []
            )
            problems.append(f"{path}: differs from the models\n" + "\n".join(shown))
    problems += [f"{path}: stale, no model generates it" for path in _stale(out_dir, expected)]
    return problems


def write(out_dir: Path, docs: Path | None) -> list[Path]:
    """Write every generated file (only those that changed); remove stale ones."""
    expected = _expected(out_dir, docs)
    changed: list[Path] = []
    for path in _stale(out_dir, expected):
        path.unlink()
        changed.append(path)
    for path, text in expected.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tflow_operator.api.crdgen",
        description="Generate the Temporal Flow CRDs (and their reference) from the API models.",
    )
    parser.add_argument("--out", type=Path, default=Path("crds"), help="CRD directory")
    parser.add_argument("--docs", type=Path, help="also write the Markdown CRD reference here")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files differ from what the models generate",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out, args.docs)
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(
                f"generated files are out of date: run `make crds` ({REGENERATE_COMMAND})",
                file=sys.stderr,
            )
            return 1
        print(f"{len(KINDS)} CRDs up to date in {args.out}")
        return 0
    for path in write(args.out, args.docs):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
