"""`make bench`: runs every bench script with sizes that finish in about 16 minutes on
a two-core machine (the last, bench_cluster.py, starts a cluster of real pods: root, and
no other node on the machine), collects each measure's verdict (`--results`), and writes them
as one markdown table (`bench-results.md` by default) with the commit they came from."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each script with the arguments `make bench` gives it; the sizes are the ones the targets
# in docs/benchmarks.md are set at.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("bench_listener.py", "--sqs"),
    # Nine batches of ten: the 10-at-once ratio of three batches moved from 0.91 to 1.22
    # between runs of the same code.
    ("bench_interpreter.py", "--runs", "30", "--rounds", "9"),
    ("bench_worker_memory.py", "--runs", "1000"),
    ("bench_operator.py",),
    # The slowest (a whole cluster on a real node, about 6 minutes): last. Four rounds of
    # the events: the ratio of two moved from 0.83 to 0.93 between rounds of one run.
    ("bench_cluster.py", "--rounds", "4"),
)


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results.md")
    parser.add_argument("--only", help="run only the scripts whose name contains this")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    results = args.out.with_suffix(".jsonl")
    results.unlink(missing_ok=True)
    failed: list[str] = []
    started = time.monotonic()
    for script, *extra in SCRIPTS:
        if args.only and args.only not in script:
            continue
        print(f"==> {script} {' '.join(extra)}", flush=True)
        command = [sys.executable, str(ROOT / "bench" / script), *extra, "--results", str(results)]
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            failed.append(script)

    verdicts = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    lines = [
        f"Commit {commit()}, {time.monotonic() - started:.0f} s.",
        "",
        "| script | measure | value | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {v['script']} | {v['measure']} | {v['value']} | {v['target']} | "
        f"{'yes' if v['met'] else '**no**'} |"
        for v in verdicts
    ]
    if failed:
        lines += ["", "Did not finish: " + ", ".join(failed)]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    missed = any(not v["met"] for v in verdicts)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
