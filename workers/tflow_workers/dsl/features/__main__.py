"""`python -m tflow_workers.dsl.features --docs docs/dsl-support.md [--check]`: write (or
check) the feature table of the DSL documentation from `FEATURES`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tflow_workers.dsl.features import FEATURES, REGENERATE_COMMAND, MarkersMissing, render_page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tflow_workers.dsl.features",
        description="Write the supported-feature table of the DSL documentation from FEATURES.",
    )
    parser.add_argument("--docs", type=Path, required=True, help="the page holding the table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the page's table differs from FEATURES",
    )
    args = parser.parse_args(argv)
    try:
        current = args.docs.read_text(encoding="utf-8")
        expected = render_page(current)
    except (OSError, MarkersMissing) as error:
        print(f"{args.docs}: {error}", file=sys.stderr)
        return 1
    if args.check:
        if current != expected:
            print(
                f"{args.docs}: the feature table is out of date: run `{REGENERATE_COMMAND}`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.docs}: feature table up to date ({len(FEATURES)} features)")
        return 0
    if current != expected:
        args.docs.write_text(expected, encoding="utf-8")
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
