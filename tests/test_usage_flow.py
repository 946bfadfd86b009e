"""Usage and budgets over the real wire: the fake OpenAI's `usage` in response.completed is
recorded per workspace, channel, user and assistant (Redis), `/assist usage` shows it with
an estimated cost, and a used-up budget stops a turn before any model call."""

from __future__ import annotations

import time

import pytest

from assist_bot import texts
from assist_bot.usage import month_of
from tests.fakes.openai import Text
from tests.fakes.slack import file_share_message, wait_for
from tests.support.bot import running_bot
from tests.support.flows import mention_and_wait_for_reply, message_containing, reply_texts, response_to
from tests.support.polling import wait_until_equal

pytestmark = pytest.mark.timeout(60)


def usage(input_tokens: int, output_tokens: int, *, cached: int = 0, reasoning: int = 0) -> dict:
    """A `usage` object as response.completed carries it."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


async def recorded_tokens(bot, scope: str) -> int:
    figures = await bot.bot.ledger.usage("T1", month_of(time.time()), [scope])
    return figures[scope].get("tokens", 0)


async def test_usage_is_recorded_from_response_usage_and_shown_by_assist_usage(slack, openai_fake, redis_url):
    openai_fake.enqueue(
        Text.of("First answer", usage=usage(1200, 300, cached=200, reasoning=50)),
        Text.of("Searched", tools=["web_search"], usage=usage(400, 100)),
    )
    async with running_bot(slack, openai_fake, redis_url=redis_url, ASSIST_BOT_ADMINS="UADMIN") as bot:
        await bot.bot.store._redis.flushdb()
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "question one", containing="First answer")
        await wait_until_equal(lambda: recorded_tokens(bot, "channel:C1"), 1500)
        await mention_and_wait_for_reply(bot, slack, "C2", "U2", "question two", containing="Searched")
        await wait_until_equal(lambda: recorded_tokens(bot, "workspace"), 2000)

        mine = await bot.command(slack, "/assist", "usage", user="U1", channel="C1")
        text = (await response_to(slack, mine))["text"]
        assert "*Usage of <#C1>" in text
        assert "Tokens: 1,500 — input 1,200 (cached 200), output 300 (reasoning 50)" in text
        # gpt-5.4-mini: 1,000 fresh × $0.75 + 200 cached × $0.075 + 300 × $4.50, per 1M tokens.
        assert "Estimated cost: $0.0021" in text
        assert "the workspace" not in text and "Most tokens" not in text  # U1 is no admin

        url = await bot.command(slack, "/assist", "usage", user="UADMIN", channel="C1")
        admin = (await response_to(slack, url))["text"]
        assert "*Usage of the workspace" in admin and "Tokens: 2,000" in admin
        assert "web search 1" in admin
        assert "channels: <#C1> 1,500, <#C2> 500" in admin
        assert "users: <@U1> 1,500, <@U2> 500" in admin
        assert "assistants: default 2,000" in admin
        assert "no price for" not in admin
        # A document shared here counts as stored bytes of the channel and of its uploader.
        doc = slack.add_file(
            name="notes.md", content=b"# Notes\n" * 10, mimetype="text/markdown", filetype="markdown", channel="C1"
        )
        await bot.send(file_share_message("C1", "U1", "", [doc]))
        await message_containing(slack, "C1", "notes.md")
        again = await bot.command(slack, "/assist", "usage", user="U1", channel="C1")
        assert "Stored: 80 B in 1 file(s)" in (await response_to(slack, again))["text"]
        figures = await bot.bot.ledger.usage("T1", month_of(time.time()), ["assistant:default", "user:U2"])
    assert figures["user:U2"]["web_search"] == 1 and figures["user:U2"]["turns"] == 1
    assert sum(v for k, v in figures["assistant:default"].items() if k.startswith("input@")) == 1600


@pytest.mark.parametrize("backend", ["redis", "memory"])
async def test_a_used_up_budget_stops_the_turn_before_any_model_call(slack, openai_fake, redis_url, backend):
    openai_fake.enqueue(Text.of("one", usage=usage(800, 50)), Text.of("two", usage=usage(150, 50)))
    settings = {"ASSIST_BOT_TOKEN_BUDGET_CHANNEL": 1000, "ASSIST_BOT_ADMINS": "UADMIN"}
    url = redis_url if backend == "redis" else None
    async with running_bot(slack, openai_fake, redis_url=url, **settings) as bot:
        if url:
            await bot.bot.store._redis.flushdb()
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "first", containing="one")
        await wait_until_equal(lambda: recorded_tokens(bot, "channel:C1"), 850)
        # 85 % used: the admin hears of it, by DM, once.
        alert = await wait_for(lambda: [m for m in slack.bot_messages("UADMIN")])
        assert "<#C1> has used 85 % of its monthly token budget (850 of 1,000 tokens)" in alert[0].text
        await mention_and_wait_for_reply(bot, slack, "C1", "U2", "second", containing="two")
        await wait_until_equal(lambda: recorded_tokens(bot, "channel:C1"), 1050)
        requests = len(openai_fake.response_requests)
        conversations = len(openai_fake.conversations)

        refused = await mention_and_wait_for_reply(
            bot, slack, "C1", "U1", "third", containing=texts.failure("budget_channel")
        )
        assert len(openai_fake.response_requests) == requests  # no model call
        assert len(openai_fake.conversations) == conversations  # nor anything else at OpenAI
        assert reply_texts(slack, "C1", refused["ts"]) == [texts.failure("budget_channel")]
        await bot.settled()
        figures = await bot.bot.ledger.usage("T1", month_of(time.time()), ["channel:C1"])
        assert figures["channel:C1"]["turns"] == 2  # the refused turn is no answer
        # Another channel has its own budget.
        await mention_and_wait_for_reply(bot, slack, "C2", "U1", "elsewhere", containing="You said")
        assert len(slack.bot_messages("UADMIN")) == 1  # told once, though 105 % now


async def test_a_users_budget_counts_that_user_alone(slack, openai_fake, redis_url):
    openai_fake.enqueue(Text.of("spent", usage=usage(90, 20)))
    async with running_bot(slack, openai_fake, redis_url=redis_url, ASSIST_BOT_TOKEN_BUDGET_USER=100) as bot:
        await bot.bot.store._redis.flushdb()
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "big question", containing="spent")
        await wait_until_equal(lambda: recorded_tokens(bot, "user:U1"), 110)
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "again", containing=texts.failure("budget_user"))
        url = await bot.command(slack, "/assist", "usage", user="U1", channel="C1")
        mine = (await response_to(slack, url))["text"]
        assert "*Your tokens this month:* 110 of 100 (110 %)" in mine
        assert "the workspace" not in mine  # no ASSIST_BOT_ADMINS: only the workspace's admins see it
        slack.users["UBOSS"] = {"is_admin": True}
        url = await bot.command(slack, "/assist", "usage", user="UBOSS", channel="C1")
        assert "*Usage of the workspace" in (await response_to(slack, url))["text"]
        await mention_and_wait_for_reply(bot, slack, "C1", "U2", "my turn", containing="You said")
    assert len(openai_fake.response_requests) == 2


async def test_a_model_without_a_price_is_named_and_escaped(slack, openai_fake, redis_url):
    from assist_bot.assistants import Assistant, Assistants

    odd = Assistants({"odd": Assistant(name="odd", model="in-house<!here>")}, "odd")
    openai_fake.enqueue(Text.of("Hi", usage=usage(100, 10)))
    async with running_bot(slack, openai_fake, assistants=odd, redis_url=redis_url) as bot:
        await bot.bot.store._redis.flushdb()
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "hello", containing="Hi")
        await wait_until_equal(lambda: recorded_tokens(bot, "channel:C1"), 110)
        url = await bot.command(slack, "/assist", "usage", user="U1", channel="C1")
        text = (await response_to(slack, url))["text"]
    assert "Estimated cost: $0.0000 (no price for in-house&lt;!here&gt;)" in text
    assert "<!here>" not in text


# -- slash commands: the model that fills in a tool's arguments is metered like an answer --------
async def test_a_slash_command_in_plain_words_is_refused_over_budget(slack, openai_fake, redis_url):
    openai_fake.enqueue(Text.of("spent", usage=usage(90, 20)))
    async with running_bot(slack, openai_fake, redis_url=redis_url, ASSIST_BOT_TOKEN_BUDGET_USER=100) as bot:
        await bot.bot.store._redis.flushdb()
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "big question", containing="spent")
        await wait_until_equal(lambda: recorded_tokens(bot, "user:U1"), 110)

        url = await bot.command(slack, "/weather", "how warm is it in Paris", user="U1", channel="C1")
        refused = await response_to(slack, url)
        await bot.settled()
    assert refused["response_type"] == "ephemeral"
    assert refused["text"] == texts.failure("budget_user")
    assert len(openai_fake.response_requests) == 1  # the answer's only: no model call for the arguments
    assert slack.bot_messages("C1")[-1].text == "spent"  # nothing posted in the channel


async def test_a_slash_commands_model_call_is_recorded_and_counts_toward_the_budget(
    slack, openai_fake, redis_url, meteo_env
):
    openai_fake.enqueue(Text([], calls=[("get_weather", {"city": "Paris", "unit": "celsius"})], usage=usage(80, 30)))
    async with running_bot(slack, openai_fake, redis_url=redis_url, ASSIST_BOT_TOKEN_BUDGET_USER=100) as bot:
        await bot.bot.store._redis.flushdb()
        await bot.command(slack, "/weather", "how warm is it in Paris", user="U1", channel="C1")
        posted = await wait_for(lambda: slack.bot_messages("C1"))
        assert posted[0].text.startswith("<@U1> used `/weather`:")
        await wait_until_equal(lambda: recorded_tokens(bot, "user:U1"), 110)
        scopes = ["workspace", "channel:C1", "user:U1", "assistant:default"]
        figures = await bot.bot.ledger.usage("T1", month_of(time.time()), scopes)
        assert {scope: figures[scope]["tokens"] for scope in scopes} == dict.fromkeys(scopes, 110)
        assert figures["user:U1"]["input@gpt-5.4-mini"] == 80 and figures["user:U1"]["responses"] == 1
        assert "turns" not in figures["user:U1"]  # a model call, not an answer
        metrics = bot.bot.metrics.registry
        assert metrics.get_sample_value("assist_bot_tokens_total", {"model": "gpt-5.4-mini", "kind": "input"}) == 80

        url = await bot.command(slack, "/assist", "usage", user="U1", channel="C1")
        assert "*Your tokens this month:* 110 of 100 (110 %)" in (await response_to(slack, url))["text"]
        # Over budget now, by the slash command alone: neither another command nor an answer calls the model.
        again = await bot.command(slack, "/weather", "and in Lyon?", user="U1", channel="C1")
        assert (await response_to(slack, again))["text"] == texts.failure("budget_user")
        await mention_and_wait_for_reply(bot, slack, "C1", "U1", "hello", containing=texts.failure("budget_user"))
    assert len(openai_fake.response_requests) == 1
