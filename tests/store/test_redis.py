"""What only the Redis twin has: key expiry as Redis holds it, the connection pool,
replicas' heartbeats, decisions announced across replicas, and a reset's fallback for keys
older than the channels' indexes of threads."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster

from assist_bot.store import ChannelKey, ThreadKey
from assist_bot.store.base import ReplyRef
from assist_bot.store.memory import MemoryStore
from assist_bot.store.redis import UPGRADE_GRACE, RedisStore
from tests.store.test_contract import FakeClock, new_turn

pytestmark = pytest.mark.timeout(30)

THREAD = ThreadKey("T1", "C1", "100.1")


@pytest.fixture
async def replicas(redis_url):
    """Two stores on one Redis, as two replicas have."""
    made = [RedisStore.from_url(redis_url, retention_seconds=3600) for _ in range(2)]
    await made[0]._redis.flushdb()
    yield made
    for store in made:
        await store.close()


async def test_every_key_but_channel_settings_expires(replicas):
    """Stale data must not pile up in Redis: every key we write has a TTL."""
    store = replicas[0]
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    await store.begin_turn(THREAD)
    await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="a", lease=5)
    await store.end_turn(THREAD, "a", 5, server_state="conv_1")  # m2 waits: the lock is kept
    await store.end_turn(ThreadKey("T1", "C1", "6.6"), "a", 5, history=[{"role": "user", "content": "x"}])
    await store.enqueue(ThreadKey("T1", "C1", "5.5"), {"n": 1}, dedupe_token="m5", owner="a", lease=5)
    await store.claim("T1", "files:C1:1.0")
    await store.put_approval("T1", "ap1", {"tool": "x"})
    await store.add_thread_file(THREAD, "file-a")
    await store.heartbeat("a", 30)
    await store.begin_turn(THREAD)  # m2's turn runs: its in-flight messages and reply are recorded
    await store.note_reply(THREAD, ReplyRef.in_thread(THREAD, "100.2"))
    await store.watch_turn(THREAD, 5)
    await store.hold_sweeper("a", 5)
    keys = await store._redis.keys("assist-bot:*")
    assert {store.keys.inflight(THREAD), store.keys.turn(THREAD), store.keys.turns(), store.keys.sweeper()} <= set(keys)
    for key in keys:
        assert await store._redis.ttl(key) > 0, key


async def test_ping_is_false_when_the_server_is_gone():
    from tests.support.redis_server import free_port

    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", retention_seconds=60)
    try:
        assert await store.ping() is False
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_a_burst_waits_for_a_connection(request, backend):
    """More concurrent operations than pooled connections: they queue, none fails (a
    cluster's client would refuse them past its connections per node)."""
    url = request.getfixturevalue("redis_url" if backend == "redis" else "redis_cluster_url")
    store = RedisStore.from_url(url, retention_seconds=60, max_connections=5)
    await store._redis.flushdb()
    try:
        results = await asyncio.gather(
            *(
                store.enqueue(ThreadKey("T1", "C1", f"{n}.0"), {"n": n}, dedupe_token=f"m{n}", owner="a", lease=5)
                for n in range(300)
            ),
            *(
                store.note_reply(ThreadKey("T1", "C1", f"{n}.0"), ReplyRef("T1", "C1", f"{n}.0", "1.1"))
                for n in range(300)
            ),
        )
        assert all(r.accepted and r.locked for r in results[:300])
    finally:
        await store.close()


async def test_heartbeats_count_live_replicas(redis_url):
    clock = FakeClock(1_700_000_000.0)
    store = RedisStore.from_url(redis_url, retention_seconds=60, now=clock)
    await store._redis.flushdb()
    try:
        assert await store.heartbeat("a", ttl=10) == 1
        assert await store.heartbeat("b", ttl=10) == 2
        clock.now += 6
        assert await store.heartbeat("a", ttl=10) == 2
        clock.now += 6
        assert await store.heartbeat("a", ttl=10) == 1  # b stopped beating 12 s ago
        assert 0 < await store._redis.ttl(store.keys.replicas()) <= 11
    finally:
        await store.close()
    assert await MemoryStore(retention_seconds=60).heartbeat("a", ttl=1) == 1


async def test_a_decision_on_one_replica_wakes_the_turn_waiting_on_another(replicas):
    waiting_side, clicked_side = replicas
    await waiting_side.put_approval("T1", "ap1", {"tool": "send_email"})
    waiting = asyncio.create_task(waiting_side.wait_for_decision("T1", "ap1"))
    await asyncio.wait_for(waiting_side._decisions._subscribed.wait(), 5)
    assert await clicked_side.decide_approval("T1", "ap1", {"approved": True, "by": "U1"})
    assert await asyncio.wait_for(waiting, 5) == {"approved": True, "by": "U1"}


async def read_commands(store: RedisStore) -> int:
    stats = await store._redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_a_waiting_turn_reads_its_approval_once_not_over_and_over(replicas):
    """No polling: however long the wait, one read when it starts and one when woken."""
    waiting_side, clicked_side = replicas
    await waiting_side._redis.config_resetstat()
    await waiting_side.put_approval("T1", "ap1", {"tool": "send_email"})
    waiting = asyncio.create_task(waiting_side.wait_for_decision("T1", "ap1"))
    await asyncio.wait_for(waiting_side._decisions._subscribed.wait(), 5)
    await asyncio.sleep(0.3)  # room for polls to show up (the old wait read every 0.25 s)
    assert await read_commands(waiting_side) == 1
    await clicked_side.decide_approval("T1", "ap1", {"approved": False, "by": "U2"})
    await asyncio.wait_for(waiting, 5)
    assert await read_commands(waiting_side) == 2


async def test_a_decision_made_while_the_subscription_was_down_is_not_missed(replicas):
    waiting_side, clicked_side = replicas
    await waiting_side.put_approval("T1", "ap1", {"tool": "send_email"})
    waiting = asyncio.create_task(waiting_side.wait_for_decision("T1", "ap1"))
    await asyncio.wait_for(waiting_side._decisions._subscribed.wait(), 5)
    # Cut the subscription and decide before it is back: the announcement reaches nobody.
    await clicked_side._redis.client_kill_filter(_type="pubsub")
    assert await clicked_side.decide_approval("T1", "ap1", {"approved": True, "by": "U1"})
    assert await asyncio.wait_for(waiting, 10) == {"approved": True, "by": "U1"}
    assert waiting_side._decisions._subscribed.is_set()


async def test_one_replica_sweeps_at_a_time_until_its_lease_runs_out(redis_url):
    clock = FakeClock(1_700_000_000.0)
    store = RedisStore.from_url(redis_url, retention_seconds=60, now=clock)
    await store._redis.flushdb()
    try:
        assert await store.hold_sweeper("a", 5) is True
        assert await store.hold_sweeper("b", 5) is False
        assert await store.hold_sweeper("a", 5) is True  # kept, with a fresh lease
        assert 4 < await store._redis.pttl(store.keys.sweeper()) / 1000 <= 5
        await store._redis.delete(store.keys.sweeper())  # "a" is gone: its lease ran out
        assert await store.hold_sweeper("b", 5) is True
    finally:
        await store.close()


# -- a channel reset: the channel's index, and one SCAN for keys older than indexes ------------
async def scans(store: RedisStore) -> int:
    """SCAN commands Redis (every node of a cluster) has run since the last reset of its statistics."""
    if isinstance(store._redis, RedisCluster):
        per_node = await store._redis.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
        return sum(int(stats.get("cmdstat_scan", {}).get("calls", 0)) for stats in per_node.values())
    return int((await store._redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0))


async def leave_unindexed(store: RedisStore, thread: ThreadKey, conversation: str) -> None:
    """A thread's keys as a version without channels' indexes of threads wrote them."""
    await store._redis.set(store.keys.conversation(thread), conversation, ex=3600)
    await store._redis.set(store.keys.known(thread), "1", ex=3600)
    await store._redis.rpush(store.keys.history(thread), '{"role":"user","content":"x"}')
    await store._redis.expire(store.keys.history(thread), 3600)


@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_a_reset_finds_keys_older_than_the_index_then_stops_scanning(request, backend):
    url = request.getfixturevalue("redis_url" if backend == "redis" else "redis_cluster_url")
    clock = FakeClock(1_700_000_000.0)
    store = RedisStore.from_url(url, retention_seconds=3600, now=clock)
    await store._redis.flushdb()
    channel, old, new = ChannelKey("T1", "C1"), ThreadKey("T1", "C1", "1.1"), ThreadKey("T1", "C1", "2.2")
    elsewhere = [ThreadKey("T1", "C2", "1.1"), ThreadKey("T2", "C1", "1.1"), ThreadKey("T1", "C10", "1.1")]
    try:
        # Just upgraded: the channel has keys from before, and (used since) an index without them.
        await leave_unindexed(store, old, "conv_old")
        for thread in elsewhere:
            await leave_unindexed(store, thread, "conv_elsewhere")
        await new_turn(store, new, "hello", conversation="conv_new")
        assert await store.delete_channel_conversations(channel) == 2
        assert (await store.thread_known(old), await store.thread_known(new)) == (False, False)
        assert (await store.begin_turn(old)).history == []
        assert [await store.thread_known(thread) for thread in elsewhere] == [True] * 3
        # A retention (and an upgrade's grace) after the first reset, nothing unindexed can remain:
        # a reset reads the channel's index, and no SCAN visits the other workspaces' keys.
        clock.now += 3600 + UPGRADE_GRACE + 1
        await new_turn(store, new, "again", conversation="conv_again")
        if isinstance(store._redis, RedisCluster):
            await store._redis.config_resetstat(target_nodes=RedisCluster.ALL_NODES)
        else:
            await store._redis.config_resetstat()
        assert await store.delete_channel_conversations(channel) == 1
        assert await scans(store) == 0
        assert await store.thread_known(new) is False
    finally:
        await store.close()
