"""Surface: the Stop button on a streaming answer.

The button goes with the answer's first chunk (a `blocks` chunk of chat.startStream, built from
slack_sdk's block models); its value names the answer (the ts of the message it answers), so an
old answer's button never stops a later one. Only the asker or an admin may stop it; anyone
else is told so, privately. The answer may stream on another replica: the dispatcher's stop
goes through the store (assist_bot/stopping.py).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack.deps import SurfaceDeps
from assist_bot.slack.normalize import valid_ids, valid_ts, workspace
from assist_bot.store import ThreadKey

log = logging.getLogger(__name__)

ACTION = "assist_stop"


def block(turn: str) -> dict[str, Any]:
    """The Stop button of the answer to message `turn`."""
    return ActionsBlock(
        block_id=f"{ACTION}:{turn}",
        elements=[ButtonElement(action_id=ACTION, text="⏹️ Stop", value=turn, style="danger")],
    ).to_dict()


def register(app: AsyncApp, deps: SurfaceDeps) -> None:
    @app.action(ACTION)
    async def on_stop(ack, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        click = _click(body, workspace(context))
        if click is None:
            return
        thread, user, turn = click
        result = await deps.dispatcher.stop(thread, user=user, turn=turn)
        log.info("Stop in %s/%s by %s: %s", thread.channel, thread.thread_ts, user, result.outcome)
        if result.outcome == "stopped":
            return  # the answer itself says who stopped it
        text = texts.stop_refused(result.askers) if result.outcome == "refused" else texts.STOP_FINISHED
        try:
            await client.chat_postEphemeral(channel=thread.channel, user=user, thread_ts=thread.thread_ts, text=text)
        except SlackApiError as exc:
            log.info("could not answer a Stop click: %s", exc.response.get("error"))


def _click(body: dict[str, Any], team: str | None) -> tuple[ThreadKey, str, str] | None:
    """`team`: the workspace the click was delivered to (Bolt's, never the payload's)."""
    action = (body.get("actions") or [{}])[0]
    turn = str(action.get("value") or "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or "")
    if team is None or not (valid_ts(turn) and valid_ts(thread_ts) and valid_ids(channel, user)):
        return None  # not a click on one of our answers
    return ThreadKey(team, channel, thread_ts), user, turn
