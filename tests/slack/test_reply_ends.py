"""Every reply ends, whatever Slack does meanwhile: a dropped connection, an error, a 429.
The final text (or a note) always reaches the thread and the pacing budget is returned."""

from __future__ import annotations

import pytest

from assist_bot import texts
from tests.fakes.openai import Hang, Text
from tests.fakes.slack import mention, wait_for
from tests.support.bot import running_bot
from tests.support.flows import reply_containing
from tests.support.waits import ControlledDeadlines

pytestmark = pytest.mark.timeout(60)


async def test_edits_that_lose_their_connection_end_with_the_answer_in_a_new_message(slack, openai_fake):
    openai_fake.enqueue(Text([f"w{n} " for n in range(10)], delay=0.02))
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE="edit") as bot:
        slack.drop_next("chat.update", times=1000)  # every edit dies on the way
        event = mention("C1", "U1", "hello")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "w9")
        await bot.settled()
        assert bot.bot.pacer._open == {}  # the token reserved for the final edit was returned
        statuses = slack.statuses("C1", event["ts"])
        assert statuses and statuses[-1]["status"] == ""
    final = slack.thread_replies("C1", event["ts"])[-1]
    assert final.text == "".join(f"w{n} " for n in range(10)).strip()
    assert final.blocks[-1]["type"] == "context_actions"


async def test_a_failed_turn_still_ends_with_its_note_when_edits_fail(slack, openai_fake):
    openai_fake.enqueue(Hang(after_chunks=["partial"]))
    deadlines = ControlledDeadlines()  # the test says when the response's time is up
    async with running_bot(
        slack,
        openai_fake,
        timers={"deadline": deadlines},
        ASSIST_BOT_STREAM_MODE="edit",
        ASSIST_BOT_RESPONSE_TIMEOUT=90,
    ) as bot:
        slack.fail_next("chat.update", error="internal_error", times=1000)
        event = mention("C1", "U1", "slow")
        await bot.send(event)
        await wait_for(lambda: deadlines.asked == [90])
        await wait_for(lambda: openai_fake.response_requests)
        deadlines.expire()
        await reply_containing(slack, "C1", event["ts"], texts.failure("timeout"))
        await bot.settled()
        assert bot.bot.pacer._open == {}


async def test_a_rate_limited_final_edit_is_waited_out_not_dropped(slack, openai_fake):
    # Retry-After 0: that each wait is waited out in full is shown on an injected clock
    # (test_slack_limits.py); here, through the running bot, that the final edit is retried, not dropped.
    openai_fake.enqueue(Text(["final ", "answer"]))
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE="edit") as bot:
        slack.fail_next("chat.update", status=429, retry_after=0, times=2)
        event = mention("C1", "U1", "hello")
        await bot.send(event)
        await wait_for(lambda: any(m.text == "final answer" for m in slack.thread_replies("C1", event["ts"])))
    updates = slack.calls_to("chat.update")
    assert len([c for c in updates if c.error == "ratelimited"]) == 2
    assert updates[-1].error is None
    (reply,) = slack.thread_replies("C1", event["ts"])
    assert reply.text == "final answer"


async def test_a_stream_whose_stop_fails_still_delivers_everything(slack, openai_fake):
    openai_fake.enqueue(Text(["all ", "of ", "it"], delay=0.02))
    async with running_bot(slack, openai_fake) as bot:
        slack.drop_next("chat.stopStream", times=1000)
        event = mention("C1", "U1", "hello")
        await bot.send(event)
        await wait_for(lambda: any(m.blocks for m in slack.thread_replies("C1", event["ts"])))
        await bot.settled()
    replies = slack.thread_replies("C1", event["ts"])
    assert replies[0].text == "all of it"
    assert replies[-1].blocks[-1]["type"] == "context_actions"
