"""Threads that never die of length (issue 9 item 7): each assistant picks how a thread
outgrows the model's context window, and every request carries a per-thread cache key and
a hashed per-user safety identifier."""

from __future__ import annotations

import re

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants
from tests.fakes.slack import mention, message, wait_for
from tests.support.assistants_files import write_assistants_file
from tests.support.bot import running_bot

pytestmark = pytest.mark.timeout(60)

LONG = "please remember this fairly long message about the quarterly numbers " * 2  # 20 words


def one(context: str) -> Assistants:
    return Assistants({"a": Assistant(name="a", model="gpt-5.4-mini", context=context)}, "a")  # type: ignore[arg-type]


async def chat(slack, bot, turns: int) -> list[str]:
    """A thread of `turns` long messages; returns the bot's reply after each one."""
    first = mention("C1", "U1", f"{LONG} 0")
    await bot.send(first)
    shown = []
    for n in range(turns):
        if n:
            await bot.send(message("C1", "U1", f"{LONG} {n}", thread_ts=first["ts"]))
        await wait_for(
            lambda n=n: (
                len(slack.thread_replies("C1", first["ts"])) > n
                and not slack.thread_replies("C1", first["ts"])[n].text.startswith(texts.THINKING)
                and (
                    slack.thread_replies("C1", first["ts"])[n].text.endswith(f" {n}")
                    or "⚠️" in slack.thread_replies("C1", first["ts"])[n].text
                )
            ),
            message=f"reply {n}",
        )
        shown.append(slack.thread_replies("C1", first["ts"])[n].text)
    return shown


async def test_with_truncation_off_a_full_thread_fails_with_the_context_window_note(slack, openai_fake):
    openai_fake.context_window = 70  # words: three turns of ~20 words in, ~20 out each
    async with running_bot(slack, openai_fake, assistants=one("off")) as bot:
        shown = await chat(slack, bot, 3)
    assert texts.failure("context_window") in shown[-1]
    assert all(r["truncation"] == "disabled" for r in openai_fake.response_requests)


@pytest.mark.parametrize(("context", "counter"), [("truncate", "truncations"), ("compact", "compactions")])
async def test_a_thread_whose_context_is_full_keeps_answering(slack, openai_fake, context, counter):
    openai_fake.context_window = 70
    async with running_bot(slack, openai_fake, assistants=one(context)) as bot:
        shown = await chat(slack, bot, 5)
    assert not any("⚠️" in text for text in shown), shown
    assert getattr(openai_fake, counter) >= 2  # the fake had to make room, more than once
    request = openai_fake.response_requests[-1]
    if context == "truncate":
        assert request["truncation"] == "auto" and "context_management" not in request
    else:
        assert request["context_management"] == [{"type": "compaction"}] and "truncation" not in request


async def test_every_request_has_a_per_thread_cache_key_and_a_hashed_per_user_safety_identifier(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        first = mention("C1", "U1", "hello")
        await bot.send(first)
        await wait_for(lambda: len(openai_fake.response_requests) == 1, message="first request")
        # With native streaming the reply exists only once its first text arrives.
        await wait_for(
            lambda: any("hello" in m.text for m in slack.thread_replies("C1", first["ts"])), message="first answer"
        )
        await bot.send(message("C1", "U2", "me too", thread_ts=first["ts"]))
        await wait_for(lambda: len(openai_fake.response_requests) == 2, message="second request")
        other = mention("C1", "U1", "another thread")
        await bot.send(other)
        await wait_for(lambda: len(openai_fake.response_requests) == 3, message="third request")
    one_thread, same_thread, other_thread = openai_fake.response_requests
    assert one_thread["prompt_cache_key"] == same_thread["prompt_cache_key"] != other_thread["prompt_cache_key"]
    assert one_thread["safety_identifier"] == other_thread["safety_identifier"]  # U1 both times
    assert same_thread["safety_identifier"] != one_thread["safety_identifier"]  # U2
    for request in openai_fake.response_requests:
        # Stable and opaque: no Slack id reaches OpenAI in these fields.
        assert re.fullmatch(r"[0-9a-f]{64}", request["safety_identifier"])
        assert not re.search(r"U1|U2|C1|T1", request["prompt_cache_key"] + request["safety_identifier"])


def test_the_assistants_file_picks_the_context_mode(tmp_path):
    path = write_assistants_file(
        tmp_path,
        'version = 1\ndefault = "a"\n[assistants.a]\ncontext = "compact"\ncompact_threshold = 50000\n'
        '[assistants.b]\n[assistants.c]\ncontext = "off"\n',
    )
    loaded = Assistants.load(path, model="gpt-5.4-mini")
    assert loaded.get("a").context_request() == {
        "context_management": [{"type": "compaction", "compact_threshold": 50000}]
    }
    assert loaded.get("b").context_request() == {"truncation": "auto"}  # the default: threads never die
    assert loaded.get("c").context_request() == {"truncation": "disabled"}
