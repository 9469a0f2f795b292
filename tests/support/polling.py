"""Waiting in tests: poll a check until it holds or a deadline passes, then fail saying
what was awaited. One helper, so every test waits (and fails) the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.3,
    what: str = "",
) -> T:
    """Poll ``check`` until it returns something truthy, and return that; an
    AssertionError from ``check`` counts as not yet (its message is reported)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = None
        except AssertionError as err:
            last = err
        if time.monotonic() > deadline:
            subject = f"{what}: " if what else ""
            detail = f"; last error: {last}" if last else ""
            raise AssertionError(f"{subject}not true after {timeout:.0f}s{detail}")
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[bool]],
    what: str,
    seconds: float = 30.0,
    interval: float = 0.2,
) -> None:
    """The same for an async check (without blocking the event loop)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)
