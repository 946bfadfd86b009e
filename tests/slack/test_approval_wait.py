"""Waiting for Approve/Decline: a click wakes the waiting turn at once, on any replica,
without polling the store; no click within ASSIST_BOT_APPROVAL_TIMEOUT counts as
declined. The time-out runs on a clock the test controls: nothing sleeps it out."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.clients import OneWorkspace
from assist_bot.store import Store
from assist_bot.store.memory import MemoryStore
from assist_bot.store.redis import RedisStore
from tests.fakes.slack import wait_for

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 600.0
REQUEST = ApprovalRequest(tool="send_email", description="", arguments={"to": "ana@example.com"}, requester="U1")


class FakeTimer:
    """Stands in for asyncio.sleep: records what was asked, fires when the test says."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.fire = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.fire.wait()


@pytest.fixture(params=["memory", "redis"])
async def stores(request, redis_url):
    """The store as two replicas see it: the same one in memory, two clients of one Redis."""
    if request.param == "memory":
        one = MemoryStore(retention_seconds=60)
        yield one, one
        return
    made = [RedisStore.from_url(redis_url, retention_seconds=60) for _ in range(2)]
    await made[0]._redis.flushdb()
    yield made[0], made[1]
    for store in made:
        await store.close()


def approvals(slack, store: Store, timer: FakeTimer) -> Approvals:
    clients = OneWorkspace(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))
    return Approvals(clients=clients, store=store, admins=frozenset({"UADMIN"}), timeout=TIMEOUT, sleep=timer.sleep)


def prompt(slack):
    return next((m for m in slack.bot_messages("C1") if m.blocks and m.blocks[-1].get("type") == "actions"), None)


def approval_id(message) -> str:
    return message.blocks[-1]["elements"][0]["value"]


async def test_a_click_on_another_replica_wakes_the_waiting_turn_at_once(slack, stores):
    timer = FakeTimer()
    waiting_side, clicked_side = approvals(slack, stores[0], timer), approvals(slack, stores[1], FakeTimer())
    asking = asyncio.create_task(waiting_side.ask(REQUEST, team="T1", channel="C1", thread_ts="1.1"))
    message = await wait_for(lambda: prompt(slack), 5)
    await wait_for(lambda: timer.asked, 5)  # the approval is stored and its wait begun
    note = await clicked_side.answer(team="T1", approval_id=approval_id(message), user="UADMIN", approved=True)
    assert note is None
    decision = await asyncio.wait_for(asking, 5)
    assert decision == Decision(approved=True, by="UADMIN")
    assert timer.asked == [TIMEOUT]  # the time-out was running, and never had to fire


async def test_a_click_before_the_prompt_post_returns_counts(slack, stores):
    """The prompt can be clicked before chat.postMessage has answered (Slack shows it at
    once): the approval is stored before the prompt goes out, so the click is not refused
    as expired, and the prompt still ends showing who decided."""
    timer = FakeTimer()
    waiting_side, clicked_side = approvals(slack, stores[0], timer), approvals(slack, stores[1], FakeTimer())
    posting = slack.hold_next("chat.postMessage")  # the prompt is out, its answer not yet back
    asking = asyncio.create_task(waiting_side.ask(REQUEST, team="T1", channel="C1", thread_ts="1.1"))
    call = await wait_for(lambda: next(iter(slack.calls_to("chat.postMessage")), None), 5)
    clicked = call.args["blocks"][-1]["elements"][0]["value"]
    note = await clicked_side.answer(team="T1", approval_id=clicked, user="UADMIN", approved=True)
    assert note is None  # today: texts.APPROVAL_EXPIRED
    posting.set()
    assert await asyncio.wait_for(asking, 5) == Decision(approved=True, by="UADMIN")
    [settled] = slack.bot_messages("C1")  # the prompt, updated once the decision and its ts met
    assert settled.text == texts.approval_outcome("send_email", approved=True, by="UADMIN")
    assert not any(b.get("type") == "actions" for b in settled.blocks)  # nobody can click twice
    assert len(slack.calls_to("chat.update")) == 1


async def test_no_click_within_the_time_out_counts_as_declined(slack, stores):
    timer = FakeTimer()
    waiting_side = approvals(slack, stores[0], timer)
    asking = asyncio.create_task(waiting_side.ask(REQUEST, team="T1", channel="C1", thread_ts="1.1"))
    message = await wait_for(lambda: prompt(slack), 5)
    approval = approval_id(message)
    await wait_for(lambda: timer.asked, 5)
    assert timer.asked == [TIMEOUT]  # waits exactly ASSIST_BOT_APPROVAL_TIMEOUT
    assert not asking.done()
    timer.fire.set()
    assert await asyncio.wait_for(asking, 5) == Decision(approved=False, timed_out=True)
    settled = next(m for m in slack.bot_messages("C1") if m.ts == message.ts)
    assert settled.text == texts.approval_timed_out("send_email")
    # A late click gets a clear answer and changes nothing.
    late = await approvals(slack, stores[1], FakeTimer()).answer(
        team="T1", approval_id=approval, user="UADMIN", approved=True
    )
    assert late == texts.APPROVAL_ALREADY_ANSWERED


async def test_waiting_does_not_poll_the_store(slack, redis_url):
    """The old wait read the approval every 0.25 s: 2,400 reads per approval at 600 s."""
    store = RedisStore.from_url(redis_url, retention_seconds=60)
    await store._redis.flushdb()
    try:
        timer = FakeTimer()
        waiting_side = approvals(slack, store, timer)
        asking = asyncio.create_task(waiting_side.ask(REQUEST, team="T1", channel="C1", thread_ts="1.1"))
        message = await wait_for(lambda: prompt(slack), 5)
        await wait_for(lambda: timer.asked, 5)
        await asyncio.sleep(0.3)  # let the wait settle (subscribe, first read)
        await store._redis.config_resetstat()
        await asyncio.sleep(1.0)  # room for polls to show up
        stats = await store._redis.info("commandstats")
        reads = sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("hgetall", "hmget", "get"))
        assert reads == 0
        await waiting_side.answer(team="T1", approval_id=approval_id(message), user="UADMIN", approved=False)
        assert (await asyncio.wait_for(asking, 5)).approved is False
    finally:
        await store.close()
