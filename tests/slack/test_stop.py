"""`stop` in the thread cancels the answer streaming there: only the asker or an admin may,
the message says who stopped it, and the next message is answered normally."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot import texts
from tests.fakes.openai import Text
from tests.fakes.slack import mention, message, wait_for
from tests.support.bot import running_bot

pytestmark = pytest.mark.timeout(60)


def thread_text(slack, channel, thread_ts):
    return "".join(m.text for m in slack.bot_messages(channel) if m.thread_ts == thread_ts)


@pytest.mark.parametrize("mode", ["native", "edit"])
async def test_the_asker_stops_an_answer_and_the_thread_goes_on(slack, openai_fake, mode):
    never = asyncio.Event()  # the model would go on for ever
    openai_fake.enqueue(Text(["Once ", "upon ", "a time"], gate=never))
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE=mode, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "tell me a long story")
        await bot.send(event)
        await wait_for(lambda: "upon" in thread_text(slack, "C1", event["ts"]))
        await bot.send(message("C1", "U2", "stop", thread_ts=event["ts"]))  # not theirs to stop
        await asyncio.sleep(0.3)
        assert texts.failure("stopped:U2") not in thread_text(slack, "C1", event["ts"])
        await bot.send(message("C1", "U1", "Stop", thread_ts=event["ts"]))
        await wait_for(lambda: texts.failure("stopped:U1") in thread_text(slack, "C1", event["ts"]), seconds=5)
        await wait_for(lambda: bot.bot.dispatcher.in_flight == 0)
        assert len(openai_fake.response_requests) == 1  # the stop was not asked as a question
        await bot.send(message("C1", "U1", "a short one then", thread_ts=event["ts"]))
        await wait_for(lambda: "You said: [user-U1 (U1)] a short one then" in thread_text(slack, "C1", event["ts"]))
    assert "Once upon" in thread_text(slack, "C1", event["ts"])  # what was said stays


async def test_an_admin_may_stop_anyones_answer(slack, openai_fake):
    never = asyncio.Event()
    openai_fake.enqueue(Text(["Going ", "on"], gate=never))
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "go on")
        await bot.send(event)
        await wait_for(lambda: "Going" in thread_text(slack, "C1", event["ts"]))
        await bot.send(message("C1", "UADMIN", "stop", thread_ts=event["ts"]))
        await wait_for(lambda: texts.failure("stopped:UADMIN") in thread_text(slack, "C1", event["ts"]), seconds=5)
