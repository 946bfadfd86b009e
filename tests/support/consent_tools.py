"""A side-effect tool for tests of consent: it runs only after a person approves."""

from __future__ import annotations

from assist_bot.tools import tool

launched: list[str] = []


@tool(side_effects=True)
def launch(target: str) -> str:
    """Launches something; asks a person first.

    Args:
        target: What to launch.
    """
    launched.append(target)
    return f"launched {target}"
