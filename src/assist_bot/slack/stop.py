"""Surface: the Stop button on a streaming answer.

The button goes with the answer's first chunk (a `blocks` chunk of chat.startStream, built from
slack_sdk's block models); its value names the answer (the ts of the message it answers), so an
old answer's button never stops a later one. Only the asker or an admin may stop it; anyone
else is told so, privately. The answer may stream on another replica: the dispatcher's stop
goes through the store (assist_bot/stopping.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack.deps import SurfaceDeps
from assist_bot.store import ThreadKey
from assist_bot.store.keys import is_slack_id

log = logging.getLogger(__name__)

ACTION = "assist_stop"
_TS = re.compile(r"\d{1,12}\.\d{1,8}")


def block(turn: str) -> dict[str, Any]:
    """The Stop button of the answer to message `turn`."""
    return ActionsBlock(
        block_id=f"{ACTION}:{turn}",
        elements=[ButtonElement(action_id=ACTION, text="⏹️ Stop", value=turn, style="danger")],
    ).to_dict()


def register(app: AsyncApp, deps: SurfaceDeps) -> None:
    @app.action(ACTION)
    async def on_stop(ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = _click(body)
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


def _click(body: dict[str, Any]) -> tuple[ThreadKey, str, str] | None:
    action = (body.get("actions") or [{}])[0]
    turn = str(action.get("value") or "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    team = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")
    thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or "")
    if not (_TS.fullmatch(turn) and _TS.fullmatch(thread_ts) and all(map(is_slack_id, (team, channel, user)))):
        return None  # not a click on one of our answers
    return ThreadKey(team, channel, thread_ts), user, turn
