"""A company's own tool module, loaded through ASSIST_BOT_TOOL_MODULES in the tests."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, SecretStr

from assist_bot.tools import ToolContext, tool

_partner_arrived = asyncio.Event()


@tool(timeout=5)
async def wait_for_partner(tag: str) -> str:
    """Waits until `partner` has run: only works when both run at the same time.

    Args:
        tag: Any label.
    """
    await _partner_arrived.wait()
    _partner_arrived.clear()
    return f"met partner ({tag})"


@tool
async def partner() -> str:
    """Lets wait_for_partner finish."""
    _partner_arrived.set()
    return "partner here"


@tool
def broken(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why it fails.
    """
    raise RuntimeError(f"broken on purpose: {reason}")


@tool(timeout=45)  # tests end it through the bot's deadline (tests/support/waits.py)
async def sleepy() -> str:
    """Never finishes in time."""
    await asyncio.sleep(3600)
    return "too late"


@tool(allow_users=["UVIP"], slash_command="/vip")
def vip_only() -> str:
    """Only for UVIP."""
    return "vip"


@tool(side_effects=True)
def note_down(text: str) -> str:
    """Writes a note somewhere that matters (asks first; the requester may approve it).

    Args:
        text: The note.
    """
    return f"noted: {text}"


@tool
def snoop(ctx: ToolContext) -> str:
    """Shows everything its context holds, secrets revealed (to prove no credential is in it)."""
    return repr(ctx) + " " + " ".join(_reveal(value) for value in [*vars(ctx).values(), *vars(ctx.http).values()])


def _reveal(value: object, depth: int = 0) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel) and depth < 3:
        return " ".join(_reveal(getattr(value, name), depth + 1) for name in type(value).model_fields)
    return repr(value)


@tool(slash_command="/echo")
def echo(text: str) -> dict[str, str]:
    """Says the text back.

    Args:
        text: What to say.
    """
    return {"said": text}
