"""Surface: @mentions in channels. The bot answers in the message's thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot.slack.deps import MentionDeps
from assist_bot.slack.normalize import is_from_person, to_inbound


def register(app: AsyncApp, deps: MentionDeps) -> None:
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if not is_from_person(event, context.bot_user_id):
            return
        if event.get("files"):
            return  # the file_share `message` event takes the files in first, then answers
        inbound = to_inbound(context=context, event=event, thread_ts=event.get("thread_ts") or event.get("ts"))
        if inbound is not None:
            await deps.dispatcher.submit(inbound)
