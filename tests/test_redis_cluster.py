"""The bot on a real three-node Redis Cluster, end to end: two replicas share a thread's
queue, a retried event is answered once, and the thread's conversation survives a
restart — every multi-key step of a turn runs inside one hash slot."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster

from assist_bot.store.redis import RedisStore
from tests.fakes.openai import input_texts
from tests.fakes.slack import message
from tests.support.bot import running_bot
from tests.support.flows import reply_containing
from tests.support.replicas import retry_and_follow_ups_on_two_replicas

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def cluster(redis_cluster_url):
    client = RedisCluster.from_url(redis_cluster_url.replace("+cluster", ""))
    await client.flushdb()
    yield redis_cluster_url
    await client.flushdb()
    await client.aclose()


async def test_two_replicas_on_a_cluster_answer_a_retry_once_and_share_the_thread_queue(slack, openai_fake, cluster):
    first = await retry_and_follow_ups_on_two_replicas(slack, openai_fake, cluster, "clustered")
    assert len(openai_fake.response_requests) == 2
    assert input_texts(openai_fake.response_requests[1]) == [
        "[user-U2 (U2)] queued on one",
        "[user-U3 (U3)] queued on two",
    ]
    async with running_bot(slack, openai_fake, REDIS_URL=cluster) as again:
        assert isinstance(again.bot.store, RedisStore) and isinstance(again.bot.store._redis, RedisCluster)
        # A new process on the cluster knows the thread (no mention needed) and its conversation.
        await again.send(message("C1", "U1", "after a restart", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "after a restart")
    convs = {r["conversation"] for r in openai_fake.response_requests}
    assert len(convs) == 1 and len(openai_fake.response_requests) == 3
    assert openai_fake.locked_rejections == 0


async def test_decisions_on_any_node_wake_turns_waiting_on_another_replica(cluster):
    """Approvals live in many slots (on every node); the decision is published from the
    node of its key and reaches the other replica's one subscription, wherever it is."""
    waiting_side = RedisStore.from_url(cluster, retention_seconds=60)
    clicked_side = RedisStore.from_url(cluster, retention_seconds=60)
    try:
        ids = [f"ap{n}" for n in range(12)]
        for approval in ids:
            await waiting_side.put_approval("T1", approval, {"tool": "send_email"})
        nodes = {waiting_side._redis.get_node_from_key(waiting_side.keys.approval("T1", a)).name for a in ids}
        assert len(nodes) == 3  # the approvals are spread over the three nodes
        waiting = [asyncio.create_task(waiting_side.wait_for_decision("T1", a)) for a in ids]
        await asyncio.wait_for(waiting_side._decisions._subscribed.wait(), 10)
        for n, approval in enumerate(ids):
            assert await clicked_side.decide_approval("T1", approval, {"approved": True, "by": f"U{n}"})
        decisions = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert [d["by"] for d in decisions] == [f"U{n}" for n in range(12)]
    finally:
        await waiting_side.close()
        await clicked_side.close()
