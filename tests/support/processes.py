"""The environment of a process a test starts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

import aiohttp

# Set by coverage's subprocess patch (`scripts/test --cov`) in the test process's own
# environment only: a child started with an environment of its own must be handed it.
_COVERAGE = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def child_env(values: Mapping[str, str]) -> dict[str, str]:
    """Exactly `values` (what a person would set), plus, under coverage, what lets the
    child measure itself: cli.py, manifest.py and __main__.py run only in children."""
    return {**values, **{name: os.environ[name] for name in _COVERAGE if name in os.environ}}


async def wait_healthy(
    url: str, proc: asyncio.subprocess.Process, *, seconds: float = 10, what: str = "bot", every: float = 0.05
) -> None:
    """Until GET `url` answers 200 (a started process is ready), failing at once if the process
    exits and after `seconds` if it never answers."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"{what} exited early with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(every)
    raise AssertionError(f"{what} never became healthy within {seconds:g}s")
