"""A stand-in for asyncio.sleep that records the waits asked for and returns at once,
so a test can check a back-off without waiting it out."""

from __future__ import annotations

import asyncio


class RecordedWaits:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # still a scheduling point, as a real sleep is
