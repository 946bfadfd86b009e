"""Socket Mode: the app opens a WebSocket to Slack and events arrive over it, so no
public URL is needed. This is the default transport (an app token is set); the HTTP
one is slack/http_mode.py, and slack/transport.py picks between them.

It lives apart from HTTP mode because the two share nothing but the Bolt app they
feed: here it is Slack's token check and the acking of envelopes, there a server's
defences against slow or too many clients.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from assist_bot.errors import SettingsError

log = logging.getLogger(__name__)


class _AckingSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's handler leaves an envelope no listener matched (a shortcut, say) un-acked, and
    Slack redelivers it again and again. Here every envelope is acked, handled or not; only
    a failure (5xx: the message could not be stored) is left un-acked, so that Slack retries,
    as in HTTP mode."""

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        start = time.time()
        bolt_resp: BoltResponse = await run_async_bolt_app(self.app, req)
        if bolt_resp.status == 200 or bolt_resp.status >= 500:
            await send_async_response(client, req, bolt_resp, start)
            return
        log.info("Socket Mode envelope of type %s not handled (%s): acknowledged", req.type, bolt_resp.status)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))


class SocketModeTransport:
    def __init__(self, app: AsyncApp, *, app_token: str) -> None:
        # The Socket Mode client opens an aiohttp session when it is constructed, which needs the loop.
        asyncio.get_running_loop()  # fail here, clearly, rather than deep inside aiohttp
        self._app_token = app_token
        self._handler = _AckingSocketModeHandler(app, app_token=app_token)

    async def start(self) -> None:
        # Ask for the WebSocket URL ourselves first: the SDK's connect() retries a refused
        # app token every 10 s forever, with a traceback each time; this fails in one line.
        client = self._handler.client
        try:
            opened = await client.web_client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            await client.close()
            raise SettingsError(
                f"SLACK_APP_TOKEN was refused by Slack ({exc.response.get('error')}): generate an app-level "
                "token (xapp-…) with connections:write under Basic Information → App-Level Tokens"
            ) from None
        except aiohttp.ClientError as exc:
            await client.close()
            raise SettingsError(f"Slack is unreachable at SLACK_API_URL ({type(exc).__name__})") from None
        client.wss_uri = opened["url"]
        await self._handler.connect_async()
        log.info("connected to Slack in Socket Mode")

    async def stop(self) -> None:
        await self._handler.close_async()
