"""Slack's chat.update budget (Tier 3, per workspace) is respected by design."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from assist_bot.slack.pacing import FORGET_AFTER, GROWTH, Pacer
from assist_bot.store.base import SlackLesson
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


def test_with_no_known_limit_every_append_goes_until_a_429_teaches_the_workspace_its_limit():
    clock = FakeClock()
    pacer = Pacer(per_minute=None, clock=clock, sleep=clock.sleep)
    for _ in range(100):  # 100 appends in 30 s, every one taken by Slack
        assert pacer.try_take("T1", "a") is True
        pacer.accepted("T1")
        clock.now += 0.3
    assert pacer.limit("T1") is None
    pacer.limited("T1")  # the 101st drew a 429
    assert pacer.limit("T1") == pytest.approx(80)  # a little under what Slack took in the last minute
    assert pacer.try_take("T1") is False  # Slack just said "not now"
    assert pacer.limit("T2") is None and pacer.try_take("T2") is True  # another workspace learned nothing
    learned_at = clock.now
    granted = 0
    while clock.now - learned_at < 60:  # asking ten times a second for the next minute
        clock.now += 0.1
        granted += pacer.try_take("T1")
    assert 40 <= granted <= 80
    # It grows back while Slack stays quiet, and is forgotten after half an hour of quiet.
    assert pacer.limit("T1") == pytest.approx(120)
    clock.now = learned_at + 180
    assert pacer.limit("T1") == pytest.approx(80 * 1.5**3)
    clock.now = learned_at + 1800
    assert pacer.limit("T1") is None


def test_429s_of_appends_already_on_their_way_teach_once_and_a_429_at_the_new_pace_teaches_again():
    clock = FakeClock()
    pacer = Pacer(per_minute=None, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        pacer.try_take("T1")
        pacer.accepted("T1")
    for _ in range(5):  # five more on their way, then Slack answers each with a 429
        pacer.try_take("T1")
    for _ in range(5):
        pacer.limited("T1")
    assert pacer.limit("T1") == pytest.approx(40)  # not 40, 32, 25.6, …
    clock.now += 30
    assert pacer.try_take("T1") is True  # an append at the new pace…
    pacer.limited("T1")  # …still too many for Slack: it backs off again
    assert pacer.limit("T1") == pytest.approx(32)


def test_a_configured_limit_is_a_ceiling_that_a_429_lowers():
    clock = FakeClock()
    pacer = Pacer(per_minute=100, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        pacer.accepted("T1")
    pacer.limited("T1")
    assert pacer.limit("T1") == pytest.approx(24)
    clock.now += 4 * 60  # 24 × 1.5⁴ = 121.5: back at the ceiling, never above it
    assert pacer.limit("T1") == pytest.approx(100)
    tier4 = Pacer(per_minute=None, floor=100, clock=clock, sleep=clock.sleep)
    tier4.limited("T1")  # a 429 with nothing taken here in the last minute (another replica's calls)
    assert tier4.limit("T1") == pytest.approx(100)  # never under what Slack publishes for the method
    tier4.share(2)
    for _ in range(10):
        tier4.try_take("T2")
        tier4.accepted("T2")
    tier4.limited("T2")
    assert tier4.limit("T2") == pytest.approx(50)  # two replicas: each one's part of that floor


def test_a_lesson_is_the_workspace_s_limit_and_another_replica_takes_its_part_of_it_once():
    clock = FakeClock()
    one, two = (Pacer(per_minute=None, floor=10, clock=clock, sleep=clock.sleep) for _ in range(2))
    for pacer in (one, two):
        pacer.share(2)
    for _ in range(50):
        one.try_take("T1")
        one.accepted("T1")
    lesson = one.limited("T1")
    assert lesson is not None and lesson.lasts == FORGET_AFTER
    assert one.limit("T1") == pytest.approx(40) and lesson.per_minute == pytest.approx(80)  # × 2 replicas
    assert one.limited("T1") is None  # a 429 of an append already on its way: nothing new to share

    assert two.limit("T1") is None
    two.heard("T1", replace(lesson, age=120))  # learned two minutes ago, read with the pause
    assert two.limit("T1") == pytest.approx(40 * GROWTH**2)  # its part, grown back as the learner's
    two.heard("T1", SlackLesson("older", 1000, lasts=FORGET_AFTER, age=600))  # older than what it knows
    assert two.limit("T1") == pytest.approx(40 * GROWTH**2)
    two.heard("T1", SlackLesson("fresh", 6, lasts=FORGET_AFTER))
    assert two.limit("T1") == pytest.approx(5)  # never under its part of the floor
    assert two.try_take("T1") is False  # Slack said "not now" just now: the workspace's burst is spent
    clock.now += FORGET_AFTER
    assert two.limit("T1") is None  # forgotten when the learner forgets it

    clock.now += 60
    assert one.limit("T1") is None
    for _ in range(50):
        one.try_take("T1")
        one.accepted("T1")
    again = one.limited("T1")
    assert again is not None
    clock.now += 30
    assert one.try_take("T1") is True  # an append at the new pace…
    one.heard("T1", again)  # (its own lesson, read back with the pause before it: known already)
    assert one.limited("T1") is not None  # …that still draws a 429 teaches again


async def wave(slack, bot, first: int) -> list[dict]:
    """Four questions in four channels at once, answered to the end."""
    events = [mention(f"C{n}", "U1", f"question {n}") for n in range(first, first + 4)]
    await asyncio.gather(*(bot.send(e) for e in events))
    await wait_for(lambda: all(slack.bot_messages(e["channel"]) for e in events), seconds=30)
    await wait_for(
        lambda: all(any("tok59" in m.text for m in slack.bot_messages(e["channel"])) for e in events), seconds=30
    )
    return events


@pytest.mark.timeout(60)
async def test_a_429_teaches_the_bot_the_workspace_s_append_limit_and_later_answers_stay_under_it(slack, openai_fake):
    slack.rate_limit("chat.appendStream", 30, window=3.0)  # a limit Slack publishes nowhere
    openai_fake.default = lambda body: Text([f"tok{n} " for n in range(60)], delay=0.05)

    async with running_bot(slack, openai_fake, ASSIST_BOT_SLACK_APPENDS_PER_MINUTE=None) as bot:
        first = await wave(slack, bot, 0)
        limited = slack.rate_limited.get("chat.appendStream", 0)
        # Each answer had at most one append on its way when Slack said "too many": one lesson.
        assert 1 <= limited <= 4
        await asyncio.sleep(3.0)  # Slack's window empties (its Retry-After)
        before = len(slack.calls_to("chat.appendStream"))
        second = await wave(slack, bot, 4)
        assert len(slack.calls_to("chat.appendStream")) > before  # the second answers still stream…
        assert slack.rate_limited.get("chat.appendStream", 0) == limited  # …at the learned pace
    for e in first + second:
        (reply,) = slack.bot_messages(e["channel"])
        assert reply.text == "".join(f"tok{n} " for n in range(60))  # nothing lost, nothing twice


@pytest.mark.timeout(90)
async def test_a_429_drawn_by_one_replica_teaches_every_replica_sharing_its_redis(slack, openai_fake, redis_url):
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    slack.rate_limit("chat.appendStream", 30, window=3.0)
    openai_fake.default = lambda body: Text([f"tok{n} " for n in range(60)], delay=0.05)
    settings = {"REDIS_URL": redis_url, "ASSIST_BOT_SLACK_APPENDS_PER_MINUTE": None}

    async with running_bot(slack, openai_fake, **settings) as one, running_bot(slack, openai_fake, **settings) as two:
        first = await wave(slack, one, 0)
        limited = slack.rate_limited.get("chat.appendStream", 0)
        assert limited >= 1  # one replica learned the workspace's limit the hard way
        await asyncio.sleep(3.0)  # Slack's window empties (its Retry-After)
        before = len(slack.calls_to("chat.appendStream"))
        second = await wave(slack, two, 4)  # the other replica answers next: it has drawn no 429 itself
        assert len(slack.calls_to("chat.appendStream")) > before  # its answers still stream…
        assert slack.rate_limited.get("chat.appendStream", 0) == limited  # …at the pace the first one learned
        assert two.bot.append_pacer.limit("T1") is not None
    for e in first + second:
        (reply,) = slack.bot_messages(e["channel"])
        assert reply.text == "".join(f"tok{n} " for n in range(60))
