"""The agent view (Messages tab) and the legacy assistant view, over signed HTTP events:
suggested prompts, the channel a person is looking at as context for the model, titles."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot.assistants import DEFAULT_SUGGESTED_PROMPTS, Assistant, Assistants, SuggestedPrompt
from assist_bot.slack.agent_view import VIEWING_CHANNEL_SETTING, VIEWING_SETTING
from assist_bot.store import ChannelKey, ThreadKey
from tests.fakes.openai import input_texts
from tests.fakes.slack import message, new_ts, wait_for
from tests.support.bot import running_bot

pytestmark = pytest.mark.timeout(60)

DEFAULT_PROMPTS = [{"title": p.title, "message": p.message} for p in DEFAULT_SUGGESTED_PROMPTS]


def home_opened(tab: str, *, user: str = "U1", channel: str = "D1") -> dict:
    # As Slack sends it (bolt-python's test_events_org_apps payload).
    return {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": new_ts()}


def context_changed(viewed: str | None, *, user: str = "U1", channel: str = "D1") -> dict:
    # docs.slack.dev/reference/events/app_context_changed, with @slack/types' user and channel.
    entities = [{"type": "slack#/types/channel_id", "value": viewed, "team_id": "T1"}] if viewed else None
    return {
        "type": "app_context_changed",
        "user": user,
        "channel": channel,
        "context": {"entities": entities} if entities else {},
        "event_ts": new_ts(),
    }


def assistant_thread(kind: str, viewed: str | None, *, thread_ts: str, channel: str = "D1") -> dict:
    # bolt-python's test_events_assistant payloads (assistant_view apps).
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": "U1",
            "context": {"channel_id": viewed, "team_id": "T1"} if viewed else {},
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


def two_assistants(**helper: object) -> Assistants:
    return Assistants(
        {
            "general": Assistant(name="general", model="gpt-5.4-mini"),
            "helper": Assistant(name="helper", model="gpt-5.4-mini", **helper),  # type: ignore[arg-type]
        },
        "general",
    )


def without_team(args: dict) -> dict:
    return {k: v for k, v in args.items() if k != "team_id"}  # Bolt's client adds the request's team


async def viewing(bot, dm: str = "D1") -> str | None:
    return (await bot.bot.store.get_channel_settings(ChannelKey("T1", dm))).get(VIEWING_SETTING)


async def wait_viewing(bot, expected: str | None, dm: str = "D1", seconds: float = 10) -> None:
    """Until the DM's stored view contains `expected` (None: is gone); read through the store's interface."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await viewing(bot, dm)
        if (value is None) if expected is None else (value is not None and expected in value):
            return
        if loop.time() > deadline:
            raise AssertionError(f"the view never became {expected!r} (it is {value!r})")
        await asyncio.sleep(0.02)


async def test_opening_the_messages_tab_offers_the_dm_assistants_prompts(slack, openai_fake):
    custom = (SuggestedPrompt(title="Plan a trip", message="Plan a two-day trip to Lisbon."),)
    async with running_bot(slack, openai_fake, assistants=two_assistants(suggested_prompts=custom)) as bot:
        assert await bot.send(home_opened("messages")) == 200
        [first] = await wait_for(lambda: slack.calls_to("assistant.threads.setSuggestedPrompts"))
        await bot.bot.store.set_channel_setting(ChannelKey("T1", "D2"), "assistant", "helper")
        assert await bot.send(home_opened("messages", user="U2", channel="D2")) == 200
        calls = await wait_for(lambda: len(slack.calls_to("assistant.threads.setSuggestedPrompts")) == 2 and slack)
    second = calls.calls_to("assistant.threads.setSuggestedPrompts")[1]
    # Agent view: pinned atop the Messages tab, so no thread_ts.
    assert without_team(first.args) == {"channel_id": "D1", "prompts": DEFAULT_PROMPTS} and first.error is None
    assert without_team(second.args) == {
        "channel_id": "D2",
        "prompts": [{"title": "Plan a trip", "message": custom[0].message}],
    }
    assert slack.calls_to("views.publish") == []  # the Home tab is another surface


async def test_the_channel_being_viewed_reaches_the_model_with_name_and_topic_only(slack, openai_fake):
    slack.channels["C7"] = {"name": "launch", "topic": "Ship v2 on Friday", "purpose": "Release coordination"}
    slack.seed_message("C7", "U3", "the secret launch code is 1234")
    async with running_bot(slack, openai_fake) as bot:
        assert await bot.send(context_changed("C7")) == 200
        await wait_viewing(bot, "#launch")
        question = message("D1", "U1", "what is this channel for?", channel_type="im")
        await bot.send(question)
        await wait_for(lambda: openai_fake.response_requests)
    texts = input_texts(openai_fake.response_requests[0])
    assert texts[-1] == "[user-U1 (U1)] what is this channel for?"
    assert "#launch" in texts[0] and "Ship v2 on Friday" in texts[0] and "Release coordination" in texts[0]
    # Its messages stay out unless the assistant allows them.
    assert "1234" not in " ".join(texts)
    assert slack.calls_to("conversations.history") == []
    [info] = slack.calls_to("conversations.info")
    assert info.args["channel"] == "C7"


async def test_an_assistant_that_allows_it_also_reads_the_viewed_channels_latest_messages(slack, openai_fake):
    slack.channels["C7"] = {"name": "launch"}
    slack.seed_message("C7", "U3", "first: freeze on Thursday")
    slack.seed_message("C7", "U4", "second: demo at noon")
    async with running_bot(slack, openai_fake, assistants=two_assistants(viewed_channel_messages=5)) as bot:
        await bot.bot.store.set_channel_setting(ChannelKey("T1", "D1"), "assistant", "helper")
        await bot.send(context_changed("C7"))
        await wait_viewing(bot, "demo at noon")
        await bot.send(message("D1", "U1", "anything urgent?", channel_type="im"))
        await wait_for(lambda: openai_fake.response_requests)
    context = input_texts(openai_fake.response_requests[0])[0]
    assert context.index("[user-U3] first: freeze") < context.index("[user-U4] second: demo")  # oldest first
    assert slack.calls_to("conversations.history")[0].args["limit"] == "5"


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_leaving_the_channel_or_a_channel_the_bot_cannot_see_means_no_context(slack, openai_fake, store, request):
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    slack.channels["C7"] = {"name": "launch"}
    slack.channels["G9"] = {"name": "hidden", "is_member": False}
    slack.fail_next("conversations.info", error="channel_not_found")  # G9: not visible to the bot
    async with running_bot(slack, openai_fake, redis_url=redis_url) as bot:
        dm = ChannelKey("T1", "D1")
        await bot.bot.store.set_channel_setting(dm, "assistant", None)  # Redis outlives other tests
        await bot.bot.store.set_channel_setting(dm, VIEWING_CHANNEL_SETTING, "C5")  # from an earlier look
        await bot.bot.store.set_channel_setting(dm, VIEWING_SETTING, '{"channel": "C5", "text": "#old"}')
        await bot.send(context_changed("G9"))
        await wait_viewing(bot, None)
        await bot.send(context_changed("C7"))
        await wait_viewing(bot, "#launch")
        await bot.send(context_changed(None))  # "context": {} — looking at nothing in particular
        await wait_viewing(bot, None)
        await bot.send(message("D1", "U1", "hello", channel_type="im"))
        await wait_for(lambda: openai_fake.response_requests)
    assert input_texts(openai_fake.response_requests[0]) == ["[user-U1 (U1)] hello"]


async def test_legacy_assistant_threads_get_prompts_and_context_the_same_way(slack, openai_fake):
    slack.channels["C7"] = {"name": "launch", "topic": "Ship v2"}
    slack.channels["C8"] = {"name": "support", "topic": "Customer tickets"}
    thread_ts = new_ts()
    async with running_bot(slack, openai_fake) as bot:
        assert await bot.send(assistant_thread("assistant_thread_started", "C7", thread_ts=thread_ts)) == 200
        [prompts] = await wait_for(lambda: slack.calls_to("assistant.threads.setSuggestedPrompts"))
        await wait_viewing(bot, "#launch")
        assert await bot.send(assistant_thread("assistant_thread_context_changed", "C8", thread_ts=thread_ts)) == 200
        await wait_viewing(bot, "#support")
        await bot.send(message("D1", "U1", "what's new here?", channel_type="im", thread_ts=thread_ts))
        await wait_for(lambda: openai_fake.response_requests)
    assert without_team(prompts.args) == {"channel_id": "D1", "thread_ts": thread_ts, "prompts": DEFAULT_PROMPTS}
    texts = input_texts(openai_fake.response_requests[0])
    assert "#support" in texts[0] and "Customer tickets" in texts[0] and "launch" not in texts[0]


async def test_a_new_dm_conversation_is_titled_by_its_first_question(slack, openai_fake):
    long_question = "How do I rotate the staging database credentials without downtime for the API?\nDetails follow"
    async with running_bot(slack, openai_fake) as bot:
        first = message("D1", "U1", long_question, channel_type="im")
        await bot.send(first)
        thread = ThreadKey("T1", "D1", first["ts"])
        for _ in range(500):  # until the first turn has ended (the thread is then known)
            if await bot.bot.store.thread_known(thread):
                break
            await asyncio.sleep(0.02)
        follow = message("D1", "U1", "and for production?", channel_type="im", thread_ts=first["ts"])
        await bot.send(follow)
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
        await wait_for(lambda: len(slack.thread_replies("D1", first["ts"])) == 2)
    [title] = slack.calls_to("assistant.threads.setTitle")  # the follow-up did not retitle it
    assert title.args["channel_id"] == "D1" and title.args["thread_ts"] == first["ts"]
    assert title.args["title"] == "How do I rotate the staging database credentials without do…"
    assert len(title.args["title"]) <= 60 and title.error is None


async def test_a_slow_answer_about_an_earlier_channel_does_not_replace_the_current_one(slack, openai_fake):
    slack.channels["C7"] = {"name": "launch"}
    slack.channels["C8"] = {"name": "support"}
    gate = slack.hold_next("conversations.info")  # C7's lookup answers only after C8's
    async with running_bot(slack, openai_fake) as bot:
        await bot.send(context_changed("C7"))
        await wait_for(lambda: slack.calls_to("conversations.info"))
        await bot.send(context_changed("C8"))
        await wait_viewing(bot, "#support")
        gate.set()
        await bot.settled()  # C7's lookup has ended
        assert "#support" in (await viewing(bot) or "")
        await bot.send(message("D1", "U1", "where am I?", channel_type="im"))
        await wait_for(lambda: openai_fake.response_requests)
    context = input_texts(openai_fake.response_requests[0])[0]
    assert "#support" in context and "#launch" not in context
