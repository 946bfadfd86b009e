"""A stand-in for asyncio.sleep that records the waits asked for and returns at once,
so a test can check a back-off without waiting it out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class RecordedWaits:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # still a scheduling point, as a real sleep is


class ControlledDeadlines:
    """A stand-in for asyncio.timeout: records the seconds asked for and never expires
    by itself, except a deadline of `at_once` seconds, which is over as soon as it
    starts; `expire()` makes the latest one expire now, as if its time had come."""

    def __init__(self, *, at_once: float | None = None) -> None:
        self.asked: list[float] = []
        self._at_once = at_once
        self._made: list[asyncio.Timeout] = []

    def __call__(self, seconds: float) -> asyncio.Timeout:
        self.asked.append(seconds)
        self._made.append(asyncio.timeout(0 if seconds == self._at_once else None))
        return self._made[-1]

    def expire(self) -> None:
        self._made[-1].reschedule(asyncio.get_running_loop().time())


class Ticks:
    """A stand-in for asyncio.sleep for a loop that waits between rounds: records the
    waits asked for; each returns only when the test calls `tick()` (one round each)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._ticks: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self._ticks.get()

    def tick(self) -> None:
        self._ticks.put_nowait(None)


class ControlledCallLater:
    """A stand-in for loop.call_later: records the seconds asked for and never runs the
    callback by itself; `fire()` runs the latest one still pending, as if its time had come."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._pending: list[tuple[asyncio.Handle, Callable[[], object]]] = []

    def __call__(self, seconds: float, callback: Callable[[], object]) -> asyncio.Handle:
        self.asked.append(seconds)
        handle = asyncio.Handle(callback, (), asyncio.get_running_loop())  # a handle the loop never runs
        self._pending.append((handle, callback))
        return handle

    def fire(self) -> None:
        handle, callback = next((h, c) for h, c in reversed(self._pending) if not h.cancelled())
        handle.cancel()
        callback()
