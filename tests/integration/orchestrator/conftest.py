"""The orchestrator tests' fixture: the harness of `orchestra`, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from orchestra import Orchestra, orchestra
from temporalio.client import Client


@pytest.fixture
async def orch(
    temporal_client: Client, tmp_path: Path, task_queue: str
) -> AsyncIterator[Orchestra]:
    async with orchestra(temporal_client, tmp_path, task_queue) as o:
        yield o
