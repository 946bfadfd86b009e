"""Slack message events → Inbound, and the rules for which messages we ignore."""

from __future__ import annotations

import re
from typing import Any

from assist_bot.inbound import Inbound
from assist_bot.slack.people import People

# Subtypes that are a person saying something; every other subtype (edits,
# deletions, joins, bot messages, …) is acknowledged and ignored.
_SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}


def is_from_person(event: dict[str, Any], bot_user_id: str | None) -> bool:
    if event.get("subtype") not in _SPOKEN_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def team_of(body: dict[str, Any], event: dict[str, Any]) -> str:
    return event.get("team") or body.get("team_id") or body.get("authorizations", [{}])[0].get("team_id", "")


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


async def to_inbound(
    *, body: dict[str, Any], event: dict[str, Any], thread_ts: str, people: People, bot_user_id: str | None
) -> Inbound:
    team = team_of(body, event)
    return Inbound(
        team=team,
        channel=event["channel"],
        thread_ts=thread_ts,
        ts=event["ts"],
        user=event["user"],
        user_name=await people.name(team, event["user"]),
        text=strip_mention(event.get("text") or "", bot_user_id),
        is_dm=event.get("channel_type") == "im" or str(event["channel"]).startswith("D"),
    )
