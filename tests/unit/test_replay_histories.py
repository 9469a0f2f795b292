"""Runs recorded by earlier versions of the interpreter still replay on this one."""

from __future__ import annotations

from pathlib import Path

import pytest
from histories import HISTORY_DIR, load, replayer

RECORDED = sorted(HISTORY_DIR.glob("*.json"))


def test_histories_are_recorded() -> None:
    # `make record-histories` writes them; an empty folder would make the test below vacuous.
    assert len(RECORDED) >= 5, f"expected recorded histories in {HISTORY_DIR}"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays(path: Path) -> None:
    result = await replayer().replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
