"""Slack payloads → our own terms: which workspace, which ids, which Inbound; and
the rules for which messages we ignore.

The workspace is always Bolt's `context.team_id`: the installation the request was
delivered to (Bolt reads it from `authorizations[0].team_id` for events). Never a
payload's `event.team` or `team_id`, which in a Slack Connect channel name the
*speaker's* workspace: keys, settings, approvals and tool permissions would then
split one thread into several and let an external speaker escape the channel's
settings.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot.inbound import Inbound
from assist_bot.store.keys import is_slack_id

log = logging.getLogger(__name__)

# Subtypes that are a person saying something; every other subtype (edits,
# deletions, joins, bot messages, …) is acknowledged and ignored.
_SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
_TS = re.compile(r"\d{1,12}\.\d{1,9}")


def workspace(context: AsyncBoltContext) -> str | None:
    """The workspace the request belongs to, or None when it is not a valid Slack id."""
    team = context.team_id or context.enterprise_id  # an org-wide install has only the enterprise
    if not is_slack_id(team):
        log.warning("request without a valid workspace id ignored")
        return None
    return team


def valid_ids(*values: object) -> bool:
    """Channel and user ids from a payload must be Slack ids before they go anywhere near a key."""
    if all(is_slack_id(value) for value in values):
        return True
    log.warning("request with an invalid channel or user id ignored")
    return False


def valid_ts(value: object) -> bool:
    return isinstance(value, str) and _TS.fullmatch(value) is not None


def is_from_person(event: dict[str, Any], bot_user_id: str | None) -> bool:
    if event.get("subtype") not in _SPOKEN_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


def to_inbound(*, context: AsyncBoltContext, event: dict[str, Any], thread_ts: str | None) -> Inbound | None:
    """The message as an Inbound, or None when its ids are not Slack's. No Slack call:
    this runs before the ack; the display name is looked up when the turn starts."""
    team = workspace(context)
    if team is None or not valid_ids(event.get("channel"), event.get("user")):
        return None
    if not (valid_ts(event.get("ts")) and isinstance(thread_ts, str) and valid_ts(thread_ts)):
        log.warning("message with an invalid ts ignored")
        return None
    return Inbound(
        team=team,
        channel=event["channel"],
        thread_ts=thread_ts,
        ts=event["ts"],
        user=event["user"],
        user_name="",
        text=strip_mention(event.get("text") or "", context.bot_user_id),
        is_dm=event.get("channel_type") == "im" or str(event["channel"]).startswith("D"),
    )
