"""One contract, two twins: every test here runs against Redis (a real server) and memory."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot.store import ChannelKey, Keys, Store, ThreadKey
from assist_bot.store.memory import MemoryStore
from assist_bot.store.redis import RedisStore

THREAD = ThreadKey("T1", "C1", "100.1")
OTHER_TEAM_THREAD = ThreadKey("T2", "C1", "100.1")


@pytest.fixture(params=["memory", "redis"])
async def store(request, redis_url) -> Store:
    if request.param == "memory":
        made: Store = MemoryStore(retention_seconds=60)
    else:
        made = RedisStore.from_url(redis_url, retention_seconds=60)
        await made._redis.flushdb()
    yield made
    await made.close()


async def test_conversation_mapping_round_trips_and_is_per_team(store: Store):
    assert await store.get_conversation(THREAD) is None
    await store.set_conversation(THREAD, "conv_1")
    assert await store.get_conversation(THREAD) == "conv_1"
    assert await store.get_conversation(OTHER_TEAM_THREAD) is None
    await store.delete_conversation(THREAD)
    assert await store.get_conversation(THREAD) is None


async def test_a_channel_reset_forgets_only_that_channels_threads(store: Store):
    for ts in ("1.1", "2.2"):
        await store.set_conversation(ThreadKey("T1", "C1", ts), f"conv_{ts}")
    await store.set_conversation(ThreadKey("T1", "C2", "1.1"), "conv_other_channel")
    await store.set_conversation(ThreadKey("T2", "C1", "1.1"), "conv_other_team")
    await store.enqueue(ThreadKey("T1", "C1", "3.3"), {"n": 1}, dedupe_token="m", owner="a", lease=5)
    assert await store.delete_channel_conversations(ChannelKey("T1", "C1")) == 2
    assert await store.thread_known(ThreadKey("T1", "C1", "3.3")) is False
    assert await store.get_conversation(ThreadKey("T1", "C1", "1.1")) is None
    assert await store.get_conversation(ThreadKey("T1", "C2", "1.1")) == "conv_other_channel"
    assert await store.get_conversation(ThreadKey("T2", "C1", "1.1")) == "conv_other_team"


async def test_conversation_mapping_expires_after_retention(store: Store):
    store.retention_seconds = 1
    await store.set_conversation(THREAD, "conv_1")
    await asyncio.sleep(1.2)
    assert await store.get_conversation(THREAD) is None


async def test_claim_is_granted_once_per_team(store: Store):
    assert await store.claim("T1", "msg:C1:1.0") is True
    assert await store.claim("T1", "msg:C1:1.0") is False
    assert await store.claim("T2", "msg:C1:1.0") is True


async def test_claim_is_granted_once_under_concurrency(store: Store):
    results = await asyncio.gather(*(store.claim("T1", "msg:C1:2.0") for _ in range(20)))
    assert results.count(True) == 1


async def test_lock_has_one_owner_and_only_the_owner_releases(store: Store):
    assert await store.acquire_lock(THREAD, "a", 5) is True
    assert await store.acquire_lock(THREAD, "b", 5) is False
    await store.release_lock(THREAD, "b")  # not the owner: no effect
    assert await store.acquire_lock(THREAD, "b", 5) is False
    assert await store.refresh_lock(THREAD, "a", 5) is True
    assert await store.refresh_lock(THREAD, "b", 5) is False
    await store.release_lock(THREAD, "a")
    assert await store.acquire_lock(THREAD, "b", 5) is True


async def test_lock_lease_expires(store: Store):
    assert await store.acquire_lock(THREAD, "a", 0.3) is True
    await asyncio.sleep(0.5)
    assert await store.acquire_lock(THREAD, "b", 5) is True
    assert await store.refresh_lock(THREAD, "a", 5) is False


async def test_pending_queue_keeps_order_and_is_taken_whole(store: Store):
    assert await store.pending_count(THREAD) == 0
    assert await store.take_pending(THREAD) == []
    for n in range(3):
        await store.push_pending(THREAD, {"n": n, "text": f"message {n} — ünïcode"})
    assert await store.pending_count(THREAD) == 3
    assert await store.pending_count(OTHER_TEAM_THREAD) == 0
    taken = await store.take_pending(THREAD)
    assert [item["n"] for item in taken] == [0, 1, 2]
    assert taken[1]["text"] == "message 1 — ünïcode"
    assert await store.take_pending(THREAD) == []


async def test_concurrent_takers_never_get_the_same_item(store: Store):
    for n in range(50):
        await store.push_pending(THREAD, {"n": n})
    batches = await asyncio.gather(*(store.take_pending(THREAD) for _ in range(5)))
    seen = [item["n"] for batch in batches for item in batch]
    assert sorted(seen) == list(range(50))


async def test_channel_settings(store: Store):
    channel = ChannelKey("T1", "C1")
    assert await store.get_channel_settings(channel) == {}
    await store.set_channel_setting(channel, "assistant", "coder")
    assert await store.get_channel_settings(channel) == {"assistant": "coder"}
    assert await store.get_channel_settings(ChannelKey("T2", "C1")) == {}
    await store.set_channel_setting(channel, "assistant", None)
    assert await store.get_channel_settings(channel) == {}


async def test_an_approval_is_decided_once(store: Store):
    await store.put_approval("T1", "ap1", {"tool": "send_email", "user": "U1"})
    assert await store.get_approval("T2", "ap1") is None
    assert (await store.get_approval("T1", "ap1")) == {"tool": "send_email", "user": "U1"}
    results = await asyncio.gather(
        *(store.decide_approval("T1", "ap1", {"approved": n == 0, "by": f"U{n}"}) for n in range(5))
    )
    assert results.count(True) == 1
    record = await store.get_approval("T1", "ap1")
    assert record["tool"] == "send_email" and record["decision"]["by"] in {f"U{n}" for n in range(5)}
    assert await store.decide_approval("T1", "unknown", {"approved": True}) is False


async def test_thread_files_accumulate_once_each_in_order(store: Store):
    for file_id in ("file-a", "file-b", "file-a"):
        await store.add_thread_file(THREAD, file_id)
    assert await store.thread_files(THREAD) == ["file-a", "file-b"]
    assert await store.thread_files(OTHER_TEAM_THREAD) == []


async def test_knowledge_index_per_channel_with_reverse_lookup(store: Store):
    c1, c2 = ChannelKey("T1", "C1"), ChannelKey("T1", "C2")
    await store.put_knowledge_file(c1, "F1", {"name": "handbook.pdf", "openai_file_id": "file-1"})
    await store.put_knowledge_file(c2, "F2", {"name": "spec.md", "openai_file_id": "file-2"})
    assert await store.knowledge_files(c1) == {"F1": {"name": "handbook.pdf", "openai_file_id": "file-1"}}
    assert await store.knowledge_channels_of("T1", "F2") == ["C2"]
    assert await store.knowledge_channels_of("T2", "F2") == []
    assert (await store.remove_knowledge_file(c2, "F2"))["name"] == "spec.md"
    assert await store.knowledge_files(c2) == {}
    assert await store.knowledge_channels_of("T1", "F2") == []
    assert await store.remove_knowledge_file(c2, "F2") is None


async def test_one_file_in_the_knowledge_of_two_channels(store: Store):
    """A file shared in two channels is held by both; removing it from one leaves the other."""
    c1, c2 = ChannelKey("T1", "C1"), ChannelKey("T1", "C2")
    await store.put_knowledge_file(c1, "F1", {"name": "a.md", "openai_file_id": "file-1"})
    await store.put_knowledge_file(c2, "F1", {"name": "a.md", "openai_file_id": "file-2"})
    assert await store.knowledge_channels_of("T1", "F1") == ["C1", "C2"]
    await store.remove_knowledge_file(c1, "F1")
    assert await store.knowledge_channels_of("T1", "F1") == ["C2"]


async def test_enqueue_claims_queues_and_locks_in_one_step(store: Store):
    results = await asyncio.gather(
        *(
            store.enqueue(THREAD, {"n": n}, dedupe_token=f"msg:{n % 10}", owner=f"replica{n}", lease=5)
            for n in range(20)
        )
    )
    assert sum(r.accepted for r in results) == 10  # ten distinct messages, each delivered twice
    assert sum(r.locked for r in results) == 1  # one owner for the thread
    assert await store.pending_count(THREAD) == 10


async def test_begin_turn_reads_everything_a_turn_needs(store: Store):
    await store.set_conversation(THREAD, "conv_1")
    await store.set_channel_setting(ChannelKey("T1", "C1"), "assistant", "coder")
    await store.add_thread_file(THREAD, "file-a")
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    start = await store.begin_turn(THREAD)
    assert (start.items, start.conversation_id) == ([{"n": 1}], "conv_1")
    assert start.channel_settings == {"assistant": "coder"} and start.thread_files == ["file-a"]
    empty = await store.begin_turn(OTHER_TEAM_THREAD)
    assert (empty.items, empty.conversation_id, empty.channel_settings, empty.thread_files) == ([], None, {}, [])


async def test_end_turn_keeps_the_lock_only_while_messages_wait(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    await store.begin_turn(THREAD)
    late = await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)
    assert late.accepted and not late.locked  # "a" holds the lock: its next turn answers m2
    assert await store.end_turn(THREAD, "a", 5) is True
    assert (await store.begin_turn(THREAD)).items == [{"n": 2}]
    assert await store.end_turn(THREAD, "b", 5) is False  # not the owner
    assert await store.end_turn(THREAD, "a", 5) is False  # nothing left: released
    assert await store.acquire_lock(THREAD, "b", 5) is True


async def test_end_turn_saves_a_conversation_the_turn_created(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    assert (await store.begin_turn(THREAD)).conversation_id is None
    assert await store.end_turn(THREAD, "a", 5, new_conversation="conv_new") is False
    assert await store.get_conversation(THREAD) == "conv_new"


async def test_an_accepted_message_makes_its_thread_known_at_once(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    assert await store.thread_known(THREAD) is True
    assert await store.thread_known(ThreadKey("T1", "C1", "999.9")) is False


async def test_thread_known_by_conversation_or_files(store: Store):
    other = ThreadKey("T1", "C1", "200.2")
    assert await store.thread_known(THREAD) is False
    await store.set_conversation(THREAD, "conv_1")
    await store.add_thread_file(other, "file-a")
    assert await store.thread_known(THREAD) and await store.thread_known(other)
    assert await store.thread_known(OTHER_TEAM_THREAD) is False


async def test_ping(store: Store):
    assert await store.ping() is True


def test_keys_are_namespaced_and_carry_the_team():
    keys = Keys()
    for key in (
        keys.conversation(THREAD),
        keys.lock(THREAD),
        keys.pending(THREAD),
        keys.channel(ChannelKey("T1", "C1")),
    ):
        assert key.startswith("assist-bot:T1:")
    assert keys.seen("T1", "x").startswith("assist-bot:T1:")


async def test_redis_keys_expire(redis_url):
    """Stale data must not pile up in Redis: every key we write has a TTL, but channel settings."""
    store = RedisStore.from_url(redis_url, retention_seconds=3600)
    await store._redis.flushdb()
    try:
        await store.set_conversation(THREAD, "conv_1")
        await store.claim("T1", "msg:C1:1.0")
        await store.acquire_lock(THREAD, "a", 5)
        await store.push_pending(THREAD, {"n": 1})
        await store.put_approval("T1", "ap1", {"tool": "x"})
        await store.add_thread_file(THREAD, "file-a")
        await store.enqueue(ThreadKey("T1", "C1", "5.5"), {"n": 1}, dedupe_token="m5", owner="a", lease=5)
        for key in await store._redis.keys("assist-bot:*"):
            assert await store._redis.ttl(key) > 0, key
    finally:
        await store.close()


async def test_redis_ping_is_false_when_the_server_is_gone():
    from tests.support.redis_server import free_port

    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", retention_seconds=60)
    try:
        assert await store.ping() is False
    finally:
        await store.close()


async def test_redis_store_waits_for_a_connection_under_a_burst(redis_url):
    """More concurrent operations than pooled connections: they queue, none fails."""
    store = RedisStore.from_url(redis_url, retention_seconds=60, max_connections=5)
    await store._redis.flushdb()
    try:
        results = await asyncio.gather(
            *(
                store.enqueue(ThreadKey("T1", "C1", f"{n}.0"), {"n": n}, dedupe_token=f"m{n}", owner="a", lease=5)
                for n in range(300)
            )
        )
        assert all(r.accepted and r.locked for r in results)
    finally:
        await store.close()


async def test_heartbeats_count_live_replicas(redis_url):
    store = RedisStore.from_url(redis_url, retention_seconds=60)
    await store._redis.flushdb()
    try:
        assert await store.heartbeat("a", ttl=0.5) == 1
        assert await store.heartbeat("b", ttl=0.5) == 2
        assert await store.heartbeat("a", ttl=0.5) == 2
        await asyncio.sleep(0.7)
        assert await store.heartbeat("a", ttl=0.5) == 1  # b stopped beating
    finally:
        await store.close()
    assert await MemoryStore(retention_seconds=60).heartbeat("a", ttl=1) == 1
