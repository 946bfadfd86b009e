"""Which Slack client (which token) talks to a workspace.

An event's listener gets Bolt's per-event `client`, authorised for the event's workspace. Work
that outlives the event — a turn (maybe on another replica, for a message queued earlier), an
approval prompt, a display-name lookup — asks `SlackClients.for_team(team)` instead:

- one workspace (SLACK_BOT_TOKEN): always the one client;
- many workspaces (OAuth): the workspace's bot token from the installation store, refreshed
  first when token rotation is on and it is about to expire.
"""

from __future__ import annotations

import logging
from typing import Protocol

from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.errors import AssistBotError

log = logging.getLogger(__name__)


class NotInstalled(AssistBotError):
    """No installation (or no bot token) for this workspace: it uninstalled the app, or never installed it."""

    def __init__(self, team: str) -> None:
        super().__init__(f"assist-bot is not installed in workspace {team}")
        self.team = team


class SlackClients(Protocol):
    async def for_team(self, team: str) -> AsyncWebClient: ...


class OneWorkspace:
    """Single-workspace mode: the bot token of SLACK_BOT_TOKEN for everything."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def for_team(self, team: str) -> AsyncWebClient:
        return self._client


class InstalledWorkspaces:
    """Many workspaces: each one's own bot token, read from the installation store on every call
    (no cache: a token rotated or revoked by another replica is seen at once)."""

    def __init__(
        self,
        *,
        base: AsyncWebClient,
        installations: AsyncInstallationStore,
        rotator: AsyncTokenRotator,
        rotation_minutes: int,
    ) -> None:
        self._base = base
        self._installations = installations
        self._rotator = rotator
        self._rotation_minutes = rotation_minutes

    async def for_team(self, team: str) -> AsyncWebClient:
        bot = await self._installations.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            raise NotInstalled(team)
        if bot.bot_refresh_token:  # token rotation is on: refresh a token about to expire
            bot = await self._rotated(team, bot)
        return with_token(self._base, bot.bot_token or "", team=team)

    async def _rotated(self, team: str, bot: Bot) -> Bot:
        try:
            refreshed = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self._rotation_minutes
            )
        except SlackTokenRotationError:
            # Another replica may have spent this refresh token a moment ago: its new token is in the store.
            latest = await self._installations.async_find_bot(enterprise_id=None, team_id=team)
            if latest is None or not latest.bot_token or latest.bot_refresh_token == bot.bot_refresh_token:
                raise
            return latest
        if refreshed is None:
            return bot
        await self._installations.async_save_bot(refreshed)
        log.info("rotated the bot token of workspace %s", team)
        return refreshed


def with_token(base: AsyncWebClient, token: str, *, team: str) -> AsyncWebClient:
    """A client like `base` (API URL, HTTP session, retry handlers) carrying a workspace's token."""
    return AsyncWebClient(
        token=token,
        base_url=base.base_url,
        timeout=base.timeout,
        session=base.session,
        headers=base.headers,
        team_id=team,
        logger=base.logger,
        retry_handlers=list(base.retry_handlers) if base.retry_handlers is not None else None,
    )
