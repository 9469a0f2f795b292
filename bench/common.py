"""What the benchmark scripts share: the dev server in a throw-away directory, the HTTP
client that posts events, simple statistics, reading a process's CPU time and memory from
/proc, and the verdict of each measure against its target (`--strict`, `--results`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tflow_devstack.temporal import TemporalServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def default_server_dir() -> Path | None:
    """A tmpfs for the dev server's SQLite file when the machine has one: on a disk every
    workflow task waits for SQLite's fsyncs, and that, not the code under test, sets the
    pace."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None


def add_server_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--server-dir`: where the benchmark's dev server keeps its SQLite file."""
    parser.add_argument(
        "--server-dir",
        type=Path,
        default=default_server_dir(),
        help="where the dev server keeps its SQLite file (default: a tmpfs when there is one)",
    )


@contextlib.contextmanager
def dev_server(base: Path | None = None) -> Iterator[TemporalServer]:
    """The real Temporal dev server (with the engine's search attributes) on free ports,
    its state in a temporary directory under `base` (default: the system's temporary
    directory), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tflow-bench-", dir=base) as workdir:
        server = TemporalServer(Path(workdir), headless=True).start()
        try:
            yield server
        finally:
            server.stop()


def http_session(connections: int) -> aiohttp.ClientSession:
    """The client that posts events to a listener. It shares the machine's cores with what
    is measured, so it has to cost little: httpx's AsyncClient used 2.3 ms of CPU per post
    here, more than the webhook listener it was loading (1.5 ms); aiohttp's about 0.4 ms."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def post_json(http: aiohttp.ClientSession, url: str, body: Any, expect: int) -> Any:
    """POST `body` as JSON and return the JSON answer; a RuntimeError with the answer
    unless its status is `expect`."""
    async with http.post(url, json=body) as response:
        text = await response.text()
        if response.status != expect:
            raise RuntimeError(f"{url} answered {response.status}: {text}")
        return json.loads(text) if text else None


def stop_on_sigterm() -> None:
    """SIGTERM cancels the running benchmark (like Ctrl-C), so that its dev server and
    worker processes are stopped and its temporary directories removed."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def workflow_task_failure(handle: WorkflowHandle[Any, Any]) -> str | None:
    """Why the run's workflow task failed, if it did (e.g. the workflow code does not
    import); the run then retries forever rather than fail, so waiting on it would hang."""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            return failure.message or "workflow task failed"
    return None


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p90: fraction=0.9)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (current) and VmHWM (peak) of a process, in MB (MiB)."""
    result: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            result[key] = int(value.split()[0]) / 1024
    return result


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        )

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    """`--strict` (exit non-zero when a measure misses its target) and `--results` (append
    each verdict as a JSON line, for `bench/report.py`)."""
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a measure misses its target"
    )
    parser.add_argument(
        "--results", type=Path, help="append each measure and its verdict to this JSON-lines file"
    )


@dataclass
class Verdict:
    """One measure of a bench script against its target."""

    script: str
    measure: str
    value: str
    target: str
    met: bool


@dataclass
class Verdicts:
    """The verdicts a bench script collects while it runs; `finish` prints them, writes
    them to `--results` and gives the exit code `--strict` asks for."""

    script: str
    items: list[Verdict] = field(default_factory=list)

    def check(self, measure: str, value: str, target: str, met: bool) -> Verdict:
        verdict = Verdict(self.script, measure, value, target, met)
        self.items.append(verdict)
        return verdict

    def finish(self, args: argparse.Namespace) -> int:
        if not self.items:
            return 0
        print()
        print_table(
            ["measure", "value", "target", "met"],
            [[v.measure, v.value, v.target, "yes" if v.met else "NO"] for v in self.items],
        )
        results: Path | None = getattr(args, "results", None)
        if results is not None:
            with results.open("a", encoding="utf-8") as out:
                for verdict in self.items:
                    out.write(json.dumps(asdict(verdict)) + "\n")
        missed = [v for v in self.items if not v.met]
        return 1 if missed and getattr(args, "strict", False) else 0
