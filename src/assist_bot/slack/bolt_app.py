"""The Bolt app every Slack surface registers on (`register(app, deps)`), and whom it acts as.

- one workspace (SLACK_BOT_TOKEN): the bot's identity comes from auth.test, asked once at
  start-up (`Identity.check`), so that a refused token fails there, in one line;
- many workspaces (OAuth): Bolt authorises each event with its workspace's installation
  (slack/oauth.py).

What feeds the app events — Socket Mode (slack/socket_mode.py) or HTTP (slack/http_mode.py) —
is chosen in slack/transport.py.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.errors import SettingsError
from assist_bot.slack.oauth import OAuth


class Identity:
    """One workspace: who the bot is, from start-up's auth.test."""

    def __init__(self, client: AsyncWebClient, *, bot_token: str | None) -> None:
        self._client = client
        self._bot_token = bot_token
        self._result: AuthorizeResult | None = None

    async def check(self) -> None:
        """Fail at start-up, in one line, when Slack refuses the bot token (rather than at the first event)."""
        try:
            identity = await self._client.auth_test()
        except SlackApiError as exc:
            raise SettingsError(
                f"SLACK_BOT_TOKEN was refused by Slack ({exc.response.get('error')}): "
                "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page"
            ) from None
        except aiohttp.ClientError as exc:
            raise SettingsError(f"Slack is unreachable at SLACK_API_URL ({type(exc).__name__})") from None
        self._result = AuthorizeResult.from_auth_test_response(bot_token=self._bot_token, auth_test_response=identity)

    @property
    def result(self) -> AuthorizeResult:
        # Requests arrive only once start() has checked the token.
        assert self._result is not None
        return self._result


def build(*, client: AsyncWebClient, oauth: OAuth | None, identity: Identity | None) -> AsyncApp:
    """The app, acting as `identity` (one workspace) or through `oauth` (many): one of the two."""

    async def authorize() -> AuthorizeResult:
        # One workspace: Bolt asks on every request; left to itself it would call auth.test
        # at the first event, before the ack. (A plain function: Bolt passes a function the
        # arguments it names, and would take a method's `self` for one.)
        assert identity is not None
        return identity.result

    bolt_log = logging.getLogger("assist_bot.bolt")
    level = bolt_log.level
    bolt_log.setLevel(logging.ERROR)  # Bolt warns that the token is unused: it is used, through authorize
    try:
        return AsyncApp(
            client=client,
            # Bolt verifies no signature: in HTTP mode the transport checks it over the raw bytes
            # before Bolt parses them (slack/http_mode.py), in Socket Mode the WebSocket we opened
            # with the app token is the proof. "" keeps Bolt from reading the env for a secret.
            signing_secret="",
            request_verification_enabled=False,
            # The message is in the store before Slack gets its ack: if storing fails,
            # Slack sees an error and retries, instead of the message being lost.
            process_before_response=True,
            logger=bolt_log,
            oauth_settings=oauth.settings if oauth else None,
            # Bolt takes an AsyncAuthorize instance here (its hint names only plain functions).
            authorize=oauth.authorize if oauth else authorize,  # type: ignore[arg-type]
        )
    finally:
        bolt_log.setLevel(level)
