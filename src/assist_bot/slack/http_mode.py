"""HTTP mode: Slack posts events, slash commands and interactivity to our URL (used
when no app token is set; Socket Mode is slack/socket_mode.py, and slack/transport.py
picks between them).

It lives apart from Socket Mode because a public server has dangers a WebSocket does
not: every request is checked against Slack's signature over its raw bytes before
anything parses it, and slow or too many clients are cut off (header and body
time-outs, a connection cap) so that they cannot hold the process's sockets. It also
serves `/healthz`, `/metrics` (when given a source) and, with OAuth, the install routes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest

from assist_bot.slack import oauth

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


class MetricsSource(Protocol):
    async def handle_metrics(self, request: web.Request) -> web.Response: ...


SIGNATURE_MAX_AGE = 5 * 60  # Slack's advice: refuse requests signed more than five minutes ago
MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KB; this is aiohttp's default, made explicit


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float  # to send the request line and headers (also the idle keep-alive)
    body_timeout: float  # to send the body once the headers are in
    max_connections: int  # open connections beyond this are refused at once


def signature_ok(secret: str, *, timestamp: str, signature: str, body: bytes, now: float) -> bool:
    """Slack's v0 request signature, checked over the raw bytes before anything parses them."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    if age > SIGNATURE_MAX_AGE:
        return False
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v0=" + expected, signature)


_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _Refuse(asyncio.Protocol):
    """Answers a connection over the limit with 503 and closes it, before reading a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSAL)
        transport.close()


Deadline = Callable[[float], asyncio.Timeout]
# Runs a callback after some seconds, as loop.call_later does; the handle cancels it.
CallLater = Callable[[float, Callable[[], Any]], asyncio.Handle]


def loop_call_later(seconds: float, callback: Callable[[], Any]) -> asyncio.Handle:
    return asyncio.get_running_loop().call_later(seconds, callback)


class _HeaderDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: closes it unless its request headers
    are complete within `timeout` seconds of connecting (a slowloris holds a socket open
    by never finishing them). Later requests on a kept-alive connection are bounded by
    aiohttp's keep-alive time-out, which is the same number."""

    def __init__(self, inner: asyncio.Protocol, timeout: float, call_later: CallLater) -> None:
        self._inner = inner
        self._timeout = timeout
        self._call_later = call_later
        self._timer: asyncio.Handle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = self._call_later(self._timeout, transport.close)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:  # the parser takes bare newlines too
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class HttpTransport:
    """`POST /slack/events` (events, slash commands, interactivity) and `GET /healthz`.

    The signature is checked over the raw body before anything parses it: a request
    without signature headers gets 400, a bad signature 401, a signed body that does
    not parse 400 — none does work or leaves a traceback in the log. With OAuth (many
    workspaces), also `GET /slack/install` and `GET /slack/oauth_redirect`.

    `deadline` bounds the body read and `call_later` the header deadline: asyncio's own
    timers unless a test passes ones it controls.
    """

    def __init__(
        self,
        app: AsyncApp,
        *,
        signing_secret: str,
        host: str,
        port: int,
        healthy: Callable[[], Awaitable[bool]],
        limits: HttpLimits,
        oauth_flow: AsyncOAuthFlow | None = None,
        deadline: Deadline = asyncio.timeout,
        call_later: CallLater = loop_call_later,
        metrics: MetricsSource | None = None,
    ) -> None:
        if not signing_secret.strip():
            raise ValueError("HTTP mode needs a signing secret")
        self._bolt = app
        self._secret = signing_secret
        self._oauth_flow = oauth_flow
        self._metrics = metrics
        self._host = host
        self._port = port
        self._healthy = healthy
        self._limits = limits
        self._deadline = deadline
        self._call_later = call_later
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._refusing = False
        self.port: int | None = None

    def web_app(self) -> web.Application:
        web_app = web.Application(client_max_size=MAX_BODY_BYTES)
        web_app.router.add_post(EVENTS_PATH, self._events)
        web_app.router.add_get(HEALTH_PATH, self._health)
        if self._oauth_flow is not None:
            oauth.add_routes(web_app, self._oauth_flow)
        if self._metrics is not None:
            web_app.router.add_get(METRICS_PATH, self._metrics.handle_metrics)
        return web_app

    async def _events(self, request: web.Request) -> web.Response:
        try:
            async with self._deadline(self._limits.body_timeout):
                raw = await request.read()
        except TimeoutError:
            return web.Response(status=408, text="request body too slow")
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            return web.Response(status=400, text="missing Slack signature headers")
        if not signature_ok(self._secret, timestamp=timestamp, signature=signature, body=raw, now=time.time()):
            return web.Response(status=401, text="invalid signature")
        bolt_request = _parse(raw, request)
        if bolt_request is None:
            return web.Response(status=400, text="malformed body")
        bolt_response = await self._bolt.async_dispatch(bolt_request)
        if bolt_response.status == 404:
            # Nothing handles it (an event or shortcut we do not use): acknowledge it anyway,
            # or Slack retries it, and disables the subscription if failures pile up.
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    async def _health(self, _request: web.Request) -> web.Response:
        if await self._healthy():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": "store unavailable"}, status=503)

    async def start(self) -> None:
        # keepalive_timeout is also how long a new connection may take to send its headers;
        # no lingering: a request whose body is not all read (too slow, too big) is closed at once.
        self._runner = web.AppRunner(
            self.web_app(), access_log=None, keepalive_timeout=self._limits.header_timeout, lingering_time=0
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.Protocol:
            if len(server.connections) >= self._limits.max_connections:
                if not self._refusing:
                    log.warning(
                        "HTTP connection limit (%d) reached: refusing new connections", self._limits.max_connections
                    )
                self._refusing = True
                return _Refuse()
            self._refusing = False
            return _HeaderDeadline(server(), self._limits.header_timeout, self._call_later)

        _warn_if_near_open_files_limit(self._limits.max_connections)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, self._host, self._port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening for Slack on http://%s:%s%s", self._host, self.port, EVENTS_PATH)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _warn_if_near_open_files_limit(max_connections: int) -> None:
    # Each connection is a file descriptor; Redis, Slack and OpenAI need theirs too.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and max_connections > soft - 200:
        log.warning(
            "ASSIST_BOT_HTTP_MAX_CONNECTIONS=%d leaves too few of the %d open files this process may have: "
            "lower it or raise the limit (ulimit -n)",
            max_connections,
            soft,
        )


def _parse(raw: bytes, request: web.Request) -> AsyncBoltRequest | None:
    """A signed body as Bolt's request, or None when it does not parse into a Slack payload."""
    try:
        parsed = AsyncBoltRequest(
            body=raw.decode("utf-8"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
    except Exception as exc:  # whatever the parser trips on, the answer is 400, not a traceback
        log.info("malformed signed request refused: %s", type(exc).__name__)
        return None
    if not isinstance(parsed.body, dict):
        log.info("malformed signed request refused: the body is not an object")
        return None
    return parsed
