"""Steps the scenario tests share, as a person in Slack would see or take them: the bot's
replies in a thread, waiting for one that says something, a slash command's response.
What a test arranges and checks stays in the test."""

from __future__ import annotations

import json

from tests.fakes.slack import FakeSlack, Msg, mention, wait_for
from tests.support.bot import RunningBot


def reply_texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    """The texts of the bot's replies in a thread, oldest first."""
    return [m.text for m in slack.thread_replies(channel, thread_ts)]


def whole_reply_text(slack: FakeSlack, channel: str, thread_ts: str) -> str:
    """The bot's replies in a thread as one text (an answer continued in further messages reads whole)."""
    return "".join(reply_texts(slack, channel, thread_ts))


async def reply_containing(slack: FakeSlack, channel: str, thread_ts: str, expected: str) -> Msg:
    """Wait until one of the bot's replies in the thread contains `expected`; returns that reply."""
    return await wait_for(
        lambda: next((m for m in slack.thread_replies(channel, thread_ts) if expected in m.text), None),
        message=f"a reply containing {expected!r} in {channel}/{thread_ts}",
    )


async def mention_and_wait_for_reply(
    bot: RunningBot, slack: FakeSlack, channel: str, user: str, text: str, *, containing: str, team: str = "T1"
) -> dict:
    """Mention the bot in a new thread of `channel` and wait for its reply there to contain
    `containing`; returns the mention."""
    event = mention(channel, user, text, team=team)
    assert await bot.send(event, team_id=team) == 200
    await reply_containing(slack, channel, event["ts"], containing)
    return event


async def response_to(slack: FakeSlack, response_url: str) -> dict:
    """Wait for what the bot sends to a response_url (RunningBot.command returns a slash command's)."""
    return await wait_for(
        lambda: next((r for r in slack.responses if response_url.endswith(r["key"])), None),
        message=f"a response at {response_url}",
    )


async def opened_modal(slack: FakeSlack) -> dict:
    """Wait for the one modal the bot opens (views.open); returns its view."""
    [opened] = await wait_for(lambda: slack.calls_to("views.open"))
    view = opened.args["view"]
    return view if isinstance(view, dict) else json.loads(view)
