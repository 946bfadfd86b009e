"""A loopback fake of Slack's Web API and Socket Mode that the official slack_sdk talks to unchanged.

Wire formats follow slack_sdk 3.48: the Web API client POSTs to `<base_url><method>` with the token in
`Authorization: Bearer`, sending JSON for chat.* methods and query-string/form fields for others, and the
Socket Mode client fetches a ws:// URL from apps.connections.open, expects a `hello` frame, and acks
envelopes with `{"envelope_id": ..., "payload"?: ...}`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import itertools
import json
import math
import mimetypes
import socket
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

# Timestamps start near wall-clock time (so they look real) and step by 100µs so that bot replies and
# test-built user events share one strictly increasing sequence, like Slack's own ts values.
_TS_BASE_US = int(time.time()) * 1_000_000
_ts_counter = itertools.count(1)


def new_ts() -> str:
    """A unique, increasing Slack-style timestamp such as "1700000000.000100"."""
    us = _TS_BASE_US + next(_ts_counter) * 100
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


@dataclass
class Call:
    method: str
    args: dict
    token: str | None
    at: float  # time.monotonic() when the request arrived
    error: str | None = None  # the error the fake answered with; None when it answered ok
    retry_after: int | None = None  # the Retry-After it announced with that error


@dataclass
class Msg:
    ts: str
    channel: str
    thread_ts: str | None
    text: str  # current text
    history: list[str]  # every text the message had, the first included
    blocks: list | None = None
    user: str | None = None  # the bot user for bot messages; the author for seeded ones
    deleted: bool = False
    metadata: dict | None = None
    # Native streaming (chat.startStream/appendStream/stopStream): every chunk received, in order.
    streaming: bool = False
    started: float = 0.0  # time.monotonic() of chat.startStream
    chunks: list[dict] = field(default_factory=list)
    recipient: tuple[str, str] | None = None  # (recipient_team_id, recipient_user_id)


@dataclass
class Upload:
    """One file the client uploaded with the files_upload_v2 flow (getUploadURLExternal → POST → complete)."""

    file_id: str
    filename: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None


# What files.slack.com answers a browser without a valid session: an HTML page, not JSON. A downloader that
# does not check the body would hand this page to the model as if it were the user's file.
_LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Slack</title></head>'
    "<body><h1>Sign in to your workspace</h1></body></html>"
)
_file_ids = itertools.count(1)


def _new_file_id() -> str:
    return f"F{next(_file_ids):010d}"


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    remaining: int


async def _read_args(request: web.Request) -> dict:
    """Merge query string and body: slack_sdk sends some methods as params, others as JSON or forms."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(dict(await request.post()))
    # Form bodies carry structured fields as JSON strings; decode them so assertions see real objects.
    for key in ("blocks", "attachments", "metadata"):
        if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
            args[key] = json.loads(args[key])
    return args


# What a bot token installed from manifest.yml is granted (a copy, so a test can take one away).
GRANTED_SCOPES = (
    "app_mentions:read,assistant:write,channels:history,channels:read,chat:write,commands,files:read,"
    "files:write,groups:history,groups:read,im:history,reactions:write,users:read"
).split(",")


class FakeSlack:
    def __init__(
        self,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        *,
        app_id: str = "A1",
        users: dict[str, dict] | None = None,
        channels: dict[str, dict] | None = None,
        max_text_len: int = 40_000,
        stream_lifetime: float = 300.0,
    ):
        self.bot_token, self.app_token, self.team_id = bot_token, app_token, team_id
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self.users: dict[str, dict] = dict(users or {})  # user id -> overrides (name, real_name, display_name, ...)
        self.channels: dict[str, dict] = dict(channels or {})  # channel id -> overrides for conversations.info
        self.max_text_len = max_text_len
        # Slack ends a stream after an undocumented time (reported around five minutes); appends after
        # that fail with message_not_in_streaming_state. expire_streams() ends every open stream now.
        self.stream_lifetime = stream_lifetime
        self.streaming_enabled = True  # False: the workspace has no chat.*Stream (unknown_method)
        self.calls: list[Call] = []
        self.responses: list[dict] = []  # messages posted to response_urls
        self.messages: list[Msg] = []  # bot-posted and seeded messages, deleted ones included
        self.home_views: dict[str, dict] = {}  # user id -> the Home tab views.publish gave them
        self.rate_limited: dict[str, int] = defaultdict(int)
        self.acks: dict[str, dict] = {}  # envelope_id -> the frame the client sent back
        self.pushed: dict[str, dict] = {}  # envelope_id -> envelope we sent
        self.socket_frames: list[Any] = []  # every JSON frame clients sent, acks included
        self.socket_connects = 0  # total WebSocket connections accepted (grows on reconnects)
        self.port: int | None = None
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._holds: dict[str, deque[asyncio.Event]] = defaultdict(deque)
        self._limits: dict[str, tuple[int, float]] = {}  # method -> (calls, per window seconds)
        self._channel_limits: dict[str, tuple[float, int]] = {}  # method -> (per second, burst)
        self._channel_buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (method, channel) -> (tokens, at)
        self._drops: dict[str, int] = defaultdict(int)
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._stopping = False
        # File hosting (see add_file): full file objects as files.info returns them, and their bytes.
        self.files: dict[str, dict] = {}
        self.file_contents: dict[str, bytes] = {}
        self.download_tokens: list[str | None] = []  # the bearer token of every download request (None: none)
        self.bytes_sent: dict[str, int] = defaultdict(int)  # file id -> bytes written by file_slow_body
        self.uploads: list[Upload] = []
        self._file_modes: dict[str, tuple] = {}  # file id -> ("redirect", url) / ("html",) / ("slow", total, chunk)
        self._pending_uploads: dict[str, dict] = {}  # file id -> {"filename", "length", "content"}
        self.downloads_in_flight = 0  # held downloads being served now (see file_hold)
        self.max_downloads_in_flight = 0
        # Many workspaces (see authorize_code): the app's OAuth credentials, and every other bot token
        # oauth.v2.access issued, each valid for its own workspace only.
        self.client_id, self.client_secret = "111.222", "fake-client-secret"
        self.workspaces: dict[str, dict] = {
            team_id: {"bot_user_id": bot_user_id, "bot_id": bot_id, "name": "Fake Team"}
        }
        self.token_teams: dict[str, str] = {}  # issued bot token -> team id
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> team id (a refresh spends it)
        self.oauth_codes: dict[str, str] = {}  # code Slack's authorize page handed the browser -> team id
        self.token_expires_in: int | None = None  # set: token rotation is on (expires_in + refresh_token)
        self._token_now: str | None = None  # the token of the call a handler is answering
        # Scopes the bot token was granted: Slack names them in every Web API answer's x-oauth-scopes header.
        self.granted_scopes: list[str] = list(GRANTED_SCOPES)

    # ---------------------------------------------------------------- lifecycle
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def base_url(self) -> str:
        """Where this fake hosts files and upload URLs (the stand-in for files.slack.com)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeSlack:
        # Uploads of a few MB must fit: aiohttp's default request cap is 1 MiB.
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_get("/files-pri/{key}/download/{name}", self._handle_file_download)
        app.router.add_get("/files-pri/{key}/{name}", self._handle_file_download)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        # A short shutdown_timeout keeps stop() quick even if a client keeps a connection open.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        # Binding the socket ourselves is the race-free way to learn the free port the OS picked.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._stopping = False
        return self

    async def stop(self) -> None:
        self._stopping = True  # refuse reconnects racing with shutdown
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ---------------------------------------------------------------- scripting & inspection
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def fail_next(
        self,
        method: str,
        *,
        error: str = "ratelimited",
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` authorised calls to `method` with `{"ok": false, "error": error}`."""
        retry_after = 1 if status == 429 and retry_after is None else retry_after
        self._failures[method].append(_Failure(error, status, retry_after, times))

    def drop_next(self, method: str, *, times: int = 1) -> None:
        """Close the connection instead of answering the next `times` calls to `method`."""
        self._drops[method] += times

    def hold_next(self, method: str) -> asyncio.Event:
        """The next call to `method` is recorded, then left unanswered until the returned event is set
        (a slow answer, without sleeping)."""
        gate = asyncio.Event()
        self._holds[method].append(gate)
        return gate

    def rate_limit(self, method: str, per_minute: int, *, window: float = 60.0) -> None:
        """Sliding window of `per_minute` calls per `window` seconds (a minute unless told); calls
        beyond it get HTTP 429 + Retry-After (when the window has room again) like Slack's tiers."""
        self._limits[method] = (per_minute, window)

    def rate_limit_per_channel(self, method: str, *, per_second: float = 1.0, burst: int = 4) -> None:
        """Slack's special limit of chat.postMessage: about `per_second` calls per channel, with
        bursts of `burst` (a token bucket per channel); beyond it HTTP 429 + Retry-After."""
        self._channel_limits[method] = (per_second, burst)

    def expire_streams(self) -> None:
        """End every open stream now, as Slack does when one outlives its lifetime."""
        for msg in self.messages:
            msg.streaming = False

    def statuses(self, channel: str, thread_ts: str) -> list[dict]:
        """Every assistant.threads.setStatus call for a thread, in order."""
        return [
            c.args
            for c in self.calls_to("assistant.threads.setStatus")
            if c.args.get("channel_id") == channel and c.args.get("thread_ts") == thread_ts and c.error is None
        ]

    def response_url(self) -> str:
        """A fresh response_url for a slash command or interaction payload (as hooks.slack.com gives)."""
        return f"{self.base_url}/response/{uuid.uuid4().hex}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        # Like hooks.slack.com: the JSON message posted to a response_url, no token involved.
        self.responses.append(
            {
                "key": request.match_info["key"],
                **(await request.json()),
                "authorization": request.headers.get("Authorization"),
            }
        )
        return web.Response(text="ok")

    def bot_messages(self, channel: str | None = None, *, include_deleted: bool = False) -> list[Msg]:
        return [
            m
            for m in self.messages
            if m.user == self.bot_user_id
            and (channel is None or m.channel == channel)
            and (include_deleted or not m.deleted)
        ]

    def thread_replies(self, channel: str, thread_ts: str) -> list[Msg]:
        return [m for m in self.bot_messages(channel) if m.thread_ts == thread_ts]

    def seed_message(
        self, channel: str, user: str, text: str, ts: str | None = None, thread_ts: str | None = None
    ) -> Msg:
        """Store a human message so conversations.replies can return it alongside the bot's."""
        msg = Msg(ts or new_ts(), channel, thread_ts, text, [text], user=user)
        self.messages.append(msg)
        return msg

    # ---------------------------------------------------------------- Web API
    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        # Slack still accepts a `token` field when there is no header, so fall back to it.
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else args.pop("token", None)
        call = Call(method, args, token, time.monotonic())
        self.calls.append(call)
        if method == "oauth.v2.access":  # the app's client id and secret (HTTP Basic), no token
            return self._oauth_v2_access(call, auth)
        if method == "apps.connections.open" and token != self.app_token:
            return self._error(call, "invalid_auth")
        if method != "apps.connections.open" and self.team_of_token(token) is None:
            return self._error(call, "invalid_auth")
        self._token_now = token
        if self._drops.get(method):
            # A connection that dies mid-call: the client gets no answer at all.
            self._drops[method] -= 1
            call.error = "connection_dropped"
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if holds := self._holds.get(method):
            await holds.popleft().wait()  # see hold_next
        if (wait := self._over_limit(method)) is not None or (wait := self._over_channel_limit(method, args)):
            self.rate_limited[method] += 1
            return self._error(call, "ratelimited", status=429, retry_after=wait)
        if queue := self._failures.get(method):
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return self._error(call, failure.error, status=failure.status, retry_after=failure.retry_after)
        handler: Callable[[dict], dict] | None = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            # As Slack answers a method it does not have: a misspelt method fails the test that calls it.
            return self._error(call, "unknown_method")
        result = handler(args)
        if "error" in result:
            return self._error(call, result["error"], retry_after=result.get("retry_after"))
        return web.json_response({"ok": True, **result}, headers={"x-oauth-scopes": ",".join(self.granted_scopes)})

    def _error(self, call: Call, error: str, *, status: int = 200, retry_after: int | None = None) -> web.Response:
        call.error, call.retry_after = error, retry_after
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)

    def _over_limit(self, method: str) -> int | None:
        per_minute, seconds = self._limits.get(method, (0, 60.0))
        if not per_minute:
            return None
        now, window = time.monotonic(), self._windows[method]
        while window and now - window[0] >= seconds:
            window.popleft()
        if len(window) >= per_minute:
            return max(1, math.ceil(seconds - (now - window[0])))
        window.append(now)
        return None

    def _over_channel_limit(self, method: str, args: dict) -> int | None:
        if method not in self._channel_limits:
            return None
        rate, burst = self._channel_limits[method]
        key, now = (method, str(args.get("channel"))), time.monotonic()
        tokens, at = self._channel_buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        if tokens < 1:
            self._channel_buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rate))
        self._channel_buckets[key] = (tokens - 1, now)
        return None

    def _find(self, channel: str | None, ts: str | None) -> Msg | None:
        return next((m for m in self.messages if m.ts == ts and m.channel == channel and not m.deleted), None)

    def _message_json(self, m: Msg) -> dict:
        out: dict[str, Any] = {"type": "message", "text": m.text, "user": m.user, "ts": m.ts, "team": self.team_id}
        if m.user == self.bot_user_id:
            out.update(bot_id=self.bot_id, app_id=self.app_id)
        optional = {"blocks": m.blocks, "thread_ts": m.thread_ts, "metadata": m.metadata}
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    def _m_auth_test(self, a: dict) -> dict:
        team = self.team_of_token(self._token_now) or self.team_id  # each token answers for its own workspace
        workspace = self.workspaces[team]
        return {
            "url": f"https://fake-{team.lower()}.slack.com/",
            "team": workspace["name"],
            "user": "assist-bot",
            "team_id": team,
            "user_id": workspace["bot_user_id"],
            "bot_id": workspace["bot_id"],
            "is_enterprise_install": False,
        }

    # ---------------------------------------------------------------- many workspaces (OAuth)
    def team_of_token(self, token: str | None) -> str | None:
        """The workspace a bot token works in, or None for a token Slack would refuse."""
        if token is not None and token == self.bot_token:
            return self.team_id
        return self.token_teams.get(token or "")

    def authorize_code(
        self, team_id: str, *, name: str = "Second Team", bot_user_id: str = "UBOT2", bot_id: str = "BBOT2"
    ) -> str:
        """What Slack's authorize page gives the browser when someone approves the install in `team_id`:
        a one-time code for the redirect URL, which oauth.v2.access exchanges for that workspace's token."""
        self.workspaces.setdefault(team_id, {"bot_user_id": bot_user_id, "bot_id": bot_id, "name": name})
        code = f"code-{uuid.uuid4().hex[:12]}"
        self.oauth_codes[code] = team_id
        return code

    def revoke_tokens(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working (Slack then sends app_uninstalled)."""
        for token in [t for t, team in self.token_teams.items() if team == team_id]:
            del self.token_teams[token]

    def _oauth_v2_access(self, call: Call, auth: str) -> web.Response:
        """oauth.v2.access as documented (docs.slack.dev/reference/methods/oauth.v2.access): a code from the
        authorize page, or (token rotation) grant_type=refresh_token, for the app's own client id and secret."""
        try:
            client_id, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            client_id, secret = "", ""
        client_id = client_id or call.args.get("client_id", "")
        secret = secret or call.args.get("client_secret", "")
        if client_id != self.client_id:
            return self._error(call, "invalid_client_id")
        if secret != self.client_secret:
            return self._error(call, "bad_client_secret")
        if call.args.get("grant_type") == "refresh_token":
            team = self.refresh_tokens.pop(call.args.get("refresh_token") or "", None)
            if team is None:
                return self._error(call, "invalid_refresh_token")
        else:
            team = self.oauth_codes.pop(call.args.get("code") or "", None)
            if team is None:
                return self._error(call, "invalid_code")
        return web.json_response({"ok": True, **self._issue_token(team)})

    def _issue_token(self, team: str) -> dict:
        workspace = self.workspaces[team]
        rotating = self.token_expires_in is not None
        token = f"{'xoxe.' if rotating else ''}xoxb-{team}-{uuid.uuid4().hex[:16]}"
        self.token_teams[token] = team
        issued: dict[str, Any] = {
            "app_id": self.app_id,
            "authed_user": {"id": "U1"},
            "scope": "app_mentions:read,chat:write,files:read,users:read",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": workspace["bot_user_id"],
            "team": {"id": team, "name": workspace["name"]},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if rotating:
            refresh = f"xoxe-1-{uuid.uuid4().hex[:16]}"
            self.refresh_tokens[refresh] = team
            issued.update(expires_in=self.token_expires_in, refresh_token=refresh)
        return issued

    def _m_chat_postMessage(self, a: dict) -> dict:
        if not a.get("channel"):
            return {"error": "channel_not_found"}
        text = a.get("text") or ""
        if not text and not a.get("blocks") and not a.get("attachments"):
            return {"error": "no_text"}
        if len(text) > self.max_text_len:
            return {"error": "msg_too_long"}
        msg = Msg(
            new_ts(),
            a["channel"],
            a.get("thread_ts") or None,
            text,
            [text],
            blocks=a.get("blocks"),
            user=self.bot_user_id,
            metadata=a.get("metadata"),
        )
        self.messages.append(msg)
        return {"channel": msg.channel, "ts": msg.ts, "message": self._message_json(msg)}

    def _m_chat_update(self, a: dict) -> dict:
        msg = self._find(a.get("channel"), a.get("ts"))
        if msg is None:
            return {"error": "message_not_found"}
        if "text" in a:
            if len(a["text"] or "") > self.max_text_len:
                return {"error": "msg_too_long"}
            msg.text = a["text"] or ""
            msg.history.append(msg.text)
        if "blocks" in a:
            msg.blocks = a["blocks"]
        return {"channel": msg.channel, "ts": msg.ts, "text": msg.text, "message": self._message_json(msg)}

    def _m_chat_delete(self, a: dict) -> dict:
        msg = self._find(a.get("channel"), a.get("ts"))
        if msg is None:
            return {"error": "message_not_found"}
        msg.deleted = True
        return {"channel": msg.channel, "ts": msg.ts}

    def _m_chat_postEphemeral(self, a: dict) -> dict:
        # Slack's own checks of the arguments every ephemeral message needs.
        if not a.get("channel"):
            return {"error": "channel_not_found"}
        if not a.get("user"):
            return {"error": "user_not_found"}
        if not (a.get("text") or a.get("blocks") or a.get("attachments")):
            return {"error": "no_text"}
        return {"message_ts": new_ts()}

    # -- native streaming: chat.startStream / chat.appendStream / chat.stopStream ------------------
    # Markdown in (`markdown_text`, or `chunks` of type markdown_text / task_update / plan_update); in
    # channels Slack requires the recipient; a stream past its lifetime answers
    # message_not_in_streaming_state; an unknown method where the workspace has no streaming.
    def _stream_text(self, msg: Msg, a: dict) -> str | None:
        """Apply markdown_text and chunks to a streaming message; an error name when they are invalid."""
        text = a.get("markdown_text") or ""
        chunks = a.get("chunks") or []
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        if len(text) > 12_000 or any(len(c.get("text") or "") > 12_000 for c in chunks):
            return "msg_too_long"
        for chunk in chunks:
            if chunk.get("type") not in ("markdown_text", "task_update", "plan_update", "blocks"):
                return "invalid_chunks"
            if chunk["type"] == "task_update" and chunk.get("status") not in (
                "pending",
                "in_progress",
                "complete",
                "error",
            ):
                return "invalid_chunks"
        if text:
            chunks = [{"type": "markdown_text", "text": text}, *chunks]
        msg.chunks.extend(chunks)
        added = "".join(c.get("text", "") for c in chunks if c["type"] == "markdown_text")
        if added:
            msg.text += added
            msg.history.append(msg.text)
        return None

    def _open_stream(self, a: dict) -> Msg | dict:
        msg = self._find(a.get("channel"), a.get("ts"))
        if msg is None:
            return {"error": "message_not_found"}
        if msg.streaming and time.monotonic() - msg.started > self.stream_lifetime:
            msg.streaming = False
        if not msg.streaming:
            return {"error": "message_not_in_streaming_state"}
        return msg

    def _m_chat_startStream(self, a: dict) -> dict:
        if not self.streaming_enabled:
            return {"error": "unknown_method"}
        channel, thread_ts = a.get("channel"), a.get("thread_ts")
        if not channel or not thread_ts:
            return {"error": "invalid_arguments"}
        if not channel.startswith("D"):
            if not a.get("recipient_user_id"):
                return {"error": "missing_recipient_user_id"}
            if not a.get("recipient_team_id"):
                return {"error": "missing_recipient_team_id"}
        msg = Msg(new_ts(), channel, thread_ts, "", [], user=self.bot_user_id, streaming=True)
        msg.started = time.monotonic()
        if a.get("recipient_user_id"):
            msg.recipient = (a.get("recipient_team_id") or "", a["recipient_user_id"])
        if error := self._stream_text(msg, a):
            return {"error": error}
        self.messages.append(msg)
        return {"channel": channel, "ts": msg.ts}

    def _m_chat_appendStream(self, a: dict) -> dict:
        if not self.streaming_enabled:
            return {"error": "unknown_method"}
        if not a.get("markdown_text") and not a.get("chunks"):
            return {"error": "invalid_arguments"}
        msg = self._open_stream(a)
        if isinstance(msg, dict):
            return msg
        if error := self._stream_text(msg, a):
            return {"error": error}
        return {"channel": msg.channel, "ts": msg.ts}

    def _m_chat_stopStream(self, a: dict) -> dict:
        if not self.streaming_enabled:
            return {"error": "unknown_method"}
        msg = self._open_stream(a)
        if isinstance(msg, dict):
            return msg
        if error := self._stream_text(msg, a):
            return {"error": error}
        if a.get("blocks"):
            msg.blocks = a["blocks"]
        msg.streaming = False
        return {"channel": msg.channel, "ts": msg.ts, "message": self._message_json(msg)}

    def _m_assistant_threads_setStatus(self, a: dict) -> dict:
        if not a.get("channel_id") or not a.get("thread_ts") or "status" not in a:
            return {"error": "invalid_arguments"}
        loading = a.get("loading_messages")
        if isinstance(loading, str):
            loading = json.loads(loading)
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            return {"error": "invalid_arguments"}
        return {}

    def _m_reactions_add(self, a: dict) -> dict:
        if not a.get("channel") or not a.get("timestamp") or not a.get("name"):
            return {"error": "invalid_arguments"}
        return {}

    def _m_reactions_remove(self, a: dict) -> dict:
        return self._m_reactions_add(a)

    def _m_views_open(self, a: dict) -> dict:
        view = a.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not a.get("trigger_id") or not isinstance(view, dict) or "type" not in view:
            return {"error": "invalid_arguments"}
        return {"view": {"id": f"V{uuid.uuid4().hex[:10].upper()}", **view}}

    def _m_users_info(self, a: dict) -> dict:
        uid = a.get("user") or ""
        o, is_bot = self.users.get(uid, {}), uid == self.bot_user_id
        name = o.get("name", "assist-bot" if is_bot else f"user-{uid}")
        real, display = o.get("real_name", name), o.get("display_name", name)
        user = {
            "id": uid,
            "team_id": self.team_id,
            "name": name,
            "real_name": real,
            "deleted": False,
            "is_bot": is_bot,
            "tz": o.get("tz", "Europe/London"),
            "profile": {
                "display_name": display,
                "display_name_normalized": display,
                "real_name": real,
                "real_name_normalized": real,
            },
        }
        user.update({k: v for k, v in o.items() if k not in ("name", "real_name", "display_name")})
        return {"user": user}

    def _m_conversations_info(self, a: dict) -> dict:
        cid = a.get("channel") or ""
        chan = {
            "id": cid,
            "name": f"chan-{cid}",
            "is_channel": cid.startswith("C"),
            "is_group": cid.startswith("G"),
            "is_im": cid.startswith("D"),
            "is_mpim": False,
            "is_private": not cid.startswith("C"),
            "is_member": True,
            "is_archived": False,
        }
        chan.update(self.channels.get(cid, {}))
        for part in ("topic", "purpose"):  # Slack's shape: {"value", "creator", "last_set"}
            value = chan.get(part)
            chan[part] = value if isinstance(value, dict) else {"value": value or "", "creator": "", "last_set": 0}
        return {"channel": chan}

    def _readable(self, channel: str) -> str | None:
        """The error Slack gives a bot reading a conversation it is not in (channels[cid]["is_member"] False)."""
        if self.channels.get(channel, {}).get("is_member", True):
            return None
        return "not_in_channel" if channel.startswith("C") else "channel_not_found"

    def _m_conversations_replies(self, a: dict) -> dict:
        """Cursor-paginated like Slack: the root first, then replies oldest first; `limit` per page (default
        1000); a continuation page (cursor) leaves the root out."""
        channel, root = a.get("channel") or "", a.get("ts")
        if error := self._readable(channel):
            return {"error": error}
        msgs = [
            m for m in self.messages if m.channel == channel and not m.deleted and (m.ts == root or m.thread_ts == root)
        ]
        if not any(m.ts == root for m in msgs):
            return {"error": "thread_not_found"}
        msgs.sort(key=lambda m: (m.ts != root, float(m.ts)))
        start = int(a.get("cursor") or 0)
        limit = max(1, min(int(a.get("limit") or 1000), 1000))
        page, more = msgs[start : start + limit], start + limit < len(msgs)
        if start:
            page = [m for m in page if m.ts != root]
        return {
            "messages": [self._message_json(m) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_conversations_history(self, a: dict) -> dict:
        """Top-level messages of a channel, newest first (replies stay in their threads)."""
        channel = a.get("channel") or ""
        if error := self._readable(channel):
            return {"error": error}
        msgs = [m for m in self.messages if m.channel == channel and not m.deleted and m.thread_ts in (None, m.ts)]
        msgs.sort(key=lambda m: float(m.ts), reverse=True)
        limit = max(1, min(int(a.get("limit") or 100), 999))
        return {"messages": [self._message_json(m) for m in msgs[:limit]], "has_more": len(msgs) > limit}

    def _m_views_publish(self, a: dict) -> dict:
        view = json.loads(a["view"]) if isinstance(a.get("view"), str) else a.get("view")
        if not a.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
            return {"error": "invalid_arguments"}
        if len(view.get("blocks") or []) > 100:
            return {"error": "invalid_blocks"}
        self.home_views[a["user_id"]] = view
        return {"view": {"id": f"V{uuid.uuid4().hex[:10].upper()}", "team_id": self.team_id, **view}}

    def _m_assistant_threads_setSuggestedPrompts(self, a: dict) -> dict:
        prompts = a.get("prompts")
        if not a.get("channel_id") or not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            return {"error": "invalid_arguments"}
        if any(not p.get("title") or not p.get("message") for p in prompts):
            return {"error": "invalid_arguments"}
        return {}

    def _m_assistant_threads_setTitle(self, a: dict) -> dict:
        if not a.get("channel_id") or not a.get("thread_ts") or not a.get("title"):
            return {"error": "invalid_arguments"}
        return {}

    def _m_apps_connections_open(self, a: dict) -> dict:
        # A fresh ticket per call, as Slack hands out a new URL each time.
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4().hex}&app_id={self.app_id}"}

    # ---------------------------------------------------------------- file hosting
    def add_file(
        self,
        *,
        name: str,
        content: bytes,
        mimetype: str,
        filetype: str,
        channel: str | None = None,
        user: str = "U1",
        file_access: str | None = None,
        size: int | None = None,
        team: str | None = None,
    ) -> dict:
        """Host `content` and return the file object an event would carry.

        `size` overrides the declared size (to test a lying or oversize declaration). With
        file_access="check_file_info" the result is the minimal stub Slack sends for such files (no name,
        no URLs), so only a client that calls files.info can download it; files.info returns the full object.
        """
        fid = self._host_file(
            name=name,
            title=name,
            content=content,
            mimetype=mimetype,
            filetype=filetype,
            channel=channel,
            user=user,
            size=size,
            team=team,
        )
        if file_access == "check_file_info":
            full = self.files[fid]
            return {
                "id": fid,
                "mode": "file_access",
                "file_access": file_access,
                "created": full["created"],
                "timestamp": full["timestamp"],
                "user": user,
            }
        out = dict(self.files[fid])
        return {**out, "file_access": file_access} if file_access else out

    def file_redirect_to(self, file_id: str, url: str) -> None:
        """Authorised downloads of this file answer 302 Location: url."""
        self._file_modes[file_id] = ("redirect", url)

    def file_serve_html(self, file_id: str) -> None:
        """Authorised downloads answer 200 text/html with a login page, as Slack does for a bad scope."""
        self._file_modes[file_id] = ("html",)

    def file_slow_body(self, file_id: str, total_bytes: int, chunk: int = 64 * 1024) -> None:
        """Authorised downloads stream `total_bytes` (no Content-Length), generated chunk by chunk so a huge
        total costs nothing; `bytes_sent[file_id]` counts what was actually written."""
        self._file_modes[file_id] = ("slow", total_bytes, chunk)

    def file_hold(self, file_id: str) -> asyncio.Event:
        """Authorised downloads of this file wait until the returned event is set, so a test can see how
        many downloads a client runs at once (`downloads_in_flight`, `max_downloads_in_flight`)."""
        gate = asyncio.Event()
        self._file_modes[file_id] = ("hold", gate)
        return gate

    async def _serve_held(self, fid: str, gate: asyncio.Event) -> web.Response:
        self.downloads_in_flight += 1
        self.max_downloads_in_flight = max(self.max_downloads_in_flight, self.downloads_in_flight)
        try:
            await gate.wait()
        finally:
            self.downloads_in_flight -= 1
        return web.Response(body=self.file_contents[fid], content_type=self.files[fid]["mimetype"])

    def _host_file(
        self,
        *,
        name: str,
        title: str,
        content: bytes,
        mimetype: str,
        filetype: str,
        channel: str | None,
        user: str,
        size: int | None,
        fid: str | None = None,
        team: str | None = None,
    ) -> str:
        if self.port is None:
            raise RuntimeError("start() the fake before adding files: their URLs name its port")
        fid, now = fid or _new_file_id(), int(time.time())
        team = team or self.team_id  # the workspace whose token opens it
        key, quoted = f"{team}-{fid}", quote(name, safe="")  # one path segment, as Slack encodes it
        self.file_contents[fid] = content
        self.files[fid] = {
            "id": fid,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": title,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": team,
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "external_type": "",
            "is_public": bool(channel and channel.startswith("C")),
            "public_url_shared": False,
            "size": len(content) if size is None else size,
            "url_private": f"{self.base_url}/files-pri/{key}/{quoted}",
            "url_private_download": f"{self.base_url}/files-pri/{key}/download/{quoted}",
            "permalink": f"https://fake-{team.lower()}.slack.com/files/{user}/{fid}/{quoted}",
            "channels": [channel] if channel and channel[0] == "C" else [],
            "groups": [channel] if channel and channel[0] == "G" else [],
            "ims": [channel] if channel and channel[0] == "D" else [],
        }
        return fid

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else None
        self.download_tokens.append(token)
        token_team = self.team_of_token(token)
        if token_team is None:
            return web.Response(status=403, text=_LOGIN_PAGE, content_type="text/html")
        team, _, fid = request.match_info["key"].partition("-")
        if team != token_team or fid not in self.files:  # a token opens its own workspace's files only
            return web.Response(status=404, text=_LOGIN_PAGE, content_type="text/html")
        mode = self._file_modes.get(fid, ("plain",))
        if mode[0] == "redirect":
            return web.Response(status=302, headers={"Location": mode[1]})
        if mode[0] == "html":
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        if mode[0] == "slow":
            return await self._stream_unbounded(request, fid, mode[1], mode[2])
        if mode[0] == "hold":
            return await self._serve_held(fid, mode[1])
        return web.Response(body=self.file_contents[fid], content_type=self.files[fid]["mimetype"])

    async def _stream_unbounded(self, request: web.Request, fid: str, total: int, chunk: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": self.files[fid]["mimetype"]})
        await resp.prepare(request)
        block = b"x" * chunk
        try:
            while self.bytes_sent[fid] < total:
                if request.transport is None or request.transport.is_closing():
                    return resp  # the client hung up: stop generating
                n = min(chunk, total - self.bytes_sent[fid])
                await resp.write(block[:n])
                self.bytes_sent[fid] += n
                await asyncio.sleep(0)  # let the client's reads interleave with our writes
            await resp.write_eof()
        except ConnectionError:
            pass  # the client closed the connection mid-body, which is what a capped download does
        return resp

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL of files.getUploadURLExternal: raw bytes or a multipart body with one file."""
        pending = self._pending_uploads.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            field = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = field.file.read() if field is not None else b""
        else:
            content = await request.read()
        pending["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    def _m_files_info(self, a: dict) -> dict:
        f = self.files.get(a.get("file") or "")
        if f is None:
            return {"error": "file_not_found"}
        return {"file": dict(f), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _m_files_delete(self, a: dict) -> dict:
        fid = a.get("file") or ""
        if fid not in self.files:
            return {"error": "file_not_found"}
        del self.files[fid]
        self.file_contents.pop(fid, None)
        return {}

    def _m_files_getUploadURLExternal(self, a: dict) -> dict:
        if not a.get("filename") or not str(a.get("length") or "").isdigit():
            return {"error": "invalid_arguments"}
        fid = _new_file_id()
        self._pending_uploads[fid] = {"filename": a["filename"], "length": int(a["length"]), "content": None}
        return {"upload_url": f"{self.base_url}/upload/v1/{fid}", "file_id": fid}

    def _m_files_completeUploadExternal(self, a: dict) -> dict:
        """Hosts each uploaded file and records an Upload; no chat message is stored for it."""
        files = json.loads(a["files"]) if isinstance(a.get("files"), str) else a.get("files")
        if not files or any(f.get("id") not in self._pending_uploads for f in files):
            return {"error": "file_not_found"}
        channel, thread_ts = a.get("channel_id") or None, a.get("thread_ts") or None
        out = []
        for f in files:
            pending = self._pending_uploads.pop(f["id"])
            name, content = pending["filename"], pending["content"] or b""
            title = f.get("title") or name
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self._host_file(
                name=name,
                title=title,
                content=content,
                mimetype=mimetype,
                filetype=name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
                channel=channel,
                user=self.bot_user_id,
                size=None,
                fid=f["id"],
            )
            self.uploads.append(Upload(f["id"], name, title, content, channel, thread_ts))
            out.append({"id": f["id"], "title": title})
        return {"files": out}

    # ---------------------------------------------------------------- Socket Mode
    @property
    def open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return web.Response(status=503)
        # autoping answers the SDK's "sdk-ping-pong:<t>" pings with matching pongs, which keeps it from
        # declaring the session stale.
        ws = web.WebSocketResponse(timeout=2.0, autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connects += 1
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self.open_sockets),
                    "debug_info": {"host": "fake-applink", "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                self.socket_frames.append(data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.acks[data["envelope_id"]] = data
        finally:
            self._sockets.remove(ws)
        return ws

    async def wait_socket_connected(self, seconds: float = 10) -> None:
        await wait_for(lambda: self.open_sockets, seconds, message="a Socket Mode client to connect")

    async def _send_envelope(self, envelope: dict) -> str:
        await self.wait_socket_connected()
        # Slack delivers each envelope to one connection; the newest is the one most likely alive.
        await self.open_sockets[-1].send_json(envelope)
        self.pushed[envelope["envelope_id"]] = envelope
        return envelope["envelope_id"]

    async def push_socket_event(self, body: dict, *, retry_attempt: int = 0, retry_reason: str | None = None) -> str:
        """Deliver an Events API body (see event_body()); returns the envelope_id to wait_ack() on."""
        return await self._send_envelope(
            {
                "envelope_id": str(uuid.uuid4()),
                "payload": body,
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": retry_reason if retry_reason is not None else ("timeout" if retry_attempt else ""),
            }
        )

    async def push_socket_payload(self, type_: str, payload: dict) -> str:
        """Deliver a "slash_commands" or "interactive" payload, which may be answered in the ack."""
        return await self._send_envelope(
            {"envelope_id": str(uuid.uuid4()), "payload": payload, "type": type_, "accepts_response_payload": True}
        )

    async def wait_ack(self, envelope_id: str, seconds: float = 10) -> dict:
        await wait_for(lambda: envelope_id in self.acks, seconds, message=f"an ack for envelope {envelope_id}")
        return self.acks[envelope_id]

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Ask clients to reconnect, as Slack does periodically ({"type": "disconnect"})."""
        for ws in self.open_sockets:
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-applink"}})

    async def drop_sockets(self) -> None:
        """Close every connection without warning, like a network blip."""
        for ws in self.open_sockets:
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)


# -------------------------------------------------------------------- payload builders
def event_body(
    event: dict, *, team_id: str = "T1", event_id: str | None = None, api_app_id: str = "A1", bot_user_id: str = "UBOT"
) -> dict:
    """A full `event_callback` body, as Slack wraps every Events API event."""
    return {
        "token": "fake-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }


def mention(
    channel: str,
    user: str,
    text: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    *,
    bot_user_id: str = "UBOT",
    team: str = "T1",
) -> dict:
    ts = ts or new_ts()
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{bot_user_id}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": team,
        "client_msg_id": str(uuid.uuid4()),
    }
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def message(
    channel: str,
    user: str | None,
    text: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    subtype: str | None = None,
    bot_id: str | None = None,
    *,
    team: str = "T1",
) -> dict:
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": team,
    }
    optional = {
        "user": user,
        "thread_ts": thread_ts,
        "subtype": subtype,
        "bot_id": bot_id,
        # only human-typed messages carry a client_msg_id
        "client_msg_id": str(uuid.uuid4()) if subtype is None and bot_id is None else None,
    }
    event.update({k: v for k, v in optional.items() if v})
    return event


def file_share_message(
    channel: str,
    user: str,
    text: str,
    files: list[dict],
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    *,
    team: str = "T1",
) -> dict:
    """A `message` event with subtype "file_share": a user shared `files` (objects from FakeSlack.add_file)."""
    event = message(channel, user, text, ts, thread_ts, channel_type, subtype="file_share", team=team)
    event.update(files=files, upload=True, display_as_bot=False)
    return event


def file_deleted(file_id: str, *, channel_ids: list[str] | None = None) -> dict:
    """A `file_deleted` event (wrap it with event_body())."""
    event: dict[str, Any] = {"type": "file_deleted", "file_id": file_id, "event_ts": new_ts()}
    return {**event, "channel_ids": channel_ids} if channel_ids is not None else event


# -------------------------------------------------------------------- HTTP-mode helpers
async def post_signed(
    url: str,
    body: dict | str,
    *,
    signing_secret: str,
    retry_num: int | None = None,
    bad_signature: bool = False,
    content_type: str = "application/json",
    timestamp: int | None = None,
    retry_reason: str = "http_timeout",
) -> tuple[int, str]:
    """POST like Slack's HTTP delivery, with a real v0 signature over the exact bytes sent. Form dict values
    that are dicts/lists are JSON-encoded, so {"payload": {...}} makes an interactivity request."""
    if isinstance(body, str):
        raw = body
    elif content_type == "application/json":
        raw = json.dumps(body)
    else:
        raw = urlencode({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in body.items()})
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:{raw}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + ("0" * 64 if bad_signature else digest),
    }
    if retry_num is not None:
        headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(url, data=raw.encode(), headers=headers) as resp:
            return resp.status, await resp.text()


async def wait_for(
    predicate: Callable[[], Any], seconds: float = 10, interval: float = 0.02, message: str | None = None
) -> Any:
    """Poll a synchronous predicate until truthy (returning its value) or fail the test with context."""
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            if message is None:
                try:
                    message = inspect.getsource(predicate).strip()
                except (OSError, TypeError):
                    message = repr(predicate)
            raise AssertionError(f"timed out after {seconds}s waiting for: {message}")
        await asyncio.sleep(interval)
