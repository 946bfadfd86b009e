"""One contract, two twins: slack-sdk's installation store and OAuth state store interfaces,
run against Redis (a real server) and memory, as tests/store/test_contract.py does for the store."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from slack_sdk.oauth.installation_store.models.installation import Installation

from assist_bot.slack.installations import HashInstallationStore, MemoryInstallationStore, RedisInstallationStore
from assist_bot.slack.oauth_state import MemoryStateStore, RedisStateStore, SignedStateStore

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(params=["memory", "redis"])
async def installations(request, redis_url) -> HashInstallationStore:
    if request.param == "memory":
        made: HashInstallationStore = MemoryInstallationStore()
    else:
        made = RedisInstallationStore.from_url(redis_url)
        await made.redis.flushdb()
    yield made
    await made.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def states(request, redis_url):
    clock = Clock()
    if request.param == "memory":
        yield MemoryStateStore(secret="s3cret", expiration_seconds=600, clock=clock), clock
        return
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield RedisStateStore(client, secret="s3cret", expiration_seconds=600), clock
    await client.aclose()


def install(team: str = "T2", *, user: str = "U1", token: str = "xoxb-t2", **extra) -> Installation:
    return Installation(
        app_id="A1",
        team_id=team,
        team_name="Second",
        bot_token=token,
        bot_id="BBOT2",
        bot_user_id="UBOT2",
        bot_scopes="chat:write,users:read",
        user_id=user,
        installed_at=time.time(),
        **extra,
    )


async def test_an_installation_round_trips_with_its_bot(installations: HashInstallationStore):
    await installations.async_save(install(bot_refresh_token="xoxe-1-r", bot_token_expires_in=43200))
    bot = await installations.async_find_bot(enterprise_id=None, team_id="T2")
    assert bot is not None
    assert (bot.bot_token, bot.bot_user_id, bot.bot_refresh_token) == ("xoxb-t2", "UBOT2", "xoxe-1-r")
    assert bot.bot_scopes == ["chat:write", "users:read"]
    assert bot.bot_token_expires_at is not None and bot.bot_token_expires_at > time.time() + 43000
    found = await installations.async_find_installation(enterprise_id=None, team_id="T2")
    assert found is not None and found.team_name == "Second" and found.user_id == "U1"
    assert (await installations.async_find_installation(enterprise_id=None, team_id="T2", user_id="U1")) is not None
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2", user_id="U9") is None


async def test_workspaces_never_see_each_others_installation(installations: HashInstallationStore):
    await installations.async_save(install("T2", token="xoxb-t2"))
    await installations.async_save(install("T3", token="xoxb-t3"))
    assert (await installations.async_find_bot(enterprise_id=None, team_id="T2")).bot_token == "xoxb-t2"
    assert (await installations.async_find_bot(enterprise_id=None, team_id="T3")).bot_token == "xoxb-t3"
    assert await installations.async_find_bot(enterprise_id=None, team_id="T4") is None
    await installations.async_delete_all(enterprise_id=None, team_id="T2")
    assert await installations.async_find_bot(enterprise_id=None, team_id="T2") is None
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2") is None
    assert (await installations.async_find_bot(enterprise_id=None, team_id="T3")).bot_token == "xoxb-t3"


async def test_a_rotated_bot_token_is_what_the_installation_reports(installations: HashInstallationStore):
    await installations.async_save(install(token="xoxe.xoxb-old", bot_refresh_token="xoxe-1-a"))
    bot = await installations.async_find_bot(enterprise_id=None, team_id="T2")
    bot.bot_token, bot.bot_refresh_token = "xoxe.xoxb-new", "xoxe-1-b"
    await installations.async_save_bot(bot)
    found = await installations.async_find_installation(enterprise_id=None, team_id="T2")
    assert (found.bot_token, found.bot_refresh_token) == ("xoxe.xoxb-new", "xoxe-1-b")


async def test_revoking_the_bot_keeps_nothing_usable(installations: HashInstallationStore):
    await installations.async_save(install())
    await installations.async_delete_bot(enterprise_id=None, team_id="T2")
    assert await installations.async_find_bot(enterprise_id=None, team_id="T2") is None
    # A user's installation goes with that user's token revocation, the latest included when it was theirs.
    await installations.async_delete_installation(enterprise_id=None, team_id="T2", user_id="U1")
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2") is None
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2", user_id="U1") is None


async def test_deleting_installations_keeps_the_bot(installations: HashInstallationStore):
    await installations.async_save(install(user="U1"))
    await installations.async_save(install(user="U2"))
    await installations.async_delete_installation(enterprise_id=None, team_id="T2")
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2") is None
    assert await installations.async_find_installation(enterprise_id=None, team_id="T2", user_id="U2") is None
    assert (await installations.async_find_bot(enterprise_id=None, team_id="T2")).bot_token == "xoxb-t2"


async def test_an_org_wide_install_is_filed_under_its_enterprise(installations: HashInstallationStore):
    org = Installation(
        app_id="A1", enterprise_id="E1", team_id=None, bot_token="xoxb-org", user_id="U1", is_enterprise_install=True
    )
    await installations.async_save(org)
    bot = await installations.async_find_bot(enterprise_id="E1", team_id="T7", is_enterprise_install=True)
    assert bot is not None and bot.bot_token == "xoxb-org"
    assert await installations.async_find_bot(enterprise_id="E1", team_id="T7") is None


async def test_a_state_works_once(states: tuple[SignedStateStore, Clock]):
    store, _ = states
    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False


async def test_forged_and_missing_states_are_refused(states: tuple[SignedStateStore, Clock]):
    store, _ = states
    state = await store.async_issue()
    nonce, _, signature = state.partition(".")
    other = MemoryStateStore(secret="another-secret")
    assert await store.async_consume(await other.async_issue()) is False  # signed with another secret
    assert await store.async_consume(f"{nonce}.{'0' * len(signature)}") is False
    assert await store.async_consume(nonce) is False
    assert await store.async_consume("") is False
    assert await store.async_consume(state) is True  # the real one was not spent by the forgeries


async def test_a_state_expires(states: tuple[SignedStateStore, Clock]):
    store, clock = states
    state = await store.async_issue()
    if isinstance(store, RedisStateStore):
        # Redis expires the key itself: the TTL is what we set.
        ttl = await store._redis.ttl(store._key(state.partition(".")[0]))
        assert 590 <= ttl <= 600
        return
    clock.now += 601
    assert await store.async_consume(state) is False
