"""One contract, three backends: every test here runs against memory, Redis (a real server)
and a real three-node Redis Cluster, through the operations production calls
(enqueue → begin_turn → end_turn, …).

Time: nothing sleeps. The memory twin runs on a clock the test moves; on Redis a key is
"aged" by shortening the TTL Redis holds for it (`age`), and the TTL itself is asserted.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.cluster import key_slot

from assist_bot.store import ChannelKey, Keys, Store, ThreadKey
from assist_bot.store.base import INDEX_MARGIN, QueueCaps, ReplyRef, SlackLesson, SlackLimits
from assist_bot.store.keys import InvalidIdError
from assist_bot.store.memory import MemoryStore
from assist_bot.store.redis import UPGRADE_GRACE, RedisStore

THREAD = ThreadKey("T1", "C1", "100.1")
OTHER_TEAM_THREAD = ThreadKey("T2", "C1", "100.1")
RETENTION = 600


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request) -> Store:
    if request.param == "memory":
        made: Store = MemoryStore(retention_seconds=RETENTION, clock=FakeClock())
    else:
        url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
        made = RedisStore.from_url(url, retention_seconds=RETENTION, now=FakeClock(1_700_000_000.0))
        await made._redis.flushdb()  # on a cluster: on every primary
        await trust_the_index(made)
    yield made
    await made.close()


async def trust_the_index(store: RedisStore) -> None:
    """Long past the upgrade to channels' indexes of threads: no key without an index entry can
    remain, so a reset reads the index alone — what these tests check (the fallback: test_redis.py)."""
    since = store._now() - RETENTION - UPGRADE_GRACE - 1
    await store._redis.set(store.keys.threads_indexed_since(), repr(since))


async def indexed(store: Store, channel: ChannelKey) -> set[str]:
    """The threads the channel's index names."""
    key = store.keys.channel_threads(channel)
    if isinstance(store, MemoryStore):
        return set(store._kv.get(key) or {})
    assert isinstance(store, RedisStore)
    return set(await store._redis.zrange(key, 0, -1))


async def ttl(store: Store, key: str) -> float | None:
    """Seconds the key has left (None: no such key, or it never expires)."""
    if isinstance(store, MemoryStore):
        return store._kv.ttl(key)
    assert isinstance(store, RedisStore)
    left = await store._redis.pttl(key)
    return None if left < 0 else left / 1000


async def age(store: Store, key: str, seconds: float) -> None:
    """Let `seconds` pass for `key` (in memory: for every key)."""
    if isinstance(store, MemoryStore):
        store._kv._clock.now += seconds  # type: ignore[attr-defined]
        return
    assert isinstance(store, RedisStore)
    store._now.now += seconds  # type: ignore[attr-defined]  # the clock of the turns' leases
    left = await store._redis.pttl(key)
    assert left > 0, key
    await store._redis.pexpire(key, max(1, left - int(seconds * 1000)))
    if left - seconds * 1000 <= 0:
        await store._redis.delete(key)


async def new_turn(store: Store, thread: ThreadKey, text: str, *, owner: str = "a", conversation: str | None = None):
    """A whole turn as the dispatcher runs it: a message arrives, is taken, the turn ends."""
    queued = await store.enqueue(
        thread, {"text": text}, dedupe_token=f"msg:{thread.channel}:{thread.thread_ts}:{text}", owner=owner, lease=5
    )
    assert queued.accepted and queued.locked
    snapshot = await store.begin_turn(thread)
    assert await store.end_turn(thread, owner, 5, server_state=conversation) is False
    return snapshot


# -- conversations -------------------------------------------------------------------------
async def test_a_conversation_saved_at_the_end_of_a_turn_is_read_by_the_next_and_is_per_team(store: Store):
    first = await new_turn(store, THREAD, "hi", conversation="conv_1")
    assert first.server_state is None
    assert (await new_turn(store, THREAD, "again")).server_state == "conv_1"
    assert (await new_turn(store, OTHER_TEAM_THREAD, "elsewhere")).server_state is None


async def test_a_channel_reset_forgets_only_that_channels_threads(store: Store):
    for n, thread in enumerate(
        [ThreadKey("T1", "C1", "1.1"), ThreadKey("T1", "C1", "2.2"), ThreadKey("T1", "C2", "1.1")]
        + [ThreadKey("T2", "C1", "1.1")]
    ):
        await new_turn(store, thread, f"m{n}", conversation=f"conv_{n}")
    await store.enqueue(ThreadKey("T1", "C1", "3.3"), {"n": 1}, dedupe_token="m", owner="a", lease=5)
    assert await store.delete_channel_conversations(ChannelKey("T1", "C1")) == 2
    assert await store.thread_known(ThreadKey("T1", "C1", "3.3")) is False
    assert (await new_turn(store, ThreadKey("T1", "C1", "1.1"), "after")).server_state is None
    assert (await new_turn(store, ThreadKey("T1", "C2", "1.1"), "after")).server_state == "conv_2"
    assert (await new_turn(store, ThreadKey("T2", "C1", "1.1"), "after")).server_state == "conv_3"


async def test_a_reset_forgets_every_thread_of_its_channel_and_nothing_of_another(store: Store):
    """Thread ids with glob characters name only themselves; ids that are not Slack ids reset nothing."""
    channel = ChannelKey("T1", "C1")
    mine = [ThreadKey("T1", "C1", ts) for ts in ("1.1", "*", "?", "[0-9]*", "1.\\*", "}:x")]
    others = [ThreadKey("T1", "C2", "*"), ThreadKey("T1", "C10", "1.1"), ThreadKey("T2", "C1", "*")]
    others += [ThreadKey("T11", "C1", "1.1")]
    for n, thread in enumerate(mine + others):  # every other one with a conversation, all known
        await new_turn(store, thread, f"m{n}", conversation=f"conv_{n}" if n % 2 == 0 else None)
    only_history, only_queued = ThreadKey("T1", "C1", "9.9"), ThreadKey("T1", "C1", "8.8")
    await store.end_turn(only_history, "a", 5, history=[{"role": "user", "content": "x"}])
    await store.enqueue(only_queued, {"n": 1}, dedupe_token="q", owner="a", lease=5)  # known, no turn yet
    mine += [only_history, only_queued]
    for wild in (ChannelKey("T1", "C*"), ChannelKey("T*", "C1"), ChannelKey("T1", "C[12]")):
        with pytest.raises(InvalidIdError):
            await store.delete_channel_conversations(wild)
    assert await store.delete_channel_conversations(channel) == 3
    assert [await store.thread_known(thread) for thread in mine] == [False] * len(mine)
    assert await store.delete_channel_conversations(channel) == 0
    for thread in mine:
        start = await store.begin_turn(thread)
        assert (start.server_state, start.history) == (None, [])
    for n, thread in enumerate(others, start=6):
        assert await store.thread_known(thread) is True
        assert (await new_turn(store, thread, "after")).server_state == (f"conv_{n}" if n % 2 == 0 else None)


async def test_a_channels_index_of_threads_lives_no_longer_than_the_keys_it_names(store: Store):
    channel = ChannelKey("T1", "C1")
    first, second, third = (ThreadKey("T1", "C1", ts) for ts in ("1.1", "2.2", "3.3"))
    index = store.keys.channel_threads(channel)
    await new_turn(store, first, "a", conversation="conv_1")
    assert await indexed(store, channel) == {"1.1"}
    # As long as the keys it names (a reset finds them all), hardly longer (margin: clocks, a cluster's two steps).
    named = [await ttl(store, key) for key in (store.keys.conversation(first), store.keys.known(first))]
    assert max(named) <= await ttl(store, index) <= RETENTION + INDEX_MARGIN
    await age(store, index, RETENTION / 2)
    await store.end_turn(second, "a", 5, history=[{"role": "user", "content": "x"}])
    assert await indexed(store, channel) == {"1.1", "2.2"}
    assert RETENTION < await ttl(store, index) <= RETENTION + INDEX_MARGIN  # renewed with the history
    await age(store, index, RETENTION / 2 + INDEX_MARGIN + 1)  # the first thread's keys are gone
    await new_turn(store, third, "c")
    assert await indexed(store, channel) == {"2.2", "3.3"}  # its entry went with them
    await age(store, index, RETENTION + INDEX_MARGIN)
    assert await ttl(store, index) is None and await indexed(store, channel) == set()


async def test_a_conversation_lives_for_the_retention_and_every_turn_renews_it(store: Store):
    key = store.keys.conversation(THREAD)
    await new_turn(store, THREAD, "start", conversation="conv_1")
    assert RETENTION - 5 < await ttl(store, key) <= RETENTION
    await age(store, key, RETENTION - 10)
    assert await ttl(store, key) <= 10
    assert (await new_turn(store, THREAD, "still there")).server_state == "conv_1"
    assert RETENTION - 5 < await ttl(store, key) <= RETENTION  # the turn renewed it
    await age(store, key, RETENTION + 1)
    assert (await new_turn(store, THREAD, "too late")).server_state is None
    assert await store.thread_known(THREAD) is True  # the new message made it known again


async def test_the_memory_twin_forgets_by_its_clock():
    clock = FakeClock()
    store = MemoryStore(retention_seconds=60, clock=clock)
    await new_turn(store, THREAD, "start", conversation="conv_1")
    clock.now += 59.9
    assert store._kv.get(store.keys.conversation(THREAD)) == "conv_1"
    clock.now += 0.2
    assert store._kv.get(store.keys.conversation(THREAD)) is None
    assert await store.claim("T1", "token", ttl=10) is True
    clock.now += 10
    assert await store.claim("T1", "token", ttl=10) is True  # the dedupe token ran out


# -- dedupe --------------------------------------------------------------------------------
async def test_claim_is_granted_once_per_team(store: Store):
    assert await store.claim("T1", "msg:C1:1.0") is True
    assert await store.claim("T1", "msg:C1:1.0") is False
    assert await store.claim("T2", "msg:C1:1.0") is True
    assert 0 < await ttl(store, store.keys.seen("T1", "msg:C1:1.0")) <= 3600


async def test_claim_is_granted_once_under_concurrency(store: Store):
    results = await asyncio.gather(*(store.claim("T1", "msg:C1:2.0") for _ in range(20)))
    assert results.count(True) == 1


# -- the thread's queue and lock ---------------------------------------------------------------
async def test_enqueue_claims_queues_and_locks_in_one_step(store: Store):
    results = await asyncio.gather(
        *(
            store.enqueue(THREAD, {"n": n}, dedupe_token=f"msg:{n % 10}", owner=f"replica{n}", lease=5)
            for n in range(20)
        )
    )
    assert sum(r.accepted for r in results) == 10  # ten distinct messages, each delivered twice
    assert sum(r.locked for r in results) == 1  # one owner for the thread
    assert len((await store.begin_turn(THREAD)).items) == 10


async def test_the_lock_has_one_owner_and_only_the_owner_refreshes_or_releases_it(store: Store):
    assert (await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)).locked
    assert not (await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)).locked
    await store.release_lock(THREAD, "b")  # not the owner: no effect
    assert not (await store.enqueue(THREAD, {"n": 3}, dedupe_token="m3", owner="b", lease=5)).locked
    assert await store.refresh_lock(THREAD, "a", 30) is True
    assert 25 < await ttl(store, store.keys.lock(THREAD)) <= 30
    assert await store.refresh_lock(THREAD, "b", 30) is False
    await store.release_lock(THREAD, "a")
    assert (await store.enqueue(THREAD, {"n": 4}, dedupe_token="m4", owner="b", lease=5)).locked


async def test_a_lock_whose_owner_stops_refreshing_it_runs_out(store: Store):
    assert (await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)).locked
    lock = store.keys.lock(THREAD)
    assert 4 < await ttl(store, lock) <= 5
    await age(store, lock, 5.1)
    assert (await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)).locked
    assert await store.refresh_lock(THREAD, "a", 5) is False
    assert await store.end_turn(THREAD, "a", 5) is False  # "a" lost it: it cannot keep it


async def test_a_turn_takes_the_whole_queue_in_order(store: Store):
    for n in range(3):
        await store.enqueue(
            THREAD, {"n": n, "text": f"message {n} — ünïcode"}, dedupe_token=f"m{n}", owner="a", lease=5
        )
    taken = (await store.begin_turn(THREAD)).items
    assert [item["n"] for item in taken] == [0, 1, 2]
    assert taken[1]["text"] == "message 1 — ünïcode"
    assert await store.end_turn(THREAD, "a", 5) is False
    assert (await store.begin_turn(THREAD)).items == []
    assert (await store.begin_turn(OTHER_TEAM_THREAD)).items == []


async def test_messages_arriving_during_turns_are_each_taken_once(store: Store):
    taken: list[int] = []

    async def arrive() -> None:
        for n in range(50):
            await store.enqueue(THREAD, {"n": n}, dedupe_token=f"m{n}", owner="a", lease=5)

    async def turns() -> None:
        for _ in range(200):
            taken.extend(item["n"] for item in (await store.begin_turn(THREAD)).items)
            await store.end_turn(THREAD, "a", 5)
            if len(taken) >= 50:
                return
            await asyncio.sleep(0)

    await asyncio.gather(arrive(), turns())
    assert sorted(taken) == list(range(50))


async def test_begin_turn_reads_everything_a_turn_needs(store: Store):
    await new_turn(store, THREAD, "first", conversation="conv_1")
    await store.set_channel_setting(ChannelKey("T1", "C1"), "assistant", "coder")
    await store.add_thread_file(THREAD, "file-a")
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    start = await store.begin_turn(THREAD)
    assert (start.items, start.server_state) == ([{"n": 1}], "conv_1")
    assert start.channel_settings == {"assistant": "coder"} and start.thread_files == ["file-a"]
    empty = await store.begin_turn(OTHER_TEAM_THREAD)
    assert (empty.items, empty.server_state, empty.channel_settings, empty.thread_files) == ([], None, {}, [])


async def test_end_turn_keeps_the_lock_only_while_messages_wait(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    await store.begin_turn(THREAD)
    late = await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)
    assert late.accepted and not late.locked  # "a" holds the lock: its next turn answers m2
    assert await store.end_turn(THREAD, "a", 30) is True
    assert 25 < await ttl(store, store.keys.lock(THREAD)) <= 30  # kept, with a fresh lease
    assert (await store.begin_turn(THREAD)).items == [{"n": 2}]
    assert await store.end_turn(THREAD, "b", 5) is False  # not the owner
    assert await store.end_turn(THREAD, "a", 5) is False  # nothing left: released
    assert (await store.enqueue(THREAD, {"n": 3}, dedupe_token="m3", owner="b", lease=5)).locked


# -- caps on what waits in a thread's queue ------------------------------------------------------
async def test_a_full_queue_refuses_a_message_whole_and_once(store: Store):
    caps = QueueCaps(messages=3)
    for n in range(3):
        queued = await store.enqueue(THREAD, {"n": n}, dedupe_token=f"m{n}", owner="a", lease=5, caps=caps)
        assert queued.accepted and not queued.refused
    full = await store.enqueue(THREAD, {"n": 3}, dedupe_token="m3", owner="b", lease=5, caps=caps)
    assert (full.accepted, full.locked, full.refused) == (False, False, "messages")
    # Its redelivery is a duplicate (one notice per message), not a second refusal.
    again = await store.enqueue(THREAD, {"n": 3}, dedupe_token="m3", owner="b", lease=5, caps=caps)
    assert (again.accepted, again.refused) == (False, "")
    # Nothing of the refused message was stored: the turn takes exactly the three.
    assert [item["n"] for item in (await store.begin_turn(THREAD)).items] == [0, 1, 2]
    # The queue taken, the thread takes messages again.
    assert (await store.enqueue(THREAD, {"n": 4}, dedupe_token="m4", owner="b", lease=5, caps=caps)).accepted
    # Caps are per thread: another thread (here of another team) is not affected.
    other = await store.enqueue(OTHER_TEAM_THREAD, {"n": 5}, dedupe_token="m3", owner="b", lease=5, caps=caps)
    assert other.accepted and other.locked


async def test_queued_bytes_are_capped_but_a_message_alone_is_always_taken(store: Store):
    caps = QueueCaps(bytes=200)
    big = {"text": "é" * 150}  # 300 bytes as stored (UTF-8), over the cap on its own
    assert (await store.enqueue(THREAD, big, dedupe_token="m0", owner="a", lease=5, caps=caps)).accepted
    refused = await store.enqueue(THREAD, {"text": "hi"}, dedupe_token="m1", owner="b", lease=5, caps=caps)
    assert (refused.accepted, refused.refused) == (False, "bytes")
    await store.begin_turn(THREAD)
    await store.end_turn(THREAD, "a", 5)
    fits = {"text": "a" * 80}  # 91 bytes as stored: two fit in 200, three do not
    for n in range(2):
        assert (await store.enqueue(THREAD, fits, dedupe_token=f"f{n}", owner="a", lease=5, caps=caps)).accepted
    third = await store.enqueue(THREAD, fits, dedupe_token="f2", owner="a", lease=5, caps=caps)
    assert third.refused == "bytes"
    small = await store.enqueue(THREAD, {"text": "ok"}, dedupe_token="f3", owner="a", lease=5, caps=caps)
    assert small.accepted  # 2 × 91 + 13 bytes: still under the cap
    assert [item["text"] for item in (await store.begin_turn(THREAD)).items] == ["a" * 80, "a" * 80, "ok"]


async def test_the_caps_hold_under_concurrency(store: Store):
    caps = QueueCaps(messages=5)
    results = await asyncio.gather(
        *(store.enqueue(THREAD, {"n": n}, dedupe_token=f"m{n}", owner=f"r{n}", lease=5, caps=caps) for n in range(40))
    )
    assert sum(r.accepted for r in results) == 5
    assert sum(r.refused == "messages" for r in results) == 35
    assert sum(r.locked for r in results) == 1
    assert len((await store.begin_turn(THREAD)).items) == 5


async def test_a_refused_message_still_takes_a_free_lock_so_the_full_queue_is_drained(store: Store):
    caps = QueueCaps(messages=2)
    for n in range(2):
        await store.enqueue(THREAD, {"n": n}, dedupe_token=f"m{n}", owner="dead", lease=5, caps=caps)
    await store.release_lock(THREAD, "dead")  # its replica died (or its lease ran out) before a turn
    late = await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5, caps=caps)
    assert (late.accepted, late.locked, late.refused) == (False, True, "messages")
    assert [item["n"] for item in (await store.begin_turn(THREAD)).items] == [0, 1]


async def test_local_history_is_appended_trimmed_and_read_with_the_turn(store: Store):
    """ASSIST_BOT_STATE=local: end_turn appends a turn's items after dropping the oldest."""
    turn = [{"role": "user", "content": "é 1"}, {"type": "function_call", "call_id": "c1", "arguments": "{}"}]
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    assert (await store.begin_turn(THREAD)).history == []
    await store.end_turn(THREAD, "a", 5, history=turn)
    await store.end_turn(THREAD, "a", 5, history=[{"role": "assistant", "content": "2"}], history_drop=1)
    start = await store.begin_turn(THREAD)
    assert start.history == [turn[1], {"role": "assistant", "content": "2"}]  # in order, the oldest dropped
    assert (await store.begin_turn(OTHER_TEAM_THREAD)).history == []
    await store.end_turn(THREAD, "a", 5, history_drop=2)
    assert (await store.begin_turn(THREAD)).history == []


async def test_a_channel_reset_forgets_local_histories(store: Store):
    await store.end_turn(THREAD, "a", 5, history=[{"role": "user", "content": "x"}])
    await store.end_turn(OTHER_TEAM_THREAD, "a", 5, history=[{"role": "user", "content": "y"}])
    assert await store.thread_known(THREAD) is True  # a history makes the thread known
    await store.delete_channel_conversations(ChannelKey("T1", "C1"))
    assert (await store.begin_turn(THREAD)).history == []
    assert await store.thread_known(THREAD) is False
    assert (await store.begin_turn(OTHER_TEAM_THREAD)).history == [{"role": "user", "content": "y"}]


async def test_a_thread_is_known_by_an_accepted_message_a_conversation_or_files(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    assert await store.thread_known(THREAD) is True
    other = ThreadKey("T1", "C1", "200.2")
    assert await store.thread_known(other) is False
    await store.add_thread_file(other, "file-a")
    assert await store.thread_known(other) is True
    assert await store.thread_known(OTHER_TEAM_THREAD) is False


# -- crash recovery ----------------------------------------------------------------------------
async def test_a_turn_whose_owner_died_is_answered_again_and_its_reply_closed(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    assert (await store.begin_turn(THREAD)).interrupted is None
    await store.note_reply(THREAD, ReplyRef("T1", "C1", THREAD.thread_ts, "100.2"))
    await age(store, store.keys.lock(THREAD), 6)  # "a" died: its lease ran out
    assert (await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)).locked
    start = await store.begin_turn(THREAD)
    assert start.items == [{"n": 1}, {"n": 2}]  # the interrupted message first, then the new
    assert start.interrupted == ReplyRef("T1", "C1", THREAD.thread_ts, "100.2") and start.given_up == 0
    assert await store.end_turn(THREAD, "b", 5) is False
    await store.enqueue(THREAD, {"n": 3}, dedupe_token="m3", owner="b", lease=5)
    again = await store.begin_turn(THREAD)
    assert (again.items, again.interrupted) == ([{"n": 3}], None)  # a turn that ended is not repeated


async def test_a_turn_that_ends_after_its_lease_lapsed_still_ends_if_nobody_took_over(store: Store):
    """Redis was unreachable longer than the lease: the turn did answer, so its messages
    must not be answered again, as long as no one else holds the thread."""
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    await store.begin_turn(THREAD)
    await age(store, store.keys.lock(THREAD), 6)
    assert await store.end_turn(THREAD, "a", 5) is False
    assert await store.take_over(THREAD, "b", 5) is False  # nothing left to answer
    await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="b", lease=5)
    start = await store.begin_turn(THREAD)
    assert (start.items, start.interrupted) == ([{"n": 2}], None)


async def test_a_message_interrupted_twice_is_given_up(store: Store):
    await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)
    await store.begin_turn(THREAD)
    await store.note_reply(THREAD, ReplyRef("T1", "C1", THREAD.thread_ts, "100.2"))
    await age(store, store.keys.lock(THREAD), 6)
    assert await store.take_over(THREAD, "b", 5)
    assert (await store.begin_turn(THREAD)).items == [{"n": 1}]
    await store.note_reply(THREAD, ReplyRef("T1", "C1", THREAD.thread_ts, "100.3"))
    await age(store, store.keys.lock(THREAD), 6)  # "b" died on it too
    assert await store.take_over(THREAD, "c", 5)
    start = await store.begin_turn(THREAD)
    assert (start.items, start.interrupted, start.given_up) == ([], ReplyRef("T1", "C1", THREAD.thread_ts, "100.3"), 1)
    assert await store.end_turn(THREAD, "c", 5) is False
    assert await store.take_over(THREAD, "d", 5) is False  # nothing left


async def test_the_sweeper_finds_a_thread_once_its_lease_ran_out_and_takes_it_over_once(store: Store):
    assert (await store.enqueue(THREAD, {"n": 1}, dedupe_token="m1", owner="a", lease=5)).locked
    await store.watch_turn(THREAD, 5)
    await store.enqueue(THREAD, {"n": 2}, dedupe_token="m2", owner="a", lease=5)
    assert await store.stalled_turns() == []
    assert await store.take_over(THREAD, "b", 5) is False  # "a" holds it
    await age(store, store.keys.lock(THREAD), 6)
    assert await store.stalled_turns() == [THREAD]
    results = await asyncio.gather(*(store.take_over(THREAD, f"s{n}", 5) for n in range(5)))
    assert results.count(True) == 1
    owner = f"s{results.index(True)}"
    assert [i["n"] for i in (await store.begin_turn(THREAD)).items] == [1, 2]
    assert await store.end_turn(THREAD, owner, 5) is False
    assert await store.take_over(THREAD, "t", 5) is False  # nothing left: no longer listed
    assert await store.stalled_turns() == []


# -- files, settings --------------------------------------------------------------------------
async def test_thread_files_accumulate_once_each_in_order(store: Store):
    for file_id in ("file-a", "file-b", "file-a"):
        await store.add_thread_file(THREAD, file_id)
    assert (await store.begin_turn(THREAD)).thread_files == ["file-a", "file-b"]
    assert (await store.begin_turn(OTHER_TEAM_THREAD)).thread_files == []


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


async def test_channel_settings(store: Store):
    channel = ChannelKey("T1", "C1")
    assert await store.get_channel_settings(channel) == {}
    await store.set_channel_setting(channel, "assistant", "coder")
    assert await store.get_channel_settings(channel) == {"assistant": "coder"}
    assert await store.get_channel_settings(ChannelKey("T2", "C1")) == {}
    await store.set_channel_setting(channel, "assistant", None)
    assert await store.get_channel_settings(channel) == {}


# -- approvals ---------------------------------------------------------------------------------
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


async def test_a_decision_wakes_every_turn_waiting_for_it(store: Store):
    await store.put_approval("T1", "ap1", {"tool": "send_email"})
    waiting = [asyncio.create_task(store.wait_for_decision("T1", "ap1")) for _ in range(3)]
    other = asyncio.create_task(store.wait_for_decision("T1", "ap2"))
    await store.put_approval("T1", "ap2", {"tool": "send_email"})
    for _ in range(20):
        await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    assert await store.decide_approval("T1", "ap1", {"approved": True, "by": "U1"})
    decisions = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert decisions == [{"approved": True, "by": "U1"}] * 3
    assert not other.done()  # another approval's waiter sleeps on
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)


async def test_waiting_for_a_decided_or_unknown_approval_returns_at_once(store: Store):
    await store.put_approval("T1", "ap1", {"tool": "send_email"})
    await store.decide_approval("T1", "ap1", {"approved": False, "by": "U2"})
    assert await asyncio.wait_for(store.wait_for_decision("T1", "ap1"), 5) == {"approved": False, "by": "U2"}
    assert await asyncio.wait_for(store.wait_for_decision("T1", "never"), 5) is None
    assert await asyncio.wait_for(store.wait_for_decision("T2", "ap1"), 5) is None  # another team's


async def test_updating_an_approval_keeps_a_decision_already_made(store: Store):
    """The prompt's ts is stored after the prompt is posted; a click may have come first."""
    await store.put_approval("T1", "ap1", {"tool": "send_email", "ts": None})
    assert await store.decide_approval("T1", "ap1", {"approved": True, "by": "U2"})
    await store.put_approval("T1", "ap1", {"tool": "send_email", "ts": "1.2"})
    assert await store.get_approval("T1", "ap1") == {
        "tool": "send_email",
        "ts": "1.2",
        "decision": {"approved": True, "by": "U2"},
    }
    assert await store.decide_approval("T1", "ap1", {"approved": False}) is False


async def test_an_approval_outlives_its_time_out(store: Store):
    await store.put_approval("T1", "ap1", {"tool": "send_email"})
    assert 23 * 3600 < await ttl(store, store.keys.approval("T1", "ap1")) <= 24 * 3600


async def test_ping(store: Store):
    assert await store.ping() is True


def test_keys_are_namespaced_and_carry_the_team():
    keys = Keys()
    for key in (
        keys.conversation(THREAD),
        keys.lock(THREAD),
        keys.pending(THREAD),
        keys.channel(ChannelKey("T1", "C1")),
        keys.seen("T1", "x"),
        keys.approval("T1", "ap1"),
    ):
        assert key.startswith("assist-bot:{T1:")


def test_keys_used_together_share_a_cluster_slot_and_threads_spread():
    """Every multi-key operation of a thread (enqueue, begin_turn, end_turn, thread_known)
    touches one slot; otherwise Redis Cluster refuses it (CROSSSLOT)."""
    keys = Keys()
    together = [
        keys.message_seen(THREAD, "msg:C1:100.2"),
        keys.pending(THREAD),
        keys.lock(THREAD),
        keys.known(THREAD),
        keys.conversation(THREAD),
        keys.thread_files(THREAD),
        keys.history(THREAD),
        keys.inflight(THREAD),
        keys.turn(THREAD),
    ]
    assert len({key_slot(key.encode()) for key in together}) == 1
    threads = [ThreadKey("T1", "C1", f"{n}.1") for n in range(50)]
    assert len({key_slot(keys.lock(thread).encode()) for thread in threads}) > 40
    legacy, holders = keys.knowledge_owner("T1", "F1"), keys.knowledge_holders("T1", "F1")
    assert legacy == "assist-bot:T1:kfile:F1"  # the name older versions wrote, still read
    assert holders.startswith("assist-bot:{T1:F1}")


async def test_feedback_is_one_record_per_person_and_answer_and_per_team(store: Store):
    base = {"team": "T1", "channel": "C1", "thread_ts": "1.1", "response": "resp_1", "assistant": "default"}
    await store.put_feedback("T1", {**base, "user": "U1", "value": "bad"})
    await store.put_feedback("T1", {**base, "user": "U1", "value": "good"})  # changed their mind
    await store.put_feedback("T1", {**base, "user": "U2", "value": "bad"})
    await store.put_feedback("T1", {**base, "response": "resp_2", "user": "U1", "value": "good"})
    records = await store.feedback("T1")
    assert sorted((r["response"], r["user"], r["value"]) for r in records) == [
        ("resp_1", "U1", "good"),
        ("resp_1", "U2", "bad"),
        ("resp_2", "U1", "good"),
    ]
    assert await store.feedback("T2") == []
    with pytest.raises(InvalidIdError):
        await store.feedback("T*")


# -- Slack's rate limits, shared by every replica ------------------------------------------
async def paused(store: Store, team: str, method: str) -> float:
    return (await store.slack_method_limits(team, method)).pause


async def test_a_slack_pause_is_per_team_and_method_only_grows_and_ends_with_its_wait(store: Store):
    assert await paused(store, "T1", "chat.update") == 0
    await store.pause_slack_method("T1", "chat.update", 2)
    assert 1.5 < await paused(store, "T1", "chat.update") <= 2
    await store.pause_slack_method("T1", "chat.update", 0.5)  # a shorter wait does not cut it short
    assert 1.5 < await paused(store, "T1", "chat.update") <= 2
    await store.pause_slack_method("T1", "chat.update", 5)  # a longer one extends it
    assert 4.5 < await paused(store, "T1", "chat.update") <= 5
    assert await paused(store, "T1", "chat.postMessage") == 0
    assert await paused(store, "T2", "chat.update") == 0
    assert 4.5 < await ttl(store, store.keys.slack_pause("T1", "chat.update")) <= 5  # nothing outlives it
    await age(store, store.keys.slack_pause("T1", "chat.update"), 5)
    assert await paused(store, "T1", "chat.update") == 0


async def test_a_429_s_lesson_is_read_with_the_pause_per_team_and_method_and_ages_until_it_lapses(store: Store):
    method = "chat.appendStream"
    assert await store.slack_method_limits("T1", method) == SlackLimits()
    await store.pause_slack_method("T1", method, 2, lesson=SlackLesson("one", 120.0, lasts=1800))
    limits = await store.slack_method_limits("T1", method)
    assert 1.5 < limits.pause <= 2 and limits.lesson is not None
    assert (limits.lesson.id, limits.lesson.per_minute, limits.lesson.lasts) == ("one", 120.0, 1800)
    assert 0 <= limits.lesson.age < 0.5  # just learned
    assert (await store.slack_method_limits("T1", "chat.update")).lesson is None  # per method
    assert (await store.slack_method_limits("T2", method)).lesson is None  # and per team
    await age(store, store.keys.slack_lesson("T1", method), 600)
    lesson = (await store.slack_method_limits("T1", method)).lesson
    assert lesson is not None and 599.5 < lesson.age <= 600.5  # its age is what its TTL ran down
    # A later 429's lesson replaces it (a lesson learned a while ago lasts what is left of it).
    await store.pause_slack_method("T1", method, 1, lesson=SlackLesson("two", 60.0, lasts=1800, age=100))
    lesson = (await store.slack_method_limits("T1", method)).lesson
    assert lesson is not None and (lesson.id, lesson.per_minute) == ("two", 60.0)
    assert 99.5 < lesson.age <= 100.5
    assert 1699 < await ttl(store, store.keys.slack_lesson("T1", method)) <= 1700  # nothing outlives it
    await age(store, store.keys.slack_lesson("T1", method), 1700)
    assert (await store.slack_method_limits("T1", method)).lesson is None


def test_a_slack_method_s_pause_and_lesson_share_a_slot_of_the_team():
    keys = Keys()
    pause, lesson = keys.slack_pause("T1", "chat.appendStream"), keys.slack_lesson("T1", "chat.appendStream")
    assert key_slot(pause.encode()) == key_slot(lesson.encode())  # read in one round trip, written in one MULTI
    assert pause.startswith("assist-bot:{T1:") and lesson.startswith("assist-bot:{T1:")
    with pytest.raises(InvalidIdError):
        keys.slack_pause("T1", "chat.update}:x{")


async def test_posts_per_channel_get_a_burst_then_queue_one_interval_apart(store: Store):
    channel = ChannelKey("T1", "C1")
    waits = [await store.reserve_post(channel, interval=1.0, burst=3) for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    # Each later poster is told to wait one more interval (a few ms of real time may have passed on Redis).
    for expected, wait in zip((1.0, 2.0, 3.0), waits[3:], strict=True):
        assert expected - 0.25 < wait <= expected
    assert await store.reserve_post(ChannelKey("T1", "C2"), interval=1.0, burst=3) == 0  # per channel
    assert await store.reserve_post(ChannelKey("T2", "C1"), interval=1.0, burst=3) == 0  # and per team
    # The key lives only until the six slots are past (after that, an empty key means the same).
    assert 5.5 < await ttl(store, store.keys.post_pace(channel)) <= 6


async def test_a_quiet_channel_gets_its_burst_back(store: Store):
    channel = ChannelKey("T1", "C1")
    for _ in range(3):
        assert await store.reserve_post(channel, interval=1.0, burst=3) == 0
    await age(store, store.keys.post_pace(channel), 3)  # the slots are past: the key is gone
    assert [await store.reserve_post(channel, interval=1.0, burst=3) for _ in range(3)] == [0, 0, 0]
