"""Surface: the App Home tab (`app_home_opened` with tab "home" → views.publish): the
assistants, the tools this person may use with their slash commands, and how to start.
Published per person on each visit, so it always shows the current configuration."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.deps import HomeDeps
from assist_bot.tools import Caller

log = logging.getLogger(__name__)

MAX_LISTED = 40  # a Home tab holds at most 100 blocks
HOW_TO_START = (
    "*How to start*\n"
    "• *Mention* me in a channel (`@assist-bot …`): I answer in the thread, and keep listening there.\n"
    "• *Message* me in the Messages tab: each conversation is its own thread.\n"
    "• On any message, open ⋮ → *Ask assist-bot about this* or *Summarize this thread*: "
    "I read that thread and answer in it.\n"
    "• `/assist help` lists the commands; `/assist use <assistant>` picks a channel's assistant."
)


async def _is_home_tab(event: dict[str, Any]) -> bool:
    return event.get("tab") == "home"


def register(app: AsyncApp, deps: HomeDeps) -> None:
    @app.event("app_home_opened", matchers=[_is_home_tab])
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        user = event["user"]
        view = home_view(deps, user=user)
        deps.dispatcher.spawn(_publish(client, user, view), name=f"home {user}")


async def _publish(client: AsyncWebClient, user: str, view: dict[str, Any]) -> None:
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("views.publish for %s failed: %s", user, exc.response.get("error"))


def home_view(deps: HomeDeps, *, user: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "assist-bot"}},
        _section(HOW_TO_START),
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Assistants"}},
        *(_section(line) for line in _assistant_lines(deps)[:MAX_LISTED]),
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "Your tools"}},
        *(_section(line) for line in (_tool_lines(deps, user) or ["No tools are available to you."])),
    ]
    return {"type": "home", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _assistant_lines(deps: HomeDeps) -> list[str]:
    lines = []
    for name in deps.assistants.names():
        assistant = deps.assistants.get(name)
        default = " (the default)" if name == deps.assistants.default_name else ""
        about = f": {assistant.description}" if assistant.description else ""
        tools = ", ".join(assistant.tools) or "no tools"
        lines.append(f"*{name}*{default} — {assistant.model}{about}\n_Uses: {tools}_")
    return lines


def _tool_lines(deps: HomeDeps, user: str) -> list[str]:
    """Tools this person may use: everywhere, or (allow_channels) in some channels only."""
    admins = deps.settings.admin_ids
    lines = []
    for tool in sorted(deps.tools.all(), key=lambda t: t.slash_command)[:MAX_LISTED]:
        if not tool.user_permitted(Caller(team="", channel="", user=user), admins):
            continue
        where = "" if user in admins or tool.allow_channels is None else " — in some channels only"
        asks = " (asks before it runs)" if tool.side_effects else ""
        summary = tool.description.splitlines()[0] if tool.description else tool.name
        lines.append(f"`{tool.slash_command}` *{tool.name}*{asks}{where}: {summary}")
    return lines
