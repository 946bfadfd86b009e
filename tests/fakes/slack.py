"""A loopback fake of Slack's Web API and Socket Mode that the official slack_sdk talks to unchanged.

Wire formats follow slack_sdk 3.48: the Web API client POSTs to `<base_url><method>` with the token in
`Authorization: Bearer`, sending JSON for chat.* methods and query-string/form fields for others, and the
Socket Mode client fetches a ws:// URL from apps.connections.open, expects a `hello` frame, and acks
envelopes with `{"envelope_id": ..., "payload"?: ...}`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import itertools
import json
import math
import socket
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

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


class FakeSlack:
    def __init__(self, bot_token: str = "xoxb-test", app_token: str = "xapp-test", team_id: str = "T1",
                 bot_user_id: str = "UBOT", bot_id: str = "BBOT", *, app_id: str = "A1",
                 users: dict[str, dict] | None = None, channels: dict[str, dict] | None = None,
                 max_text_len: int = 40_000):
        self.bot_token, self.app_token, self.team_id = bot_token, app_token, team_id
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self.users: dict[str, dict] = dict(users or {})  # user id -> overrides (name, real_name, display_name, ...)
        self.channels: dict[str, dict] = dict(channels or {})  # channel id -> overrides for conversations.info
        self.max_text_len = max_text_len
        self.calls: list[Call] = []
        self.messages: list[Msg] = []  # bot-posted and seeded messages, deleted ones included
        self.rate_limited: dict[str, int] = defaultdict(int)
        self.acks: dict[str, dict] = {}  # envelope_id -> the frame the client sent back
        self.pushed: dict[str, dict] = {}  # envelope_id -> envelope we sent
        self.socket_frames: list[Any] = []  # every JSON frame clients sent, acks included
        self.socket_connects = 0  # total WebSocket connections accepted (grows on reconnects)
        self.port: int | None = None
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._limits: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._stopping = False

    # ---------------------------------------------------------------- lifecycle
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket", self._handle_socket)
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

    async def __aenter__(self) -> "FakeSlack":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ---------------------------------------------------------------- scripting & inspection
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def fail_next(self, method: str, *, error: str = "ratelimited", status: int = 200,
                  retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next `times` authorised calls to `method` with `{"ok": false, "error": error}`."""
        retry_after = 1 if status == 429 and retry_after is None else retry_after
        self._failures[method].append(_Failure(error, status, retry_after, times))

    def rate_limit(self, method: str, per_minute: int) -> None:
        """Sliding one-minute window; calls beyond it get HTTP 429 + Retry-After like Slack's tiers."""
        self._limits[method] = per_minute

    def bot_messages(self, channel: str | None = None, *, include_deleted: bool = False) -> list[Msg]:
        return [m for m in self.messages if m.user == self.bot_user_id
                and (channel is None or m.channel == channel) and (include_deleted or not m.deleted)]

    def thread_replies(self, channel: str, thread_ts: str) -> list[Msg]:
        return [m for m in self.bot_messages(channel) if m.thread_ts == thread_ts]

    def seed_message(self, channel: str, user: str, text: str, ts: str | None = None,
                     thread_ts: str | None = None) -> Msg:
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
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return self._error(call, "invalid_auth")
        if (wait := self._over_limit(method)) is not None:
            self.rate_limited[method] += 1
            return self._error(call, "ratelimited", status=429, retry_after=wait)
        if queue := self._failures.get(method):
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return self._error(call, failure.error, status=failure.status, retry_after=failure.retry_after)
        handler: Callable[[dict], dict] | None = getattr(self, "_m_" + method.replace(".", "_"), None)
        result = handler(args) if handler else {}  # unknown methods succeed, they are still recorded
        if "error" in result:
            return self._error(call, result["error"])
        return web.json_response({"ok": True, **result})

    def _error(self, call: Call, error: str, *, status: int = 200, retry_after: int | None = None) -> web.Response:
        call.error = error
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)

    def _over_limit(self, method: str) -> int | None:
        per_minute = self._limits.get(method)
        if not per_minute:
            return None
        now, window = time.monotonic(), self._windows[method]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= per_minute:
            return max(1, math.ceil(60 - (now - window[0])))
        window.append(now)
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
        return {"url": f"https://fake-{self.team_id.lower()}.slack.com/", "team": "Fake Team", "user": "assist-bot",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _m_chat_postMessage(self, a: dict) -> dict:
        if not a.get("channel"):
            return {"error": "channel_not_found"}
        text = a.get("text") or ""
        if not text and not a.get("blocks") and not a.get("attachments"):
            return {"error": "no_text"}
        if len(text) > self.max_text_len:
            return {"error": "msg_too_long"}
        msg = Msg(new_ts(), a["channel"], a.get("thread_ts") or None, text, [text],
                  blocks=a.get("blocks"), user=self.bot_user_id, metadata=a.get("metadata"))
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
        return {"message_ts": new_ts()}

    def _m_users_info(self, a: dict) -> dict:
        uid = a.get("user") or ""
        o, is_bot = self.users.get(uid, {}), uid == self.bot_user_id
        name = o.get("name", "assist-bot" if is_bot else f"user-{uid}")
        real, display = o.get("real_name", name), o.get("display_name", name)
        user = {"id": uid, "team_id": self.team_id, "name": name, "real_name": real, "deleted": False,
                "is_bot": is_bot, "tz": o.get("tz", "Europe/London"),
                "profile": {"display_name": display, "display_name_normalized": display,
                            "real_name": real, "real_name_normalized": real}}
        user.update({k: v for k, v in o.items() if k not in ("name", "real_name", "display_name")})
        return {"user": user}

    def _m_conversations_info(self, a: dict) -> dict:
        cid = a.get("channel") or ""
        chan = {"id": cid, "name": f"chan-{cid}", "is_channel": cid.startswith("C"), "is_group": cid.startswith("G"),
                "is_im": cid.startswith("D"), "is_mpim": False, "is_private": not cid.startswith("C"),
                "is_member": True, "is_archived": False}
        chan.update(self.channels.get(cid, {}))
        return {"channel": chan}

    def _m_conversations_replies(self, a: dict) -> dict:
        root = a.get("ts")
        msgs = [m for m in self.messages if m.channel == a.get("channel") and not m.deleted
                and (m.ts == root or m.thread_ts == root)]
        msgs.sort(key=lambda m: float(m.ts))
        return {"messages": [self._message_json(m) for m in msgs], "has_more": False}

    def _m_apps_connections_open(self, a: dict) -> dict:
        # A fresh ticket per call, as Slack hands out a new URL each time.
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4().hex}&app_id={self.app_id}"}

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
            await ws.send_json({"type": "hello", "num_connections": len(self.open_sockets),
                                "debug_info": {"host": "fake-applink", "build_number": 1,
                                               "approximate_connection_time": 18060},
                                "connection_info": {"app_id": self.app_id}})
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

    async def wait_socket_connected(self, timeout: float = 10) -> None:
        await wait_for(lambda: self.open_sockets, timeout, message="a Socket Mode client to connect")

    async def _send_envelope(self, envelope: dict) -> str:
        await self.wait_socket_connected()
        # Slack delivers each envelope to one connection; the newest is the one most likely alive.
        await self.open_sockets[-1].send_json(envelope)
        self.pushed[envelope["envelope_id"]] = envelope
        return envelope["envelope_id"]

    async def push_socket_event(self, body: dict, *, retry_attempt: int = 0, retry_reason: str | None = None) -> str:
        """Deliver an Events API body (see event_body()); returns the envelope_id to wait_ack() on."""
        return await self._send_envelope({
            "envelope_id": str(uuid.uuid4()), "payload": body, "type": "events_api",
            "accepts_response_payload": False, "retry_attempt": retry_attempt,
            "retry_reason": retry_reason if retry_reason is not None else ("timeout" if retry_attempt else "")})

    async def push_socket_payload(self, type_: str, payload: dict) -> str:
        """Deliver a "slash_commands" or "interactive" payload, which may be answered in the ack."""
        return await self._send_envelope({"envelope_id": str(uuid.uuid4()), "payload": payload, "type": type_,
                                          "accepts_response_payload": True})

    async def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict:
        await wait_for(lambda: envelope_id in self.acks, timeout, message=f"an ack for envelope {envelope_id}")
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
def event_body(event: dict, *, team_id: str = "T1", event_id: str | None = None, api_app_id: str = "A1",
               bot_user_id: str = "UBOT") -> dict:
    """A full `event_callback` body, as Slack wraps every Events API event."""
    return {"token": "fake-verification-token", "team_id": team_id, "context_team_id": team_id,
            "context_enterprise_id": None, "api_app_id": api_app_id, "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": f"4-{uuid.uuid4().hex}"}


def mention(channel: str, user: str, text: str, ts: str | None = None, thread_ts: str | None = None, *,
            bot_user_id: str = "UBOT", team: str = "T1") -> dict:
    ts = ts or new_ts()
    event = {"type": "app_mention", "user": user, "text": f"<@{bot_user_id}> {text}", "ts": ts,
             "channel": channel, "event_ts": ts, "team": team, "client_msg_id": str(uuid.uuid4())}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def message(channel: str, user: str | None, text: str, ts: str | None = None, thread_ts: str | None = None,
            channel_type: str = "channel", subtype: str | None = None, bot_id: str | None = None, *,
            team: str = "T1") -> dict:
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message", "channel": channel, "text": text, "ts": ts, "event_ts": ts,
                             "channel_type": channel_type, "team": team}
    optional = {"user": user, "thread_ts": thread_ts, "subtype": subtype, "bot_id": bot_id,
                # only human-typed messages carry a client_msg_id
                "client_msg_id": str(uuid.uuid4()) if subtype is None and bot_id is None else None}
    event.update({k: v for k, v in optional.items() if v})
    return event


# -------------------------------------------------------------------- HTTP-mode helpers
async def post_signed(url: str, body: dict | str, *, signing_secret: str, retry_num: int | None = None,
                      bad_signature: bool = False, content_type: str = "application/json",
                      timestamp: int | None = None, retry_reason: str = "http_timeout") -> tuple[int, str]:
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
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": "v0=" + ("0" * 64 if bad_signature else digest)}
    if retry_num is not None:
        headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(url, data=raw.encode(), headers=headers) as resp:
            return resp.status, await resp.text()


async def wait_for(predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.02,
                   message: str | None = None) -> Any:
    """Poll a synchronous predicate until truthy (returning its value) or fail the test with context."""
    deadline = time.monotonic() + timeout
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
            raise AssertionError(f"timed out after {timeout}s waiting for: {message}")
        await asyncio.sleep(interval)
