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
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.inbound import Inbound
from assist_bot.slack import agent_view
from assist_bot.slack.deps import MessageDeps
from assist_bot.slack.files import INTAKE_SETTING, handle_file_share, inbound_with_images
from assist_bot.slack.normalize import is_from_person, to_inbound
from assist_bot.store import ChannelKey, ThreadKey


def register(app: AsyncApp, deps: MessageDeps) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        if not is_from_person(event, context.bot_user_id):
            return
        # The message as if it started a thread: ids checked, the workspace from Bolt's context.
        inbound = to_inbound(context=context, event=event, thread_ts=event.get("thread_ts") or event.get("ts"))
        if inbound is None:
            return
        if event.get("subtype") == "file_share":
            await _on_file_share(inbound, event, context, client, deps)
            return
        if not await _should_answer(inbound, event, deps):
            return
        if inbound.is_dm:  # the channel its person is looking at; a title for a new conversation
            inbound = await agent_view.prepare_dm(deps, client, event, inbound)
        await deps.dispatcher.submit(inbound)


async def _should_answer(inbound: Inbound, event: dict[str, Any], deps: MessageDeps) -> bool:
    """Every DM gets a reply (in a thread under the user's message); in channels, only
    follow-ups in threads the bot is part of."""
    if event.get("channel_type") == "im":
        return True
    return bool(event.get("thread_ts")) and await deps.dispatcher.knows_thread(inbound.thread)


async def _on_file_share(
    inbound: Inbound, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, deps: MessageDeps
) -> None:
    """Files are taken in whether or not the bot is mentioned (unless the channel
    turned intake off); the message's text is answered when it was for the bot."""
    team, channel, thread_ts = inbound.team, inbound.channel, inbound.thread_ts
    is_dm = event.get("channel_type") == "im"
    mentioned = bool(context.bot_user_id) and f"<@{context.bot_user_id}" in (event.get("text") or "")
    known = bool(event.get("thread_ts")) and await deps.dispatcher.knows_thread(ThreadKey(team, channel, thread_ts))
    addressed = is_dm or mentioned or known
    settings = await deps.store.get_channel_settings(ChannelKey(team, channel))
    if not addressed and settings.get(INTAKE_SETTING) == "off":
        return
    if not await deps.store.claim(team, f"files:{channel}:{event['ts']}"):
        return  # a retry of a delivery already being handled

    async def submit(images: tuple[str, ...]) -> None:
        await deps.dispatcher.submit(inbound_with_images(inbound, images))

    deps.dispatcher.spawn(
        handle_file_share(
            event=event,
            thread=inbound.thread,
            addressed=addressed,
            client=client,
            intake=deps.knowledge,
            slack_files=deps.slack_files.using(client),  # the workspace's own token downloads its files
            routes=deps.assistants.get(settings.get("assistant")).file_routes,
            channel_name=channel,
            submit=submit,
        ),
        name=f"files {channel}/{event['ts']}",
    )
