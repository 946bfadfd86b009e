"""Redis down, Redis back (a real redis-server stopped and started again mid-test): the bot
does not crash, /healthz answers 503, new events are not acknowledged (Slack delivers them
again), the answer in flight finishes, and once Redis is back the bot goes on without a
restart — the redelivered event is answered, once."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from assist_bot.store import ThreadKey
from tests.fakes.openai import Text
from tests.fakes.slack import event_body, mention, wait_for
from tests.support.bot import running_bot
from tests.support.flows import message_containing
from tests.support.redis_server import restartable_redis

pytestmark = pytest.mark.timeout(60)


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status


async def wait_health(url: str, status: int, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (got := await health(url)) != status:
        assert asyncio.get_running_loop().time() < deadline, f"/healthz stayed {got}, never {status}"
        await asyncio.sleep(0.05)


async def test_redis_down_then_back(slack, openai_fake, caplog):
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["Before ", "the outage, ", "after it"], delay=0.02, gate=gate))
    with restartable_redis() as redis:
        async with running_bot(slack, openai_fake, REDIS_URL=redis.url) as bot:
            assert await health(bot.health_url) == 200
            first = mention("C1", "U1", "in flight")
            assert await bot.send(first) == 200
            await wait_for(lambda: openai_fake.busy_conversations)

            redis.stop()
            await wait_health(bot.health_url, 503)
            later = mention("C2", "U2", "while Redis is down")
            assert await bot.send(later, event_id="EvDown") != 200  # not taken: Slack will retry

            gate.set()  # the answer in flight finishes, Redis or not
            await wait_for(
                lambda: any(r.text == "Before the outage, after it" for r in slack.thread_replies("C1", first["ts"]))
            )
            # Its end could not be recorded yet: the turn tries again, with back-off.
            await wait_for(lambda: "ending the turn again" in caplog.text)

            redis.start()
            await wait_health(bot.health_url, 200)
            # Slack's retry of the refused event is taken and answered.
            assert await bot.send(later, event_id="EvDown", retry_num=1) == 200
            await message_containing(slack, "C2", "while Redis is down")
            # The turn in flight recorded its end once Redis was back: its thread is free, not
            # left for the sweeper to answer again.
            store = bot.bot.store
            thread = ThreadKey("T1", "C1", first["ts"])
            await wait_for_gone(store, [store.keys.lock(thread), store.keys.inflight(thread)])
    assert len(openai_fake.response_requests) == 2
    assert len(slack.thread_replies("C1", first["ts"])) == 1


async def wait_for_gone(store, keys, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while await store._redis.exists(*keys):
        assert asyncio.get_running_loop().time() < deadline, f"{keys} never went"
        await asyncio.sleep(0.05)


async def test_socket_mode_leaves_an_event_unacknowledged_while_redis_is_down(slack, openai_fake, caplog):
    with restartable_redis() as redis:
        async with running_bot(slack, openai_fake, REDIS_URL=redis.url, socket_mode=True):
            await slack.wait_socket_connected()
            redis.stop()
            event = mention("C3", "U1", "over the socket, Redis away")
            refused = await slack.push_socket_event(event_body(event))
            await wait_for(lambda: "Failed to run listener function" in caplog.text)
            redis.start()
            again = await slack.push_socket_event(event_body(event), retry_attempt=1, retry_reason="timeout")
            await slack.wait_ack(again)
            assert refused not in slack.acks  # never acknowledged: Slack redelivers it
            await message_containing(slack, "C3", "Redis away")
    assert len(openai_fake.response_requests) == 1


async def test_a_redis_that_does_not_answer_at_all_makes_healthz_503_not_hang(slack, openai_fake):
    with restartable_redis() as redis:
        async with running_bot(slack, openai_fake, REDIS_URL=redis.url) as bot:
            assert await health(bot.health_url) == 200
            redis.freeze()
            try:
                async with asyncio.timeout(10):  # PING_TIMEOUT (2 s) plus room for a busy machine
                    assert await health(bot.health_url) == 503
            finally:
                redis.thaw()
            await wait_health(bot.health_url, 200)
