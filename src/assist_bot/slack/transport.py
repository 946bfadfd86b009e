"""How Slack reaches the app: Socket Mode (a WebSocket we open) or HTTP
(Slack posts to us). Both feed the same Bolt app."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow

from assist_bot.slack import oauth

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


class SocketModeTransport:
    def __init__(self, app: AsyncApp, *, app_token: str) -> None:
        self._handler = AsyncSocketModeHandler(app, app_token=app_token)

    async def start(self) -> None:
        await self._handler.connect_async()
        log.info("connected to Slack in Socket Mode")

    async def stop(self) -> None:
        await self._handler.close_async()


class HttpTransport:
    """`POST /slack/events` (events, slash commands, interactivity) and `GET /healthz`.

    Bolt verifies the request signature: a bad one gets 401 and does no work. With OAuth (many
    workspaces), also `GET /slack/install` and `GET /slack/oauth_redirect`.
    """

    def __init__(
        self,
        app: AsyncApp,
        *,
        host: str,
        port: int,
        healthy: Callable[[], Awaitable[bool]],
        oauth_flow: AsyncOAuthFlow | None = None,
    ) -> None:
        self._bolt = app
        self._oauth_flow = oauth_flow
        self._host = host
        self._port = port
        self._healthy = healthy
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def web_app(self) -> web.Application:
        web_app = web.Application()
        web_app.router.add_post(EVENTS_PATH, self._events)
        web_app.router.add_get(HEALTH_PATH, self._health)
        if self._oauth_flow is not None:
            oauth.add_routes(web_app, self._oauth_flow)
        return web_app

    async def _events(self, request: web.Request) -> web.Response:
        bolt_response = await self._bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _health(self, _request: web.Request) -> web.Response:
        if await self._healthy():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": "store unavailable"}, status=503)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("listening for Slack on http://%s:%s%s", self._host, self.port, EVENTS_PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
