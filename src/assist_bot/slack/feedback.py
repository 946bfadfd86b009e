"""Surface: 👍 / 👎 on every final answer, and `/assist feedback`.

Every final answer ends with a `context_actions` block holding Slack's `feedback_buttons`
(built from slack_sdk's own block models). A click is stored — team, channel, thread, response
id, assistant, user, value — and acknowledged to that person alone (ephemeral). `/assist
feedback` shows the channel's counts; for admins also per assistant across every channel.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.commands import may_change
from assist_bot.slack.deps import CommandDeps, FeedbackDeps
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.store import ChannelKey

log = logging.getLogger(__name__)

ACTION = "assist_feedback"
GOOD, BAD = "good", "bad"
PROMPT = "Was this answer helpful?"
THANKS = {GOOD: "Thanks for the 👍 — glad it helped.", BAD: "Thanks for the 👎 — noted, it helps us improve."}


def block(response_id: str) -> dict[str, Any]:
    """The feedback buttons for one answer; each button's value names the response it rates."""
    return ContextActionsBlock(
        block_id=f"{ACTION}:{response_id}"[:255],
        elements=[
            FeedbackButtonsElement(
                action_id=ACTION,
                positive_button=FeedbackButtonObject(
                    text="👍", accessibility_label="Good answer", value=f"{GOOD}:{response_id}"
                ),
                negative_button=FeedbackButtonObject(
                    text="👎", accessibility_label="Bad answer", value=f"{BAD}:{response_id}"
                ),
            )
        ],
    ).to_dict()


def register(app: AsyncApp, deps: FeedbackDeps) -> None:
    @app.action(ACTION)
    async def on_feedback(ack, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        record = await _record(body, workspace(context), deps)
        if record is None:
            return
        await deps.store.put_feedback(record["team"], record)
        try:
            await client.chat_postEphemeral(
                channel=record["channel"],
                user=record["user"],
                thread_ts=record["thread_ts"] or None,
                text=THANKS[record["value"]],
            )
        except SlackApiError as exc:
            log.info("could not thank for feedback: %s", exc.response.get("error"))


async def _record(body: dict[str, Any], team: str | None, deps: FeedbackDeps) -> dict[str, Any] | None:
    """`team`: the workspace the click was delivered to (Bolt's, never the payload's)."""
    action = (body.get("actions") or [{}])[0]
    value, _, response = str(action.get("value") or "").partition(":")
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    if value not in (GOOD, BAD) or team is None or not valid_ids(channel, user):
        return None  # not a click on our buttons: nothing to store
    message = body.get("message") or {}
    container = body.get("container") or {}
    settings = await deps.store.get_channel_settings(ChannelKey(team, channel))
    return {
        "team": team,
        "channel": channel,
        "thread_ts": message.get("thread_ts") or container.get("thread_ts") or "",
        "message_ts": container.get("message_ts") or message.get("ts") or "",
        "response": response,
        # The channel's assistant when the click arrives (the one that answered, unless changed since).
        "assistant": deps.assistants.get(settings.get("assistant")).name,
        "user": user,
        "value": value,
        "at": int(time.time()),
    }


async def command(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    """`/assist feedback`: 👍/👎 counts here; admins also see each assistant across channels."""
    team, channel = command["team_id"], command["channel_id"]
    records = await deps.store.feedback(team)
    here = Counter(r["value"] for r in records if r["channel"] == channel)
    lines = [f"*Feedback in <#{channel}>:* 👍 {here[GOOD]} · 👎 {here[BAD]}"]
    if await may_change(deps, command):  # the admins of every /assist command: ASSIST_BOT_ADMINS, else the workspace's
        per: dict[str, Counter[str]] = {}
        for r in records:
            per.setdefault(r.get("assistant") or "?", Counter())[r["value"]] += 1
        lines.append("*Per assistant, all channels:*")
        lines += [f"• *{name}*: 👍 {c[GOOD]} · 👎 {c[BAD]}" for name, c in sorted(per.items())] or ["• none yet"]
    return "\n".join(lines)
