"""A tool module for the Stop tests (loaded through ASSIST_BOT_TOOL_MODULES)."""

from __future__ import annotations

import asyncio

from assist_bot.tools import tool

started = asyncio.Event()  # set when the tool runs
cancelled = asyncio.Event()  # set when a stop cancelled the tool mid-way


@tool(timeout=60)
async def wait_forever() -> str:
    """Waits until cancelled: only Stop ends it."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise
    return "never"
