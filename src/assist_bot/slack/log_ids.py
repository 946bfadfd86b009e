"""Every request from Slack binds its team, channel and thread to the log lines written
while it is handled (and by the turn it starts), before any listener runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot.logs import bind


def register(app: AsyncApp) -> None:
    @app.middleware
    async def bind_ids(context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        thread = (event or {}).get("thread_ts") or (event or {}).get("ts") or ""
        bind(team=context.team_id or "", channel=context.channel_id or "", thread=thread)
        return await next()
