"""One contract, three backends: the ledger (usage and resources at OpenAI) in memory, on Redis and
on a real three-node Redis Cluster."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot.store.base import ChannelKey, ThreadKey
from assist_bot.store.keys import InvalidIdError
from assist_bot.store.ledger import Owner, Resource, UsageEntry, open_ledger
from assist_bot.store.memory import MemoryStore
from assist_bot.store.redis import RedisStore
from tests.support.thread_state import conversation_of, files_of, save_conversation

THREAD = Owner("T1", "C1", "100.1")


class Clock:
    """The memory twin's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def age_lease(store, name: str, seconds: float) -> None:
    """Let `seconds` pass for a lease: the memory twin's clock, or the Redis key's TTL."""
    if isinstance(store, MemoryStore):
        store._clock.now += seconds
        return
    key = f"assist-bot:lease:{name}"
    left = await store._redis.pttl(key)
    if left - seconds * 1000 <= 0:
        await store._redis.delete(key)
    else:
        await store._redis.pexpire(key, int(left - seconds * 1000))


CHANNEL = Owner("T1", "C1")


@pytest.fixture(params=["memory", "redis", "cluster"])
async def twins(request):
    if request.param == "memory":
        store = MemoryStore(retention_seconds=60, clock=Clock())
    else:
        url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
        store = RedisStore.from_url(url, retention_seconds=60)
        await store._redis.flushdb()
    yield store, open_ledger(store)
    await store.close()


def entry(tokens: int, *, channel: str = "C1", user: str = "U1", **counts: int) -> UsageEntry:
    return UsageEntry(
        team="T1",
        month="2026-12",
        scopes=("workspace", f"channel:{channel}", f"user:{user}"),
        counts={"tokens": tokens, **counts},
        ranked={"channel": channel, "user": user},
        touched=(Owner("T1", channel, "1.1"),),
    )


async def test_usage_adds_up_per_scope_and_returns_the_new_token_totals(twins):
    _, ledger = twins
    assert await ledger.record(entry(10, **{"input@m": 7, "output@m": 3}), now=1.0) == {
        "workspace": 10,
        "channel:C1": 10,
        "user:U1": 10,
    }
    after = await ledger.record(entry(5, channel="C2", **{"input@m": 5, "web_search": 1}), now=2.0)
    assert after == {"workspace": 15, "channel:C2": 5, "user:U1": 15}
    figures = await ledger.usage("T1", "2026-12", ["workspace", "channel:C1", "channel:C9"])
    assert figures["workspace"] == {"tokens": 15, "input@m": 12, "output@m": 3, "web_search": 1}
    assert figures["channel:C1"] == {"tokens": 10, "input@m": 7, "output@m": 3}
    assert figures["channel:C9"] == {}
    assert await ledger.usage("T2", "2026-12", ["workspace"]) == {"workspace": {}}  # workspaces apart
    assert await ledger.usage("T1", "2027-01", ["workspace"]) == {"workspace": {}}  # months apart


async def test_leaderboards_rank_by_tokens(twins):
    _, ledger = twins
    await ledger.record(entry(10, channel="C1", user="U1"), now=1.0)
    await ledger.record(entry(30, channel="C2", user="U1"), now=1.0)
    await ledger.record(entry(5, channel="C3", user="U2"), now=1.0)
    assert await ledger.top("T1", "2026-12", "channel", 2) == [("C2", 30), ("C1", 10)]
    assert await ledger.top("T1", "2026-12", "user", 5) == [("U1", 40), ("U2", 5)]


async def test_an_alert_is_marked_once_and_does_not_show_as_a_figure(twins):
    _, ledger = twins
    await ledger.record(entry(10), now=1.0)
    await ledger.record(entry(0, **{"input@ft:gpt-4o-mini:acme::x1": 4}), now=1.0)  # a fine-tuned model's name
    assert await ledger.mark_once("T1", "2026-12", "workspace", "alert80") is True
    assert await ledger.mark_once("T1", "2026-12", "workspace", "alert80") is False
    assert await ledger.mark_once("T1", "2027-01", "workspace", "alert80") is True
    assert (await ledger.usage("T1", "2026-12", ["workspace"]))["workspace"] == {
        "tokens": 10,
        "input@ft:gpt-4o-mini:acme::x1": 4,
    }


async def test_resources_by_owner_with_their_last_use(twins):
    _, ledger = twins
    await ledger.add_resource(THREAD, Resource("conversation", "conv_1"), now=100.0)
    await ledger.add_resource(THREAD, Resource("file", "file-1"), now=50.0)  # an older time never goes back
    await ledger.add_resource(CHANNEL, Resource("vector_store", "vs_1"), now=70.0)
    await ledger.add_resource(Owner("T1", "C2", "5.5"), Resource("container", "cntr_1"), now=80.0)
    await ledger.add_resource(Owner("T2", "C1", "1.1"), Resource("conversation", "conv_t2"), now=1.0)
    assert await ledger.resources(THREAD) == [Resource("conversation", "conv_1"), Resource("file", "file-1")]
    assert await ledger.owners("T1") == {THREAD: 100.0, CHANNEL: 70.0, Owner("T1", "C2", "5.5"): 80.0}
    assert await ledger.owners("T1", channel="C1") == {THREAD: 100.0, CHANNEL: 70.0}
    assert await ledger.teams() == ["T1", "T2"]
    # A turn touches its thread (and records what it used) in the same round trip as its figures.
    turn = UsageEntry(
        "T1",
        "2026-12",
        ("workspace",),
        {"tokens": 1},
        {},
        touched=(CHANNEL,),
        resources=[(THREAD, Resource("container", "cntr_2"))],
    )
    await ledger.record(turn, now=200.0)
    assert (await ledger.owners("T1", channel="C1")) == {THREAD: 200.0, CHANNEL: 200.0}
    assert Resource("container", "cntr_2") in await ledger.resources(THREAD)


async def test_a_resource_keeps_the_server_it_was_made_at(twins):
    store, ledger = twins
    azure = "https://contoso.openai.azure.com key=AZURE_OPENAI_API_KEY"
    await ledger.add_resource(THREAD, Resource("conversation", "conv_1", azure), now=1.0)
    turn = UsageEntry(
        "T1", "2026-12", ("workspace",), {"tokens": 1}, {}, resources=[(THREAD, Resource("container", "cntr_1", azure))]
    )
    await ledger.record(turn, now=2.0)
    # A record written before servers were recorded reads as the bot's own server ("").
    if isinstance(store, MemoryStore):
        ledger._owned[ledger.keys.owned(THREAD)].add("file:file-1")
    else:
        await store._redis.sadd(ledger.keys.owned(THREAD), "file:file-1")
    assert await ledger.resources(THREAD) == [
        Resource("container", "cntr_1", azure),
        Resource("conversation", "conv_1", azure),
        Resource("file", "file-1", ""),
    ]
    await ledger.remove_resources(THREAD, [Resource("conversation", "conv_1", azure), Resource("file", "file-1")])
    assert await ledger.resources(THREAD) == [Resource("container", "cntr_1", azure)]


async def test_removing_the_last_resource_forgets_the_owner(twins):
    _, ledger = twins
    await ledger.add_resource(THREAD, Resource("conversation", "conv_1"), now=1.0)
    await ledger.add_resource(THREAD, Resource("file", "file-1"), now=1.0)
    await ledger.remove_resources(THREAD, [Resource("file", "file-1")])
    assert await ledger.resources(THREAD) == [Resource("conversation", "conv_1")]
    assert THREAD in await ledger.owners("T1")
    await ledger.remove_resources(THREAD, [Resource("conversation", "conv_1")])
    assert await ledger.resources(THREAD) == []
    assert await ledger.owners("T1") == {}


async def test_dropping_a_team_removes_its_keys_and_the_stores_but_no_other_teams(twins):
    store, ledger = twins
    for team in ("T1", "T2"):
        await ledger.add_resource(Owner(team, "C1", "1.1"), Resource("conversation", f"conv_{team}"), now=1.0)
        await ledger.record(UsageEntry(team, "2026-12", ("workspace",), {"tokens": 3}, {"user": "U1"}), now=1.0)
        await save_conversation(store, ThreadKey(team, "C1", "1.1"), f"conv_{team}")
        await store.set_channel_setting(ChannelKey(team, "C1"), "assistant", "general")
    for wild in ("T*", "T[12]", "T?"):  # a pattern, not a team: it would reach other workspaces' keys
        with pytest.raises(InvalidIdError):
            await ledger.drop_team(wild)
    with pytest.raises(InvalidIdError):
        await ledger.record(UsageEntry("T}1", "2026-12", ("workspace",), {"tokens": 3}, {}), now=1.0)
    assert await ledger.drop_team("T1") > 0
    assert await ledger.owners("T1") == {}
    assert await ledger.teams() == ["T2"]
    assert await ledger.usage("T1", "2026-12", ["workspace"]) == {"workspace": {}}
    assert await conversation_of(store, ThreadKey("T1", "C1", "1.1")) is None
    assert await store.get_channel_settings(ChannelKey("T1", "C1")) == {}
    assert await conversation_of(store, ThreadKey("T2", "C1", "1.1")) == "conv_T2"
    assert (await ledger.usage("T2", "2026-12", ["workspace"]))["workspace"] == {"tokens": 3}


async def test_a_lease_has_one_holder_until_released_or_expired(twins):
    store, ledger = twins
    assert await ledger.acquire_lease("janitor", "a", 5) is True
    assert await ledger.acquire_lease("janitor", "b", 5) is False
    await ledger.release_lease("janitor", "b")  # not the holder: no effect
    assert await ledger.acquire_lease("janitor", "b", 5) is False
    assert await ledger.refresh_lease("janitor", "a", 5) is True
    assert await ledger.refresh_lease("janitor", "b", 5) is False
    await ledger.release_lease("janitor", "a")
    assert await ledger.refresh_lease("janitor", "a", 5) is False  # released: nothing to extend
    assert await ledger.acquire_lease("janitor", "b", 30) is True
    await age_lease(store, "janitor", 20)
    assert await ledger.acquire_lease("janitor", "c", 5) is False  # 10 s left
    await age_lease(store, "janitor", 11)
    assert await ledger.acquire_lease("janitor", "c", 5) is True  # its holder stopped refreshing it


async def test_concurrent_lease_takers_get_one_lease(twins):
    _, ledger = twins
    results = await asyncio.gather(*(ledger.acquire_lease("janitor", f"h{i}", 5) for i in range(10)))
    assert results.count(True) == 1


async def test_deleting_keys_removes_the_stores_thread_state(twins):
    store, ledger = twins
    thread = ThreadKey("T1", "C1", "1.1")
    await save_conversation(store, thread, "conv_1")
    await store.add_thread_file(thread, "file-1")
    await ledger.delete_keys([store.keys.conversation(thread), store.keys.thread_files(thread)])
    assert await conversation_of(store, thread) is None
    assert await files_of(store, thread) == []


async def test_a_turn_is_recorded_in_one_redis_transaction(redis_url):
    """Compact by design: a turn's figures for every scope, its leaderboards, what it used and
    made at OpenAI — one MULTI … EXEC sent as one pipeline, nothing else."""
    from assist_bot.events import UsageReport
    from assist_bot.usage import Budgets, Meter

    store = RedisStore.from_url(redis_url, retention_seconds=60)
    try:
        meter = Meter(open_ledger(store), Budgets(), clock=lambda: 1_800_000_000.0)
        report = UsageReport(model="gpt-5.4-mini", input_tokens=10, output_tokens=2, containers=("cntr_1",))
        await store._redis.config_resetstat()
        await meter.record(thread=THREAD, user="U1", assistant="default", reports=[report], conversation="conv_1")
        stats = await store._redis.info("commandstats")
    finally:
        await store.close()
    ours = ("config", "info")  # the test's own commands
    calls = {
        name.removeprefix("cmdstat_"): value["calls"]
        for name, value in stats.items()
        if not name.removeprefix("cmdstat_").startswith(ours)
    }
    assert calls.pop("multi") == 1 and calls.pop("exec") == 1
    assert set(calls) <= {"hincrby", "expire", "zincrby", "sadd", "zadd"}, calls


async def test_a_ledger_that_does_not_answer_counts_as_within_budget():
    """Budgets are checked before every answer and every slash command's model call: with Redis
    away, people are served (and the failure logged) rather than all refused."""
    from assist_bot.usage import Budgets, Meter
    from tests.support.redis_server import own_redis_server

    with own_redis_server() as url:
        store = RedisStore.from_url(url, retention_seconds=60)
    # The server is gone now: every ledger read fails.
    try:
        meter = Meter(open_ledger(store), Budgets(workspace=1, user=1), clock=lambda: 1_800_000_000.0)
        assert await asyncio.wait_for(meter.over_budget(team="T1", channel="C1", user="U1"), timeout=30) is None
    finally:
        await store.close()
