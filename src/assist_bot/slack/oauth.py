"""Many workspaces: Slack's OAuth install flow, with Bolt's own `AsyncOAuthFlow`.

- `GET /slack/install` issues a signed state (a cookie too) and redirects to Slack's authorize page;
- `GET /slack/oauth_redirect` checks the state (same browser, signed by us, fresh, unused),
  exchanges the code (`oauth.v2.access`) and stores the installation;
- every event is authorised with its workspace's bot token from the installation store (Bolt
  refreshes it first when token rotation is on), so its listener's `client` is that workspace's;
- `app_uninstalled` / `tokens_revoked` delete that workspace's installation (slack/operating.py, with
  the workspace's data).

Installations and states live in Redis with REDIS_URL (any replica can finish an install another
one started), in memory otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.errors import SettingsError
from assist_bot.manifest import BOT_SCOPES
from assist_bot.settings import Settings
from assist_bot.slack.clients import InstalledWorkspaces
from assist_bot.slack.installations import HashInstallationStore, MemoryInstallationStore, RedisInstallationStore
from assist_bot.slack.oauth_state import MemoryStateStore, RedisStateStore, SignedStateStore

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


@dataclass(frozen=True)
class OAuth:
    """What the composition root needs for many workspaces."""

    installations: HashInstallationStore
    states: SignedStateStore
    settings: AsyncOAuthSettings
    authorize: AsyncInstallationStoreAuthorize
    clients: InstalledWorkspaces

    async def close(self) -> None:
        await self.installations.close()
        await self.states.close()


def build(settings: Settings, *, base: AsyncWebClient) -> OAuth:
    """`base` is the token-less client (SLACK_API_URL, session, retries) every workspace's client copies."""
    if not (settings.slack_client_id and settings.slack_client_secret and settings.slack_state_secret):
        raise SettingsError("SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET are needed for OAuth")
    client_id, client_secret = settings.slack_client_id, settings.slack_client_secret.get_secret_value()
    installations, states = _stores(settings, settings.slack_state_secret.get_secret_value())
    minutes = settings.token_rotation_minutes
    oauth_settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        install_page_rendering_enabled=False,  # straight to Slack's authorize page
        installation_store=installations,
        installation_store_bot_only=True,  # the bot acts with bot tokens only
        token_rotation_expiration_minutes=minutes,
        state_store=states,
        state_expiration_seconds=states.expiration_seconds,
        logger=logging.getLogger("assist_bot.bolt.oauth"),
    )
    # Bolt's default authorize would refresh tokens through slack.com whatever SLACK_API_URL says:
    # this one refreshes through `base`.
    authorize = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("assist_bot.bolt.authorize"),
        installation_store=installations,
        client_id=client_id,
        client_secret=client_secret,
        token_rotation_expiration_minutes=minutes,
        bot_only=True,
        client=base,
        # auth.test once per token and process, not on every event's ack path. Safe with many replicas:
        # the store is read first on every event, so a revoked token or a rotated one is seen at once.
        cache_enabled=True,
    )
    rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret, client=base)
    clients = InstalledWorkspaces(base=base, installations=installations, rotator=rotator, rotation_minutes=minutes)
    return OAuth(installations, states, oauth_settings, authorize, clients)


def _stores(settings: Settings, secret: str) -> tuple[HashInstallationStore, SignedStateStore]:
    if settings.redis_url:
        installations = RedisInstallationStore.from_url(settings.redis_url)
        return installations, RedisStateStore(installations.redis, secret=secret)
    log.warning("REDIS_URL is not set: installations are kept in memory and lost on restart")
    return MemoryInstallationStore(), MemoryStateStore(secret=secret)


def add_routes(web_app: web.Application, flow: AsyncOAuthFlow) -> None:
    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    web_app.router.add_get(INSTALL_PATH, install)
    web_app.router.add_get(REDIRECT_PATH, redirect)
