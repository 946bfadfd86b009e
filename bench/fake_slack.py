"""The fake Slack of the bench: tests.fakes.slack.FakeSlack with Slack's rate limits
enforced per workspace (or per channel) and a timestamp for every call.

Rate-limit model (what real Slack documents; the fake answers HTTP 429 + Retry-After):
- chat.update: Tier 3, 50 calls in any 60-second window per workspace (strict sliding
  window; real Slack tolerates "sporadic bursts", so this is the pessimistic reading);
- chat.postMessage: "1 message per second per channel, short bursts allowed": a token
  bucket per channel, 1 token/s, burst of 3;
- users.info: Tier 4, 100 calls in any 60-second window per workspace.
Which workspace a call belongs to is known from the channel (or user) the bench
registered when it built the event: the bot uses one bot token for every team id.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.slack import Call, FakeSlack, Msg, _read_args

PLACEHOLDER_PREFIX = "Thinking"  # texts.THINKING starts with it


@dataclass
class Thread:
    """What Slack saw of one benchmark conversation (one thread)."""

    team: str
    channel: str
    thread_ts: str
    final_marker: str
    first_marker: str
    posts: list[float] = field(default_factory=list)  # chat.postMessage arrival times
    placeholder_ts: str | None = None
    updates: list[tuple[float, str]] = field(default_factory=list)  # (arrival, text) of successful edits
    first_edit: float | None = None  # first edit carrying model text
    final_seen: float | None = None  # first edit (or post) carrying the final marker
    done: asyncio.Event = field(default_factory=asyncio.Event)


class BenchSlack(FakeSlack):
    def __init__(
        self,
        *,
        update_per_minute: int = 50,
        users_info_per_minute: int = 100,
        append_per_minute: int = 100,
        post_rate: float = 1.0,
        post_burst: float = 3.0,
        enforce: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.update_per_minute = update_per_minute
        self.users_info_per_minute = users_info_per_minute
        self.append_per_minute = append_per_minute
        self.post_rate, self.post_burst = post_rate, post_burst
        self.enforce = enforce
        self.channel_team: dict[str, str] = {}
        self.user_team: dict[str, str] = {}
        self.threads: dict[tuple[str, str], Thread] = {}  # (channel, thread_ts) -> Thread
        self.by_msg: dict[tuple[str, str], Thread] = {}  # (channel, placeholder ts) -> Thread
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)  # (method, team) -> accepted call times
        self.limited: dict[tuple[str, str], int] = defaultdict(int)  # (method, team) -> 429s
        self._index: dict[tuple[str, str], Msg] = {}
        self._win: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._buckets: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------ set-up by the bench
    def expect(
        self, *, team: str, channel: str, thread_ts: str, user: str, first_marker: str, final_marker: str
    ) -> Thread:
        self.channel_team[channel] = team
        self.user_team[user] = team
        thread = Thread(team, channel, thread_ts, final_marker, first_marker)
        self.threads[(channel, thread_ts)] = thread
        return thread

    # ------------------------------------------------------------ per-workspace limits
    def _team(self, method: str, args: dict) -> str:
        if method == "users.info":
            return self.user_team.get(args.get("user") or "", "?")
        return self.channel_team.get(args.get("channel") or args.get("channel_id") or "", "?")

    def _window(self, key: tuple[str, str], per_minute: int, now: float) -> int | None:
        window = self._win[key]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= per_minute:
            return max(1, math.ceil(60 - (now - window[0])))
        window.append(now)
        return None

    def _bucket(self, channel: str, now: float) -> int | None:
        tokens, stamp = self._buckets.get(channel, (self.post_burst, now))
        tokens = min(self.post_burst, tokens + (now - stamp) * self.post_rate)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.post_rate))
        self._buckets[channel] = (tokens - 1, now)
        return None

    def _limit(self, method: str, team: str, args: dict, now: float) -> int | None:
        if not self.enforce:
            return None
        if method == "chat.update":
            return self._window((method, team), self.update_per_minute, now)
        if method == "users.info":
            return self._window((method, team), self.users_info_per_minute, now)
        if method == "chat.appendStream" and self.append_per_minute:  # Tier 4; start/stop: not limited here
            return self._window((method, team), self.append_per_minute, now)
        if method == "chat.postMessage":
            return self._bucket(args.get("channel") or "", now)
        return None

    # ------------------------------------------------------------ the Web API, timed
    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        now = time.monotonic()
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else args.pop("token", None)
        call = Call(method, {}, token, now)  # args not kept: the bench records what it needs
        self.calls.append(call)
        if token != self.bot_token:
            return self._error(call, "invalid_auth")
        team = self._team(method, args)
        if (wait := self._limit(method, team, args, now)) is not None:
            self.rate_limited[method] += 1
            self.limited[(method, team)] += 1
            return self._error(call, "ratelimited", status=429, retry_after=wait)
        self.times[(method, team)].append(now)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        result = handler(args) if handler else {}
        if "error" in result:
            return self._error(call, result["error"])
        self._observe(method, args, result, now)
        return web.json_response({"ok": True, **result})

    def _observe(self, method: str, args: dict, result: dict, now: float) -> None:
        if method == "chat.postMessage":
            thread = self.threads.get((args.get("channel"), args.get("thread_ts")))
            if thread is None:
                return
            thread.posts.append(now)
            if thread.placeholder_ts is None:
                thread.placeholder_ts = result["ts"]
                self.by_msg[(thread.channel, result["ts"])] = thread
            self._seen(thread, args.get("text") or "", now)
        elif method == "chat.update":
            thread = self.by_msg.get((args.get("channel"), args.get("ts")))
            if thread is None:
                return
            text = args.get("text") or ""
            thread.updates.append((now, text))
            self._seen(thread, text, now)
        elif method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            # Native streaming: the message's text grows with each call; every call that adds
            # text is a visible update.
            if method == "chat.startStream":
                thread = self.threads.get((args.get("channel"), args.get("thread_ts")))
                if thread is not None:
                    self.by_msg[(thread.channel, result["ts"])] = thread
            ts = result.get("ts") if method == "chat.startStream" else args.get("ts")
            thread = self.by_msg.get((args.get("channel"), ts))
            msg = self._find(args.get("channel"), ts)
            if thread is None or msg is None:
                return
            text = "".join(
                m.text for m in self.messages if m.thread_ts == thread.thread_ts and m.user == self.bot_user_id
            )
            if not thread.updates or thread.updates[-1][1] != text:
                thread.updates.append((now, text))
            self._seen(thread, text, now)

    @staticmethod
    def _seen(thread: Thread, text: str, now: float) -> None:
        if thread.first_edit is None and thread.first_marker in text:
            thread.first_edit = now
        if thread.final_seen is None and thread.final_marker in text:
            thread.final_seen = now
            thread.done.set()

    # ------------------------------------------------------------ O(1) lookups
    def _m_chat_postMessage(self, a: dict) -> dict:
        result = super()._m_chat_postMessage(a)
        if "ts" in result:
            self._index[(result["channel"], result["ts"])] = self.messages[-1]
        return result

    def _m_chat_startStream(self, a: dict) -> dict:
        result = super()._m_chat_startStream(a)
        if "ts" in result:
            self._index[(result["channel"], result["ts"])] = self.messages[-1]
        return result

    def _find(self, channel: str | None, ts: str | None) -> Msg | None:
        msg = self._index.get((channel or "", ts or ""))
        return msg if msg is not None and not msg.deleted else None

    # ------------------------------------------------------------ summaries
    def max_in_window(self, method: str, seconds: float, *, by: str = "team") -> tuple[int, str]:
        """The most accepted calls of `method` any one workspace got in any `seconds` window."""
        best, who = 0, ""
        for (m, team), times in self.times.items():
            if m != method:
                continue
            lo = 0
            for hi, t in enumerate(times):
                while t - times[lo] >= seconds:
                    lo += 1
                if hi - lo + 1 > best:
                    best, who = hi - lo + 1, team
        return best, who

    def max_posts_per_channel(self, seconds: float = 1.0) -> int:
        best = 0
        per_channel: dict[str, list[float]] = defaultdict(list)
        for thread in self.threads.values():
            per_channel[thread.channel].extend(thread.posts)
        for times in per_channel.values():
            times.sort()
            lo = 0
            for hi, t in enumerate(times):
                while t - times[lo] >= seconds:
                    lo += 1
                best = max(best, hi - lo + 1)
        return best
