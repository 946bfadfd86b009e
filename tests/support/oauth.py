"""The OAuth install round trip as a browser does it: GET /slack/install, Slack's authorize page
(the fake hands out a code), GET /slack/oauth_redirect with the state cookie."""

from __future__ import annotations

import aiohttp
from yarl import URL

from tests.fakes.slack import FakeSlack

STATE_COOKIE = "slack-app-oauth-state"
STATE_SECRET = "a-long-random-state-secret"


def oauth_env(slack: FakeSlack, redis_url: str) -> dict:
    return {
        "SLACK_BOT_TOKEN": None,
        "SLACK_CLIENT_ID": slack.client_id,
        "SLACK_CLIENT_SECRET": slack.client_secret,
        "SLACK_STATE_SECRET": STATE_SECRET,
        "redis_url": redis_url,
    }


async def start_install(http: aiohttp.ClientSession, base: str, slack: FakeSlack) -> str:
    """GET /slack/install: a state cookie and a redirect to Slack's authorize page; returns the state."""
    async with http.get(base + "/slack/install", allow_redirects=False) as resp:
        assert resp.status == 302
        location = URL(resp.headers["Location"])
        cookie = resp.headers["Set-Cookie"]
    assert (location.scheme, location.host, location.path) == ("https", "slack.com", "/oauth/v2/authorize")
    assert location.query["client_id"] == slack.client_id
    assert "chat:write" in location.query["scope"].split(",")
    state = location.query["state"]
    assert cookie.startswith(f"{STATE_COOKIE}={state};") and "HttpOnly" in cookie and "Secure" in cookie
    return state


async def finish_install(
    http: aiohttp.ClientSession, base: str, *, code: str | None, state: str | None, cookie: str | None
) -> tuple[int, str]:
    """GET /slack/oauth_redirect as the browser comes back from Slack."""
    params = {k: v for k, v in {"code": code, "state": state}.items() if v is not None}
    headers = {"Cookie": f"{STATE_COOKIE}={cookie}"} if cookie is not None else {}
    async with http.get(base + "/slack/oauth_redirect", params=params, headers=headers) as resp:
        return resp.status, await resp.text()


async def install(base: str, slack: FakeSlack, team: str) -> str:
    """The whole round trip, as a person installing the app in `team`; returns the token Slack issued."""
    before = set(slack.token_teams)
    async with aiohttp.ClientSession() as http:
        state = await start_install(http, base, slack)
        code = slack.authorize_code(team)  # the person approves the install on Slack's page
        status, page = await finish_install(http, base, code=code, state=state, cookie=state)
    assert status == 200, page
    [token] = [t for t in set(slack.token_teams) - before if slack.token_teams[t] == team]
    return token
