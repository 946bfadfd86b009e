"""Many workspaces (OAuth): the install round trip over real HTTP, installations in a real Redis,
and each workspace's events answered with that workspace's own token — what the fake Slack
received, per call, is the proof."""

from __future__ import annotations

import aiohttp
import pytest
import redis.asyncio as aioredis

from assist_bot.assistants import Assistant, Assistants
from assist_bot.slack.installations import RedisInstallationStore
from tests.fakes.openai import Text
from tests.fakes.slack import FakeSlack, file_share_message, mention, wait_for
from tests.support import oauth
from tests.support.bot import RunningBot, running_bot
from tests.support.flows import approval_id, reply_containing
from tests.support.oauth import oauth_env

pytestmark = pytest.mark.timeout(60)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
async def installed(redis_url):
    """What Redis holds, read through a client of its own (not the bot's)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    store = RedisInstallationStore(client)
    yield store
    await store.close()


def base(bot: RunningBot) -> str:
    return f"http://127.0.0.1:{bot.bot.transport.port}"


async def start_install(http: aiohttp.ClientSession, bot: RunningBot, slack: FakeSlack) -> str:
    return await oauth.start_install(http, base(bot), slack)


async def finish_install(
    http: aiohttp.ClientSession, bot: RunningBot, *, code: str | None, state: str | None, cookie: str | None
) -> tuple[int, str]:
    return await oauth.finish_install(http, base(bot), code=code, state=state, cookie=cookie)


async def install(bot: RunningBot, slack: FakeSlack, team: str) -> str:
    return await oauth.install(base(bot), slack, team)


def tokens_for_channel(slack: FakeSlack, channel: str) -> set[str | None]:
    return {c.token for c in slack.calls if c.args.get("channel") == channel}


async def test_a_second_workspace_installs_and_is_answered_with_its_own_token(slack, openai_fake, redis_url, installed):
    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        first = await install(bot, slack, "T1")
        second = await install(bot, slack, "T2")
        assert first != second
        # Stored in Redis (read here through another connection), each workspace with its own token.
        assert (await installed.async_find_bot(enterprise_id=None, team_id="T1")).bot_token == first
        stored = await installed.async_find_installation(enterprise_id=None, team_id="T2")
        assert (stored.bot_token, stored.bot_user_id, stored.team_name) == (second, "UBOT2", "Second Team")
        assert [c.args["code"] for c in slack.calls_to("oauth.v2.access")] and all(
            c.error is None for c in slack.calls_to("oauth.v2.access")
        )

        one = mention("C1", "U1", "hello from one", team="T1")
        two = mention("C2", "U5", "hello from two", team="T2", bot_user_id="UBOT2")
        assert await bot.send(one, team_id="T1") == 200
        assert await bot.send(two, team_id="T2") == 200
        await reply_containing(slack, "C1", one["ts"], "hello from one")
        await reply_containing(slack, "C2", two["ts"], "hello from two")
        # Later events are authorised from the store alone: no auth.test on the ack path again.
        checks = len(slack.calls_to("auth.test"))
        again = mention("C2", "U5", "hello again", team="T2", bot_user_id="UBOT2")
        assert await bot.send(again, team_id="T2") == 200
        await reply_containing(slack, "C2", again["ts"], "hello again")
        assert len(slack.calls_to("auth.test")) == checks

    assert tokens_for_channel(slack, "C2") == {second}  # placeholder, edits: all with its own token
    assert tokens_for_channel(slack, "C1") == {first}  # the first workspace keeps its own
    assert {c.token for c in slack.calls_to("users.info") if c.args["user"] == "U5"} == {second}
    assert {first, second} <= {c.token for c in slack.calls_to("auth.test")}
    assert slack.bot_token not in {c.token for c in slack.calls}  # no single-workspace token anywhere


async def test_a_workspaces_files_are_downloaded_with_its_own_token(slack, openai_fake, redis_url, installed):
    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        await install(bot, slack, "T1")
        second = await install(bot, slack, "T2")
        file = slack.add_file(
            name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf", channel="C2", team="T2"
        )
        event = file_share_message("C2", "U5", "", [file], team="T2")
        assert await bot.send(event, team_id="T2") == 200
        await reply_containing(slack, "C2", event["ts"], "handbook.pdf")
    assert slack.download_tokens == [second]
    [vector_store] = openai_fake.vector_stores.values()
    [(openai_file, _)] = vector_store["files"].items()
    assert openai_fake.files[openai_file]["content"] == PDF


async def test_forged_missing_and_spent_states_are_refused(slack, openai_fake, redis_url, installed):
    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        async with aiohttp.ClientSession() as http:
            state = await start_install(http, bot, slack)
            code = slack.authorize_code("T2")
            # Another browser (no cookie), no state at all, a state we never signed (with a matching cookie).
            assert (await finish_install(http, bot, code=code, state=state, cookie=None))[0] == 400
            assert (await finish_install(http, bot, code=code, state=None, cookie=None))[0] == 400
            forged = "forged-nonce." + "0" * 64
            assert (await finish_install(http, bot, code=code, state=forged, cookie=forged))[0] == 401
            assert slack.calls_to("oauth.v2.access") == []  # the code was never even tried
            assert await installed.async_find_bot(enterprise_id=None, team_id="T2") is None
            # The real state still works, once.
            assert (await finish_install(http, bot, code=code, state=state, cookie=state))[0] == 200
            again = slack.authorize_code("T2")
            assert (await finish_install(http, bot, code=again, state=state, cookie=state))[0] == 401
    assert len(slack.calls_to("oauth.v2.access")) == 1


async def test_uninstall_and_token_revocation_delete_that_workspaces_installation(
    slack, openai_fake, redis_url, installed
):
    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        first = await install(bot, slack, "T1")
        await install(bot, slack, "T2")
        slack.revoke_tokens("T2")
        assert await bot.send({"type": "app_uninstalled", "event_ts": "1.1"}, team_id="T2") == 200
        assert await installed.async_find_installation(enterprise_id=None, team_id="T2") is None
        assert await installed.async_find_bot(enterprise_id=None, team_id="T2") is None
        assert (await installed.async_find_bot(enterprise_id=None, team_id="T1")).bot_token == first
        # A message from the uninstalled workspace gets no answer; the other workspace still does.
        gone = mention("C2", "U5", "anyone there?", team="T2", bot_user_id="UBOT2")
        await bot.send(gone, team_id="T2")
        still = mention("C1", "U1", "still here?", team="T1")
        await bot.send(still, team_id="T1")
        await reply_containing(slack, "C1", still["ts"], "still here?")
        assert tokens_for_channel(slack, "C2") == set()

        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}, "event_ts": "1.2"}
        assert await bot.send(revoked, team_id="T1") == 200
        assert await installed.async_find_bot(enterprise_id=None, team_id="T1") is None


async def test_an_expiring_token_is_rotated_and_the_new_one_is_used(slack, openai_fake, redis_url, installed):
    slack.token_expires_in = 60  # token rotation on: tokens live a minute (Slack's last 12 hours)
    async with running_bot(slack, openai_fake, **oauth_env(slack, redis_url)) as bot:
        old = await install(bot, slack, "T2")
        [refresh] = slack.refresh_tokens
        slack.token_expires_in = 12 * 3600
        event = mention("C2", "U5", "rotate me", team="T2", bot_user_id="UBOT2")
        assert await bot.send(event, team_id="T2") == 200
        await reply_containing(slack, "C2", event["ts"], "rotate me")
    refreshes = [c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert [c.args["refresh_token"] for c in refreshes] == [refresh]  # refreshed once, with the stored refresh token
    bot_record = await installed.async_find_bot(enterprise_id=None, team_id="T2")
    new = bot_record.bot_token
    assert new != old and slack.team_of_token(new) == "T2"
    assert bot_record.bot_refresh_token in slack.refresh_tokens  # the next refresh token is kept
    assert tokens_for_channel(slack, "C2") == {new}


async def test_single_workspace_mode_is_unchanged(slack, openai_fake):
    openai_fake.enqueue(Text.of("hi there"))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "hello")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "hi there")
        async with aiohttp.ClientSession() as http:
            async with http.get(base(bot) + "/slack/install", allow_redirects=False) as resp:
                assert resp.status == 404  # no install flow without SLACK_CLIENT_ID
    assert {c.token for c in slack.calls} == {slack.bot_token}


async def test_a_consent_prompt_is_asked_and_settled_with_its_workspaces_token(
    slack, openai_fake, redis_url, installed
):
    assistants = Assistants({"acme": Assistant(name="acme", model="gpt-5.4-mini", tools=("note_down",))}, "acme")
    openai_fake.enqueue(Text([], calls=[("note_down", {"text": "buy milk"})]), Text.of("noted"))
    env = {**oauth_env(slack, redis_url), "ASSIST_BOT_TOOL_MODULES": "tests.support.acme_tools"}
    async with running_bot(slack, openai_fake, assistants=assistants, **env) as bot:
        await install(bot, slack, "T1")
        second = await install(bot, slack, "T2")
        event = mention("C2", "U5", "note: buy milk", team="T2", bot_user_id="UBOT2")
        await bot.send(event, team_id="T2")
        ask = await wait_for(lambda: next((m for m in slack.messages if m.channel == "C2" and m.blocks), None))
        await bot.click(
            slack, "assist_approve", approval_id(ask), user="U5", channel="C2", message_ts=ask.ts, team="T2"
        )
        await reply_containing(slack, "C2", event["ts"], "noted")
    settle = [c for c in slack.calls_to("chat.update") if c.args.get("ts") == ask.ts]
    assert settle and {c.token for c in settle} == {second}
    assert tokens_for_channel(slack, "C2") == {second}
