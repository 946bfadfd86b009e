"""Surface: `message` events — DMs, and follow-ups in threads the bot is part of.

Every `message` event is acknowledged (Bolt acks on return); edits, deletions,
bot messages and top-level channel chatter are ignored. A channel message that
mentions the bot in a new thread is left to the app_mention surface; where both
events reach us for one message, the dispatcher's dedupe answers it once.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot.slack.deps import SurfaceDeps
from assist_bot.slack.inbound import is_from_person, team_of, to_inbound
from assist_bot.store import ThreadKey


def register(app: AsyncApp, deps: SurfaceDeps) -> None:
    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if not is_from_person(event, context.bot_user_id):
            return
        thread_ts = await _thread_to_answer(event, team_of(body, event), deps)
        if thread_ts is None:
            return
        inbound = await to_inbound(
            body=body, event=event, thread_ts=thread_ts, people=deps.people, bot_user_id=context.bot_user_id
        )
        await deps.dispatcher.submit(inbound)


async def _thread_to_answer(event: dict[str, Any], team: str, deps: SurfaceDeps) -> str | None:
    """The thread this message should be answered in, or None to stay silent."""
    if event.get("channel_type") == "im":
        # Every DM gets a reply, in a thread under the user's message.
        return event.get("thread_ts") or event["ts"]
    thread_ts = event.get("thread_ts")
    if thread_ts and await deps.dispatcher.knows_thread(ThreadKey(team, event["channel"], thread_ts)):
        return thread_ts
    return None
