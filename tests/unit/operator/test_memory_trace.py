"""The operator's allocation trace (``TFLOW_MEMORY_PROFILE``, for ``bench_operator.py
--memory-profile``): the snapshot written is the one near the largest traced size, not the
last one, and tracing stops with it."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from tflow_operator.__main__ import _trace_memory


def test_the_snapshot_kept_is_the_largest(tmp_path: Path) -> None:
    path = tmp_path / "operator.snap"
    finish = _trace_memory(str(path))
    try:
        burst = [bytes(1024) for _ in range(20_000)]  # about 20 MB, then let go
        time.sleep(1.5)  # the watcher looks once a second
        del burst
        time.sleep(1.5)
    finally:
        finish()
    assert not tracemalloc.is_tracing()
    snapshot = tracemalloc.Snapshot.load(str(path))
    here = snapshot.filter_traces([tracemalloc.Filter(True, __file__)])
    assert sum(stat.size for stat in here.statistics("filename")) > 20 * 1024 * 1024
