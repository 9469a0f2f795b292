"""Command line for the converters: `python -m tflow_workers.convert FILE` prints the SW 1.0
document as YAML; `--mermaid` or `--svg` print a picture of it instead. FILE may be JSON or
YAML, or `-` for standard input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from tflow_workers.convert import FORMATS, ConversionError, Format, convert
from tflow_workers.dsl.yamlio import YamlError, load_yaml
from tflow_workers.graph import to_mermaid, to_svg


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tflow_workers.convert",
        description="Convert a seed-format workflow (POC step map or Flov7 node graph) "
        "into a Serverless Workflow 1.0 document.",
    )
    parser.add_argument("file", help="input file (JSON or YAML), or - for stdin")
    parser.add_argument("--format", choices=FORMATS, default="auto", dest="fmt")
    parser.add_argument("--name", help="document.name (default: derived from the input)")
    parser.add_argument("--namespace", default="default", help="document.namespace")
    picture = parser.add_mutually_exclusive_group()
    picture.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    picture.add_argument("--svg", action="store_true", help="print an SVG picture")
    args = parser.parse_args(argv)

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        # JSON is YAML, so one loader reads both.
        data: Any = load_yaml(text)
        document = convert(data, cast(Format, args.fmt), name=args.name, namespace=args.namespace)
    except (YamlError, ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.mermaid:
        sys.stdout.write(to_mermaid(document))
    elif args.svg:
        sys.stdout.write(to_svg(document))
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
