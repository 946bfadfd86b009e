"""Slack's chat.update budget (Tier 3, per workspace) is respected by design."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot.slack.pacing import Pacer
from tests.fakes.openai import Text
from tests.fakes.slack import mention, wait_for
from tests.slack.fake_clock import FakeClock
from tests.support.bot import running_bot


def test_optional_edits_leave_a_token_per_open_reply_and_budgets_are_per_workspace():
    clock = FakeClock()
    pacer = Pacer(per_minute=60, clock=clock, sleep=clock.sleep)  # burst 12; no refill while the clock stands
    for _ in range(4):
        pacer.opened("T1")
    assert pacer.can_take("T1") is True
    taken = sum(pacer.try_take("T1") for _ in range(100))
    assert taken == 8  # 4 tokens stay for the 4 final edits
    assert pacer.can_take("T1") is False
    assert pacer.try_take("T2") is True
    for _ in range(4):
        pacer.closed("T1")
    assert pacer.try_take("T1") is True  # no reply left open: only the minimum reserve of 1


async def test_a_required_edit_waits_for_a_token():
    clock = FakeClock()
    pacer = Pacer(per_minute=600, clock=clock, sleep=clock.sleep)  # burst 120, refill 8 per second
    while pacer.try_take("T1"):
        pass  # one token stays (the minimum reserve)
    start = clock()
    for _ in range(60):
        await asyncio.wait_for(pacer.take("T1"), timeout=5)
    # The reserved token goes at once; the other 59 arrive at 8 per second.
    assert clock() - start == pytest.approx(59 / 8, abs=0.01)
    assert pacer.try_take("T2") is True  # another workspace's budget is untouched


@pytest.mark.timeout(60)
async def test_streaming_in_a_busy_workspace_gets_no_429s(slack, openai_fake):
    slack.rate_limit("chat.update", 20)  # a strict sliding window of 20 per minute
    openai_fake.default = lambda body: Text([f"tok{n} " for n in range(15)], delay=0.05)
    async with running_bot(
        slack, openai_fake, ASSIST_BOT_SLACK_UPDATES_PER_MINUTE=20, ASSIST_BOT_STREAM_MODE="edit"
    ) as bot:
        events = [mention(f"C{n}", "U1", f"question {n}") for n in range(4)]
        await asyncio.gather(*(bot.send(e) for e in events))
        await wait_for(
            lambda: all(any("tok14" in m.text for m in slack.bot_messages(e["channel"])) for e in events), seconds=45
        )
    assert slack.rate_limited.get("chat.update", 0) == 0
    assert len(slack.calls_to("chat.update")) <= 20


@pytest.mark.timeout(60)
async def test_native_streaming_in_a_busy_workspace_gets_no_429s(slack, openai_fake):
    slack.rate_limit("chat.appendStream", 20)  # a strict sliding window of 20 per minute
    openai_fake.default = lambda body: Text([f"tok{n} " for n in range(15)], delay=0.05)
    async with running_bot(slack, openai_fake, ASSIST_BOT_SLACK_APPENDS_PER_MINUTE=20) as bot:
        events = [mention(f"C{n}", "U1", f"question {n}") for n in range(4)]
        await asyncio.gather(*(bot.send(e) for e in events))
        await wait_for(
            lambda: all(any("tok14" in m.text for m in slack.bot_messages(e["channel"])) for e in events), seconds=45
        )
    assert slack.rate_limited.get("chat.appendStream", 0) == 0
    assert 0 < len(slack.calls_to("chat.appendStream")) <= 20
    for e in events:
        (reply,) = slack.bot_messages(e["channel"])
        assert reply.text == "".join(f"tok{n} " for n in range(15))


def test_a_free_append_goes_to_the_answer_that_waited_longest_since_its_last_update():
    clock = FakeClock()
    pacer = Pacer(per_minute=60, clock=clock, sleep=clock.sleep)  # burst 12, then 0.8 tokens a second
    while pacer.try_take("T1"):
        pass  # the burst is spent: from now on a token frees up now and then
    granted: list[str] = []
    for _ in range(60):
        clock.now += 0.25
        # Every tick the answers ask in the same order: without a line, "a" (first to ask
        # whenever a token is free) would take every one of them.
        for reply in ("a", "b", "c", "d"):
            if pacer.try_take("T1", reply):
                granted.append(reply)
    assert len(granted) >= 8
    assert granted[:8] == ["a", "b", "c", "d", "a", "b", "c", "d"]  # round-robin
    assert all(granted.count(r) in (len(granted) // 4, len(granted) // 4 + 1) for r in "abcd")
    assert pacer.try_take("T2", "a") is True  # another workspace has its own line


def test_an_answer_that_stops_asking_does_not_hold_the_line():
    clock = FakeClock()
    pacer = Pacer(per_minute=60, clock=clock, sleep=clock.sleep)
    while pacer.try_take("T1"):
        pass
    assert pacer.try_take("T1", "gone") is False  # waits in line, then ends without a word
    granted = []
    for _ in range(40):
        clock.now += 0.25
        granted += [r for r in ("x", "y") if pacer.try_take("T1", r)]
    assert granted and set(granted) == {"x", "y"}  # once stale, "gone" is skipped
    pacer.forget("T1", "x")
    pacer.forget("T1", "y")
    assert pacer._line == {} and pacer._last == {}  # an ended answer leaves nothing behind


def test_an_answer_whose_text_just_showed_waits_behind_the_others():
    clock = FakeClock()
    pacer = Pacer(per_minute=60, clock=clock, sleep=clock.sleep)
    while pacer.try_take("T1"):
        pass
    for reply in ("a", "b"):  # both start streaming (their first text shows), "a" first
        pacer.shown("T1", reply)
        clock.now += 0.1
    assert [r for r in ("b", "a") if pacer.try_take("T1", r)] == []  # no free token yet: both wait
    pacer.shown("T1", "a")  # "a" showed text another way (a required append): "b" has waited longer
    clock.now += 2.0  # a token frees up
    assert [r for r in ("a", "b") if pacer.try_take("T1", r)] == ["b"]
