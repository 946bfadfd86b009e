"""Steps the scenario tests share, as a person in Slack would take or see them against the
fake Slack: mention the bot, share a file; read the bot's replies in a thread, wait for one
that says something, for a consent prompt, a slash command's response, a modal.
What a test arranges and checks stays in the test."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.slack import FakeSlack, Msg, file_share_message, mention, wait_for
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


async def message_containing(slack: FakeSlack, channel: str, expected: str) -> Msg:
    """Wait until one of the bot's messages in `channel`, in any thread, contains `expected`; returns it."""
    return await wait_for(
        lambda: next((m for m in slack.bot_messages(channel) if expected in m.text), None),
        message=f"a message containing {expected!r} in {channel}",
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


async def share_files(
    bot: RunningBot,
    channel: str,
    files: list[dict],
    *,
    text: str = "",
    channel_type: str = "channel",
    thread_ts: str | None = None,
) -> dict:
    """U1 shares `files` (Slack's file objects, e.g. from FakeSlack.add_file) in `channel`;
    returns the file_share event."""
    event = file_share_message(channel, "U1", text, files, thread_ts=thread_ts, channel_type=channel_type)
    assert await bot.send(event) == 200
    return event


async def share_file(
    bot: RunningBot,
    slack: FakeSlack,
    channel: str,
    *,
    name: str,
    content: bytes,
    mimetype: str,
    filetype: str,
    text: str = "",
    channel_type: str = "channel",
    thread_ts: str | None = None,
    **file_kw: Any,
) -> tuple[dict, dict]:
    """U1 uploads one file to Slack and shares it in `channel`; returns the event and the file."""
    file = slack.add_file(name=name, content=content, mimetype=mimetype, filetype=filetype, channel=channel, **file_kw)
    event = await share_files(bot, channel, [file], text=text, channel_type=channel_type, thread_ts=thread_ts)
    return event, file


def reactions_on(slack: FakeSlack, ts: str) -> list[tuple[str, str]]:
    """The reactions the bot added to and removed from a message, in order, as (method, name)."""
    return [
        (c.method, c.args["name"])
        for c in slack.calls
        if c.method.startswith("reactions.") and c.args.get("timestamp") == ts
    ]


def is_consent_prompt(message: Msg) -> bool:
    """A consent prompt still waiting for a click: it carries Approve/Decline buttons (a decided one loses them)."""
    return any(b.get("type") == "actions" for b in message.blocks or ())


async def consent_prompt(slack: FakeSlack, channel: str, thread_ts: str | None = None) -> Msg:
    """Wait for the bot's consent prompt in `channel` (in that thread, when given)."""
    return await wait_for(
        lambda: next(
            (
                m
                for m in slack.bot_messages(channel)
                if is_consent_prompt(m) and (thread_ts is None or m.thread_ts == thread_ts)
            ),
            None,
        ),
        message=f"a consent prompt in {channel}",
    )


def approval_id(prompt: Msg) -> str:
    """What the prompt asks about: the value its Approve and Decline buttons carry."""
    actions = next(b for b in prompt.blocks or () if b["type"] == "actions")
    return actions["elements"][0]["value"]


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
