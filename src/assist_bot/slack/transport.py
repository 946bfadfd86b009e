"""How Slack reaches the app: Socket Mode (a WebSocket we open, slack/socket_mode.py)
or HTTP (Slack posts to us, slack/http_mode.py). Both feed the same Bolt app
(slack/bolt_app.py); `transport_for` picks the one the settings ask for, so that the
composition root names one transport and not the two.

Both are built inside the running event loop (`AssistBot.start`): the Socket Mode
client opens an aiohttp session when it is constructed, which needs the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp

from assist_bot.settings import Settings
from assist_bot.slack.http_mode import CallLater, Deadline, HttpLimits, HttpTransport, MetricsSource, loop_call_later
from assist_bot.slack.socket_mode import SocketModeTransport

Transport = SocketModeTransport | HttpTransport


def transport_for(
    settings: Settings,
    app: AsyncApp,
    *,
    healthy: Callable[[], Awaitable[bool]],
    deadline: Deadline = asyncio.timeout,
    call_later: CallLater = loop_call_later,
    metrics: MetricsSource | None = None,
) -> Transport:
    """Socket Mode when there is an app token, HTTP otherwise (`deadline`, `call_later`,
    `healthy` and `metrics` serve only HTTP)."""
    if settings.slack_app_token is not None:
        return SocketModeTransport(app, app_token=settings.slack_app_token.get_secret_value())
    assert settings.slack_signing_secret is not None  # Settings refuses HTTP mode without one
    return HttpTransport(
        app,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        host=settings.host,
        port=settings.port,
        healthy=healthy,
        limits=HttpLimits(
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            max_connections=settings.http_max_connections,
        ),
        oauth_flow=app.oauth_flow,
        deadline=deadline,
        call_later=call_later,
        metrics=metrics,
    )
