"""`InstalledWorkspaces.for_team`: the client a turn, an approval or a name lookup gets for a
workspace — its own token, refreshed (over the wire, at the fake Slack) when about to expire."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.clients import InstalledWorkspaces, NotInstalled
from assist_bot.slack.installations import MemoryInstallationStore

pytestmark = pytest.mark.timeout(20)


def workspaces(slack, store: MemoryInstallationStore) -> InstalledWorkspaces:
    base = AsyncWebClient(base_url=slack.api_url)
    rotator = AsyncTokenRotator(client_id=slack.client_id, client_secret=slack.client_secret, client=base)
    return InstalledWorkspaces(base=base, installations=store, rotator=rotator, rotation_minutes=120)


async def installed_in(slack, store: MemoryInstallationStore, team: str, *, lifetime: int) -> str:
    """Install through the fake's own oauth.v2.access, as the redirect handler does."""
    slack.token_expires_in = lifetime
    code = slack.authorize_code(team)
    issued = await AsyncWebClient(base_url=slack.api_url).oauth_v2_access(
        client_id=slack.client_id, client_secret=slack.client_secret, code=code
    )
    await store.async_save(
        Installation(
            team_id=team,
            bot_token=issued["access_token"],
            bot_refresh_token=issued.get("refresh_token"),
            bot_token_expires_in=issued.get("expires_in"),
            user_id="U1",
        )
    )
    return issued["access_token"]


async def test_each_workspace_gets_its_own_token(slack):
    store = MemoryInstallationStore()
    two = await installed_in(slack, store, "T2", lifetime=12 * 3600)
    three = await installed_in(slack, store, "T3", lifetime=12 * 3600)
    clients = workspaces(slack, store)
    assert (await clients.for_team("T2")).token == two
    assert (await clients.for_team("T3")).token == three
    assert (await (await clients.for_team("T2")).auth_test())["team_id"] == "T2"
    with pytest.raises(NotInstalled):
        await clients.for_team("T4")
    assert slack.calls_to("oauth.v2.access")[2:] == []  # long-lived tokens are not refreshed


async def test_a_token_about_to_expire_is_refreshed_and_saved(slack):
    store = MemoryInstallationStore()
    old = await installed_in(slack, store, "T2", lifetime=60)
    slack.token_expires_in = 12 * 3600
    client = await workspaces(slack, store).for_team("T2")
    assert client.token != old and slack.team_of_token(client.token) == "T2"
    saved = await store.async_find_bot(enterprise_id=None, team_id="T2")
    assert saved.bot_token == client.token
    assert saved.bot_token_expires_at > time.time() + 11 * 3600
    # Refreshed once: the new token is long-lived, so the next call uses it as it is.
    assert (await workspaces(slack, store).for_team("T2")).token == client.token
    grants = [c.args.get("grant_type") for c in slack.calls_to("oauth.v2.access")]
    assert grants == [None, "refresh_token"]


async def test_two_replicas_refreshing_at_once_both_end_with_the_new_token(slack):
    store = MemoryInstallationStore()
    await installed_in(slack, store, "T2", lifetime=60)
    slack.token_expires_in = 12 * 3600
    # Both see the expiring token; the first refresh spends the refresh token, the second is refused
    # by Slack and takes what the first one saved.
    one, two = await asyncio.gather(workspaces(slack, store).for_team("T2"), workspaces(slack, store).for_team("T2"))
    saved = await store.async_find_bot(enterprise_id=None, team_id="T2")
    assert one.token == two.token == saved.bot_token
    refused = [c.error for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert sorted(refused, key=str) == [None, "invalid_refresh_token"]
