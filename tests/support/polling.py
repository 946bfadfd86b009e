"""Waiting, bounded, for what a test can read only by awaiting it (the store, the ledger):
the async twin of tests.fakes.slack.wait_for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until_equal(read: Callable[[], Awaitable[Any]], expected: Any, seconds: float = 10) -> None:
    """Await `read()` again and again until it gives `expected`; fails naming what it gave last."""
    deadline = time.monotonic() + seconds
    while (got := await read()) != expected:
        assert time.monotonic() < deadline, f"got {got!r}, expected {expected!r}"
        await asyncio.sleep(0.02)
