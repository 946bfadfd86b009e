"""Slack's limits, honoured on every replica: a 429 pauses its method for the workspace on
every replica sharing the store, calls wait and then go through (the final text is never
given up on while Slack only asks to wait), and new messages are paced per channel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.calls import RateGate, SlackCalls, without_retries
from assist_bot.slack.pacing import PostPacer
from assist_bot.store.memory import MemoryStore
from tests.fakes.openai import Text
from tests.fakes.slack import mention, wait_for
from tests.slack.fake_clock import FakeClock
from tests.support.bot import running_bot

ANSWER = [f"w{n} " for n in range(8)]
FULL = "".join(ANSWER).strip()
# A call the bot sent before it could know of a 429 (in flight while the 429 was on its way
# back, or while the pause was being recorded) may still arrive just after it.
IN_FLIGHT = 0.25


def answered(slack, event) -> bool:
    replies = slack.thread_replies(event["channel"], event["ts"])
    return bool(replies) and replies[-1].text.strip() == FULL  # a stream keeps the model's last space


def calls_inside_announced_waits(slack, method: str) -> list[tuple[float, float]]:
    """(429 at, call at) for every call of `method` that reached Slack inside a wait it announced."""
    calls = slack.calls_to(method)
    inside = []
    for limited in (c for c in calls if c.error == "ratelimited"):
        start, end = limited.at + IN_FLIGHT, limited.at + limited.retry_after
        inside += [(limited.at, c.at) for c in calls if start < c.at < end]
    return inside


# -- the gate on its own: two replicas' gates over one store, on a clock that moves by hand ----
async def test_a_pause_recorded_by_one_replica_holds_the_method_on_another():
    clock = FakeClock()
    store = MemoryStore(retention_seconds=600, clock=clock)
    one = RateGate(store, clock=clock, sleep=clock.sleep)
    two = RateGate(store, clock=clock, sleep=clock.sleep)
    await one.pause("T1", "chat.update", 3)
    assert await two.wait_time("T1", "chat.update") == 3
    assert await two.wait_time("T1", "chat.postMessage") == 0  # only that method…
    assert await two.wait_time("T2", "chat.update") == 0  # …of that workspace
    await asyncio.wait_for(two.wait("T1", "chat.update"), timeout=5)
    assert clock.slept == [3]
    await one.pause("T1", "chat.update", 2)
    await two.pause("T1", "chat.update", 5)  # the longer wait wins, for both
    assert await one.wait_time("T1", "chat.update") == 5


async def test_a_final_call_waits_out_every_429_however_long(slack):
    """The final text is never given up on while Slack only asks to wait: twelve 429s with
    Retry-After 30 (six minutes in all) are waited out, on the injected clock."""
    clock = FakeClock()
    calls = SlackCalls(RateGate(MemoryStore(retention_seconds=600, clock=clock), clock=clock, sleep=clock.sleep))
    client = without_retries(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))
    slack.fail_next("chat.postMessage", status=429, retry_after=30, times=12)
    outcome = await asyncio.wait_for(
        calls.run("T1", "chat.postMessage", lambda: client.chat_postMessage(channel="C1", text="final"), must=True),
        timeout=30,
    )
    assert outcome.ok
    assert [m.text for m in slack.bot_messages("C1")] == ["final"]
    assert len(slack.calls_to("chat.postMessage")) == 13
    assert sum(clock.slept) >= 12 * 30  # each 429's wait, in full, before the next try
    # A call that may be skipped gives up at its first 429 and leaves the method paused.
    slack.fail_next("chat.update", status=429, retry_after=30)
    skipped = await calls.run("T1", "chat.update", lambda: client.chat_update(channel="C1", ts="1.1", text="x"))
    assert skipped.error == "ratelimited"
    assert await calls.gate.wait_time("T1", "chat.update") == 30


async def test_posts_in_one_channel_go_a_burst_then_one_a_second():
    clock = FakeClock()
    store = MemoryStore(retention_seconds=600, clock=clock)
    pacer = PostPacer(store, interval=1.0, burst=3, sleep=clock.sleep)
    start, went = clock(), []
    for _ in range(6):
        await asyncio.wait_for(pacer.take("T1", "C1"), timeout=5)
        went.append(clock() - start)
    assert went == [0, 0, 0, 1, 2, 3]
    assert await pacer.take("T1", "C2") == 0  # another channel has its own pace


# -- end to end: two bot processes' worth of replicas on one real redis-server ---------------
@pytest.mark.timeout(90)
@pytest.mark.parametrize(("mode", "method"), [("edit", "chat.update"), ("native", "chat.appendStream")])
async def test_a_429_pauses_the_method_on_every_replica_and_every_answer_completes(
    slack, openai_fake, clean_redis, mode, method
):
    # At most 4 calls of the method in any 3 s, for the workspace: a 429 announces when there is room.
    slack.rate_limit(method, 4, window=3)
    for _ in range(4):
        openai_fake.enqueue(Text(ANSWER, delay=0.05))
    async with (
        running_bot(slack, openai_fake, REDIS_URL=clean_redis, ASSIST_BOT_STREAM_MODE=mode) as one,
        running_bot(slack, openai_fake, REDIS_URL=clean_redis, ASSIST_BOT_STREAM_MODE=mode) as two,
    ):
        first = [mention(f"C{n}", "U1", f"first {n}") for n in range(4)]
        await asyncio.gather(*(one.send(e) for e in first))
        await wait_for(lambda: slack.rate_limited[method] > 0, seconds=20)
        # Replica one has just been told to wait; replica two now gets answers of its own to
        # stream (their first text comes later than any call in flight could).
        for _ in range(4):
            openai_fake.enqueue(Text(ANSWER, delay=IN_FLIGHT + 0.1))
        later = [mention(f"C{n}", "U1", f"later {n}") for n in range(4, 8)]
        await asyncio.gather(*(two.send(e) for e in later))
        await wait_for(lambda: all(answered(slack, e) for e in first + later), seconds=75)
    assert calls_inside_announced_waits(slack, method) == []
    assert slack.rate_limited[method] > 0
    for event in first + later:  # one message each, ending with the whole answer
        (reply,) = slack.thread_replies(event["channel"], event["ts"])
        assert reply.text.strip() == FULL


@pytest.mark.timeout(90)
@pytest.mark.parametrize("replicas", [1, 2])
async def test_ten_answers_at_once_in_one_channel_draw_no_429(slack, openai_fake, clean_redis, replicas):
    """Slack allows about one new message a second per channel, with short bursts: the bot paces
    its posts to that (on every replica together), so none is refused."""
    slack.rate_limit_per_channel("chat.postMessage", per_second=1, burst=4)
    openai_fake.default = lambda body: Text(ANSWER)
    settings = {"ASSIST_BOT_STREAM_MODE": "edit"} | ({"REDIS_URL": clean_redis} if replicas == 2 else {})
    async with contextlib.AsyncExitStack() as stack:
        bots = [await stack.enter_async_context(running_bot(slack, openai_fake, **settings)) for _ in range(replicas)]
        events = [mention("C1", f"U{n}", f"question {n}") for n in range(10)]
        await asyncio.gather(*(bots[n % replicas].send(e) for n, e in enumerate(events)))
        await wait_for(lambda: all(answered(slack, e) for e in events), seconds=60)
    assert slack.rate_limited["chat.postMessage"] == 0
    assert len(slack.calls_to("chat.postMessage")) == 10  # one message per answer, none retried
    posted = sorted(c.at for c in slack.calls_to("chat.postMessage"))
    assert posted[-1] - posted[0] >= 5  # a burst of 3, then one a second (7 s; arrival times vary a little)
