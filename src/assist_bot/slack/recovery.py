"""Closing a reply whose process died mid-answer: the half-written message gets a note.

Whoever takes the thread over (another replica, or the same one restarted) knows only
where the reply is; its text is read back from Slack, so that the note goes under what
the user already sees instead of replacing it.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack.mrkdwn import MESSAGE_LIMIT
from assist_bot.store.base import ReplyRef

log = logging.getLogger(__name__)

MAX_PAGES = 20  # a thread of 20,000 messages: past that the note goes in a new message


async def close_interrupted(client: AsyncWebClient, reply: ReplyRef, *, again: bool) -> None:
    note = texts.INTERRUPTED_AGAIN if again else texts.INTERRUPTED_GIVEN_UP
    shown = await _read_text(client, reply)
    if shown is not None and len(shown) + len(note) + 2 <= MESSAGE_LIMIT:
        try:
            await client.chat_update(channel=reply.channel, ts=reply.ts, text=f"{shown}\n\n{note}")
            return
        except SlackApiError as exc:
            log.warning("closing interrupted reply %s: chat.update failed: %s", reply.ts, exc.response.get("error"))
    # Unreadable, deleted, or too long to take the note: say it in the thread instead.
    await client.chat_postMessage(channel=reply.channel, thread_ts=reply.thread_ts, text=note)


async def _read_text(client: AsyncWebClient, reply: ReplyRef) -> str | None:
    cursor = None
    for _ in range(MAX_PAGES):
        try:
            page = await client.conversations_replies(
                channel=reply.channel, ts=reply.thread_ts, cursor=cursor, limit=1000
            )
        except SlackApiError as exc:
            log.warning("reading interrupted reply %s failed: %s", reply.ts, exc.response.get("error"))
            return None
        for message in page.get("messages") or []:
            if message.get("ts") == reply.ts:
                return str(message.get("text") or "")
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None
