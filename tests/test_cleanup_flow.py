"""Removing data on request, over the real wire: `/assist forget` for a whole channel
(admins), `app_uninstalled` and `tokens_revoked` for a workspace; files made at OpenAI
carry expires_after where the API allows it."""

from __future__ import annotations

import time

import pytest

from assist_bot import texts
from assist_bot.store import ChannelKey, ThreadKey
from assist_bot.store.ledger import Owner, Resource
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import file_share_message, mention, new_ts, wait_for
from tests.support.bot import running_bot
from tests.support.flows import mention_and_wait_for_reply, response_to
from tests.support.second_server import assistants_file
from tests.support.thread_state import conversation_of

pytestmark = pytest.mark.timeout(60)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def ask(bot, slack, channel, *, team="T1"):
    """Any question in a new thread, answered (the fake model echoes it)."""
    return await mention_and_wait_for_reply(bot, slack, channel, "U1", "hello", containing="You said", team=team)


def openai_conversations(openai_fake, team, channel) -> list[str]:
    return [
        cid
        for cid, conv in openai_fake.conversations.items()
        if conv["metadata"].get("team") == team and conv["metadata"].get("channel") == channel
    ]


async def team_keys(bot, team) -> list[str]:
    # Every layout a workspace's keys have: `{T1}:…` (ledger), `{T1:…}:…` (store), `T1:…` (installation).
    patterns = (f"assist-bot:{{{team}}}:*", f"assist-bot:{{{team}:*", f"assist-bot:{team}:*")
    return [key for pattern in patterns async for key in bot.bot.store._redis.scan_iter(match=pattern)]


async def test_app_uninstalled_removes_that_workspaces_data_and_no_others(slack, openai_fake, redis_url):
    async with running_bot(slack, openai_fake, redis_url=redis_url) as bot:
        await bot.bot.store._redis.flushdb()
        first = await ask(bot, slack, "C1", team="T1")
        await ask(bot, slack, "C1", team="T2")
        await wait_for(lambda: len(openai_fake.conversations) == 2)
        await bot.settled()  # both turns recorded

        assert await bot.send({"type": "app_uninstalled", "event_ts": new_ts()}, team_id="T1") == 200

        await wait_for(lambda: not openai_conversations(openai_fake, "T1", "C1"))
        await bot.settled()
        assert openai_conversations(openai_fake, "T2", "C1")  # the other workspace keeps its own
        assert await team_keys(bot, "T1") == []
        assert await team_keys(bot, "T2") != []
        assert await conversation_of(bot.bot.store, ThreadKey("T1", "C1", first["ts"])) is None
        assert await bot.bot.ledger.teams() == ["T2"]


async def test_tokens_revoked_removes_data_only_when_the_bot_token_goes(slack, openai_fake, redis_url):
    async with running_bot(slack, openai_fake, redis_url=redis_url) as bot:
        await bot.bot.store._redis.flushdb()
        await ask(bot, slack, "C1", team="T1")
        await bot.settled()
        # A user's token revoked: the bot still works there, nothing is removed.
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": []}, "event_ts": new_ts()}
        assert await bot.send(revoked, team_id="T1") == 200
        assert bot.bot.dispatcher.in_flight == 0 and openai_conversations(openai_fake, "T1", "C1")
        # The bot token revoked: the workspace's data goes.
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}, "event_ts": new_ts()}
        assert await bot.send(revoked, team_id="T1") == 200
        await wait_for(lambda: not openai_conversations(openai_fake, "T1", "C1"))
        await bot.settled()
        assert await team_keys(bot, "T1") == []


async def test_assist_forget_alone_deletes_the_channels_data_for_admins(slack, openai_fake, redis_url):
    async with running_bot(slack, openai_fake, redis_url=redis_url, ASSIST_BOT_ADMINS="UADMIN") as bot:
        await bot.bot.store._redis.flushdb()
        doc = slack.add_file(name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf", channel="C1")
        await bot.send(file_share_message("C1", "U1", "", [doc]))
        await wait_for(lambda: len(openai_fake.vector_stores) == 1 and len(openai_fake.files) == 1)
        thread = await ask(bot, slack, "C1")
        await ask(bot, slack, "C2")
        await bot.settled()

        refused = await bot.command(slack, "/assist", "forget", user="U1", channel="C1")
        assert (await response_to(slack, refused))["text"] == texts.ADMINS_ONLY
        assert len(openai_fake.vector_stores) == 1 and openai_conversations(openai_fake, "T1", "C1")

        done = await bot.command(slack, "/assist", "forget", user="UADMIN", channel="C1")
        reply = (await response_to(slack, done))["text"]
        assert reply == texts.channel_forgotten(3)  # the conversation, the document and the vector store
        assert openai_fake.vector_stores == {} and openai_fake.files == {}
        assert not openai_conversations(openai_fake, "T1", "C1")
        assert openai_conversations(openai_fake, "T1", "C2")  # another channel keeps its own
        channel = ChannelKey("T1", "C1")
        assert "vector_store_id" not in await bot.bot.store.get_channel_settings(channel)
        assert await bot.bot.store.knowledge_files(channel) == {}
        assert await conversation_of(bot.bot.store, ThreadKey("T1", "C1", thread["ts"])) is None


async def test_a_conversation_is_deleted_at_the_model_server_it_was_made_at(
    slack, openai_fake, redis_url, tmp_path, monkeypatch
):
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)  # C1's (the default) assistant lives there
        async with running_bot(
            slack, openai_fake, redis_url=redis_url, ASSIST_BOT_ASSISTANTS=file, ASSIST_BOT_ADMINS="UADMIN"
        ) as bot:
            await bot.bot.store._redis.flushdb()
            await ask(bot, slack, "C1")
            await wait_for(lambda: len(second.conversations) == 1)
            [made_there] = second.conversations
            await bot.settled()  # the turn recorded
            # One at the bot's own server, recorded as records were before servers were recorded.
            own = (await bot.bot.openai.conversations.create()).id
            await bot.bot.ledger.add_resource(Owner("T1", "C1", "9.9"), Resource("conversation", own), now=time.time())

            done = await bot.command(slack, "/assist", "forget", user="UADMIN", channel="C1")
            assert (await response_to(slack, done))["text"] == texts.channel_forgotten(2)
    assert second.conversations == {} and f"/v1/conversations/{made_there}" in second.deletes
    assert f"/v1/conversations/{made_there}" not in openai_fake.deletes
    assert openai_fake.conversations == {} and f"/v1/conversations/{own}" in openai_fake.deletes


async def test_images_expire_at_openai_after_the_retention(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_RETENTION_DAYS=7) as bot:
        image = slack.add_file(name="screen.png", content=PNG, mimetype="image/png", filetype="png", channel="D1")
        await bot.send(file_share_message("D1", "U1", "what is this?", [image], channel_type="im"))
        await wait_for(lambda: openai_fake.response_requests)
    [record] = openai_fake.files.values()
    assert record["expires_at"] == record["created_at"] + 7 * 86400
    assert record["expires_at"] > time.time()


async def test_with_oauth_an_uninstall_drops_the_installation_and_the_workspaces_data(slack, openai_fake, redis_url):
    from assist_bot.slack.installations import RedisInstallationStore
    from tests.support.oauth import install, oauth_env

    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        await bot.bot.store._redis.flushdb()
        base = bot.events_url.removesuffix("/slack/events")
        await install(base, slack, "T1")
        await install(base, slack, "T2")
        for team, user in (("T1", "UBOT"), ("T2", "UBOT2")):
            event = mention("C1", "U1", "hello", team=team, bot_user_id=user)
            await bot.send(event, team_id=team)
            await wait_for(lambda: openai_conversations(openai_fake, team, "C1"))
        await bot.settled()

        assert await bot.send({"type": "app_uninstalled", "event_ts": new_ts()}, team_id="T2") == 200

        await wait_for(lambda: not openai_conversations(openai_fake, "T2", "C1"))
        await bot.settled()
        installations = RedisInstallationStore.from_url(redis_url)
        try:
            assert await installations.async_find_bot(enterprise_id=None, team_id="T2") is None
            assert await installations.async_find_bot(enterprise_id=None, team_id="T1") is not None
        finally:
            await installations.close()
        assert openai_conversations(openai_fake, "T1", "C1")
        assert await team_keys(bot, "T2") == []
