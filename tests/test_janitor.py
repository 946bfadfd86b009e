"""Clean-up: the janitor deletes at the fake OpenAI what outlived its retention and leaves
live things alone (an injected clock, no sleeping); `assist-bot cleanup [--dry-run]` as a
process; what a turn and a shared file leave behind is recorded with its owner."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import openai
import pytest

from assist_bot.assistants import Assistants, Backend
from assist_bot.engine.backends import Backends
from assist_bot.janitor import Janitor
from assist_bot.settings import Settings
from assist_bot.store import ChannelKey, ThreadKey
from assist_bot.store.ledger import Owner, Resource, open_ledger
from assist_bot.store.redis import RedisStore
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import file_share_message, mention, message, wait_for
from tests.support.bot import running_bot
from tests.support.flows import message_containing
from tests.support.polling import wait_until_equal
from tests.support.processes import child_env
from tests.support.second_server import KEY_ENV, assistants_file
from tests.support.thread_state import conversation_of, files_of, save_conversation
from tests.support.waits import Ticks

pytestmark = pytest.mark.timeout(60)

DAY = 86400.0
NOW = 1_800_000_000.0  # the janitor's clock
OLD_THREAD = Owner("T1", "C1", "100.1")
LIVE_THREAD = Owner("T1", "C1", "200.2")
OLD_CHANNEL = Owner("T1", "C9")
LIVE_CHANNEL = Owner("T1", "C1")
CSV = b"month,sales\njan,10\nfeb,12\n"


def settings_for(openai_fake, redis_url: str, **extra) -> Settings:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "ASSIST_BOT_OPENAI_MAX_RETRIES": 0,
        "REDIS_URL": redis_url,
        "ASSIST_BOT_RETENTION_DAYS": 30,
        "ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS": 90,
        **extra,
    }
    return Settings(_env_file=None, **values)


def backends_of(settings: Settings, client: openai.AsyncOpenAI) -> Backends:
    """The default server only: the client the test made, as `assist-bot cleanup` builds it."""
    return Backends(settings=settings, assistants=Assistants.builtin(model=settings.model), default_client=client)


@pytest.fixture
async def parts(openai_fake, redis_url):
    store = RedisStore.from_url(redis_url, retention_seconds=30 * 86400)
    await store._redis.flushdb()
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=openai_fake.base_url, max_retries=0)
    yield store, open_ledger(store), client
    await client.close()
    await store.close()


async def made_at_openai(client: openai.AsyncOpenAI) -> dict[str, str]:
    """One of each kind, made through the SDK as the bot makes them."""
    return {
        "old_conv": (await client.conversations.create()).id,
        "live_conv": (await client.conversations.create()).id,
        "old_file": (await client.files.create(file=("a.csv", CSV, "text/csv"), purpose="assistants")).id,
        "old_container": (await client.containers.create(name="x")).id,
        "old_vs": (await client.vector_stores.create(name="old")).id,
        "live_vs": (await client.vector_stores.create(name="live")).id,
    }


async def record(ledger, made: dict[str, str]) -> None:
    old, recent = NOW - 31 * DAY, NOW - 29 * DAY
    await ledger.add_resource(OLD_THREAD, Resource("conversation", made["old_conv"]), now=old)
    await ledger.add_resource(OLD_THREAD, Resource("file", made["old_file"]), now=old)
    await ledger.add_resource(OLD_THREAD, Resource("container", made["old_container"]), now=old)
    await ledger.add_resource(OLD_THREAD, Resource("conversation", "conv_gone_already"), now=old)
    await ledger.add_resource(LIVE_THREAD, Resource("conversation", made["live_conv"]), now=recent)
    # Knowledge is kept ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS (90 here) after its last use.
    await ledger.add_resource(OLD_CHANNEL, Resource("vector_store", made["old_vs"]), now=NOW - 91 * DAY)
    await ledger.add_resource(LIVE_CHANNEL, Resource("vector_store", made["live_vs"]), now=NOW - 60 * DAY)


async def test_the_janitor_deletes_what_outlived_its_retention_and_leaves_the_rest(parts, openai_fake, redis_url):
    store, ledger, client = parts
    made = await made_at_openai(client)
    await record(ledger, made)
    old_thread = ThreadKey("T1", "C1", "100.1")
    await save_conversation(store, old_thread, made["old_conv"])
    await store.set_channel_setting(ChannelKey("T1", "C9"), "vector_store_id", made["old_vs"])
    settings = settings_for(openai_fake, redis_url)
    janitor = Janitor(
        store=store, ledger=ledger, settings=settings, backends=backends_of(settings, client), clock=lambda: NOW
    )

    removals = await janitor.sweep()

    assert sorted(r.resource.id for r in removals if r.deleted) == sorted(
        [made["old_conv"], made["old_file"], made["old_container"], made["old_vs"], "conv_gone_already"]
    )
    assert set(openai_fake.conversations) == {made["live_conv"]}
    assert openai_fake.files == {} and openai_fake.containers == {}
    assert set(openai_fake.vector_stores) == {made["live_vs"]}
    # What pointed at the deleted things is gone too; the live owners stay recorded.
    assert await conversation_of(store, old_thread) is None
    assert await store.get_channel_settings(ChannelKey("T1", "C9")) == {}
    assert set(await ledger.owners("T1")) == {LIVE_THREAD, LIVE_CHANNEL}
    assert await janitor.sweep() == []  # nothing left to do


async def test_a_dry_run_lists_and_deletes_nothing_and_one_replica_sweeps_at_a_time(parts, openai_fake, redis_url):
    store, ledger, client = parts
    made = await made_at_openai(client)
    await record(ledger, made)
    settings = settings_for(openai_fake, redis_url)
    janitor = Janitor(
        store=store, ledger=ledger, settings=settings, backends=backends_of(settings, client), clock=lambda: NOW
    )
    listed = await janitor.sweep(dry_run=True)
    assert {r.resource.id for r in listed} >= {made["old_conv"], made["old_vs"]}
    assert not any(r.deleted for r in listed)
    assert len(openai_fake.conversations) == 2 and len(openai_fake.vector_stores) == 2
    # Another replica holds the lease: this one does not sweep.
    assert await ledger.acquire_lease("janitor", "other-replica", 60)
    assert await janitor.sweep_with_lease() is None
    assert len(openai_fake.conversations) == 2
    await ledger.release_lease("janitor", "other-replica")
    assert await janitor.sweep_with_lease() is not None
    assert set(openai_fake.conversations) == {made["live_conv"]}


async def test_a_refused_delete_is_kept_for_the_next_sweep(parts, openai_fake, redis_url):
    store, ledger, client = parts
    conv = (await client.conversations.create()).id
    file = (await client.files.create(file=("a.csv", CSV, "text/csv"), purpose="assistants")).id
    await ledger.add_resource(OLD_THREAD, Resource("conversation", conv), now=NOW - 40 * DAY)
    await ledger.add_resource(OLD_THREAD, Resource("file", file), now=NOW - 40 * DAY)
    await save_conversation(store, ThreadKey("T1", "C1", "100.1"), conv)
    openai_fake.delete_errors[f"/v1/conversations/{conv}"] = 500
    settings = settings_for(openai_fake, redis_url)
    janitor = Janitor(
        store=store, ledger=ledger, settings=settings, backends=backends_of(settings, client), clock=lambda: NOW
    )

    removals = await janitor.sweep()

    assert {(r.resource.kind, r.deleted) for r in removals} == {("conversation", False), ("file", True)}
    assert await ledger.resources(OLD_THREAD) == [Resource("conversation", conv)]
    # The thread's pointer stays while its conversation does.
    assert await conversation_of(store, ThreadKey("T1", "C1", "100.1")) == conv
    del openai_fake.delete_errors[f"/v1/conversations/{conv}"]
    assert [r.deleted for r in await janitor.sweep()] == [True]
    assert openai_fake.conversations == {} and await ledger.owners("T1") == {}


async def run_cleanup(openai_fake, redis_url, *args: str, **extra: str) -> tuple[int, str]:
    script = Path(sys.executable).parent / "assist-bot"  # the installed console script
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "REDIS_URL": redis_url,
        "ASSIST_BOT_RETENTION_DAYS": "30",
        "ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS": "90",
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "cleanup",
        *args,
        env=child_env(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


async def test_assist_bot_cleanup_dry_run_lists_then_cleanup_deletes(parts, openai_fake, redis_url):
    store, ledger, client = parts
    conv = (await client.conversations.create()).id
    live = (await client.conversations.create()).id
    now = time.time()  # the process uses the real clock: the records are made old instead
    await ledger.add_resource(OLD_THREAD, Resource("conversation", conv), now=now - 40 * DAY)
    await ledger.add_resource(LIVE_THREAD, Resource("conversation", live), now=now - DAY)

    code, out = await run_cleanup(openai_fake, redis_url, "--dry-run")
    assert code == 0, out
    assert f"would delete conversation {conv} (T1 C1 thread 100.1, last used " in out
    assert live not in out
    assert "1 resource(s) would be deleted (dry run: nothing was)." in out
    assert set(openai_fake.conversations) == {conv, live}

    code, out = await run_cleanup(openai_fake, redis_url)
    assert code == 0, out
    assert f"deleted conversation {conv}" in out and "1 resource(s) deleted." in out
    assert set(openai_fake.conversations) == {live}


async def test_assist_bot_cleanup_deletes_at_the_server_each_thing_was_made_at(
    parts, openai_fake, redis_url, tmp_path, monkeypatch
):
    _, ledger, client = parts
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)
        there = Backend(base_url=second.base_url, api_key_env=KEY_ENV).server
        assert there == f"{second.base_url} key={KEY_ENV}"  # no key, only the name of its variable
        async with openai.AsyncOpenAI(api_key=second.api_key, base_url=second.base_url) as elsewhere:
            conv_there = (await elsewhere.conversations.create()).id
        conv_here = (await client.conversations.create()).id
        old = time.time() - 40 * DAY
        await ledger.add_resource(OLD_THREAD, Resource("conversation", conv_there, there), now=old)
        await ledger.add_resource(OLD_THREAD, Resource("conversation", conv_here), now=old)
        # A server no assistant names any more: its record stays (the default server would say 404).
        await ledger.add_resource(OLD_THREAD, Resource("conversation", "conv_x", "https://gone.example/v1"), now=old)

        code, out = await run_cleanup(
            openai_fake, redis_url, ASSIST_BOT_ASSISTANTS=str(file), **{KEY_ENV: second.api_key}
        )
    assert code == 1, out  # one kept
    assert f"deleted conversation {conv_there} (T1 C1 thread 100.1, last used " in out and f"at {there})" in out
    assert "could not delete conversation conv_x" in out and "2 resource(s) deleted, 1 kept" in out
    assert second.deletes == [f"/v1/conversations/{conv_there}"] and second.conversations == {}
    assert openai_fake.deletes == [f"/v1/conversations/{conv_here}"] and openai_fake.conversations == {}
    assert await ledger.resources(OLD_THREAD) == [Resource("conversation", "conv_x", "https://gone.example/v1")]


async def test_what_turns_and_files_leave_at_openai_is_recorded_and_later_cleaned(slack, openai_fake, redis_url):
    async with running_bot(slack, openai_fake, redis_url=redis_url) as bot:
        await bot.bot.store._redis.flushdb()
        event = mention("C1", "U1", "hello")
        await bot.send(event)
        await message_containing(slack, "C1", "You said")
        file = slack.add_file(name="sales.csv", content=CSV, mimetype="text/csv", filetype="csv", channel="C1")
        await bot.send(file_share_message("C1", "U1", "", [file], thread_ts=event["ts"]))
        await wait_for(lambda: len(openai_fake.files) == 1)
        thread = Owner("T1", "C1", event["ts"])
        ledger = bot.bot.ledger
        await wait_until_equal(lambda: _kinds(ledger, thread), {"conversation", "file"})
        # A month and a day later nobody has used the thread: its conversation and file go.
        later = time.time() + 31 * DAY
        janitor = Janitor(
            store=bot.bot.store,
            ledger=ledger,
            settings=bot.bot.settings,
            backends=bot.bot.backends,
            clock=lambda: later,
        )
        removed = await janitor.sweep()
        assert {r.resource.kind for r in removed if r.deleted} == {"conversation", "file"}
        assert openai_fake.conversations == {} and openai_fake.files == {}
        # Nothing in the store points at them any more (a fresh container would ask for the file).
        assert await files_of(bot.bot.store, ThreadKey("T1", "C1", event["ts"])) == []
        # The thread goes on with a fresh conversation.
        await bot.send(message("C1", "U1", "still there?", thread_ts=event["ts"]))
        await wait_for(lambda: len(openai_fake.conversations) == 1)


async def _kinds(ledger, owner) -> set[str]:
    return {r.kind for r in await ledger.resources(owner)}


async def test_the_running_bot_sweeps_every_cleanup_interval(slack, openai_fake, redis_url):
    ticks = Ticks()  # the interval is over when the test says: nothing waits it out
    async with running_bot(
        slack, openai_fake, redis_url=redis_url, timers={"sleep": ticks}, ASSIST_BOT_CLEANUP_INTERVAL=3600
    ) as bot:
        await wait_for(lambda: ticks.waits == [3600])  # one round per ASSIST_BOT_CLEANUP_INTERVAL
        await bot.bot.store._redis.flushdb()
        old = (await bot.bot.openai.conversations.create()).id
        live = (await bot.bot.openai.conversations.create()).id
        ledger = bot.bot.ledger
        await ledger.add_resource(OLD_THREAD, Resource("conversation", old), now=time.time() - 31 * DAY)
        await ledger.add_resource(LIVE_THREAD, Resource("conversation", live), now=time.time())
        assert old in openai_fake.conversations  # nothing is swept before the interval is over
        ticks.tick()
        await wait_for(lambda: old not in openai_fake.conversations)
        assert live in openai_fake.conversations
        await wait_for(lambda: ticks.waits == [3600, 3600])  # and it waits for the next round
