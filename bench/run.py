"""The benchmark driver: `python -m bench [--quick] [--out bench/results/latest.json]`.

Scenarios (each on fresh fakes, fresh bot process(es) and a flushed Redis):
1. overhead    — a model that answers instantly; sequential turns; the bot's own latency;
   streaming   — one workspace, 50 answers at once (~300 tokens over ~10 s each), edit mode
                 and native streaming side by side: first visible text, gaps, 429s;
2. concurrency — N simultaneous conversations (10 per workspace), ~300 streamed tokens each;
3. scaling     — the largest N again on two bot processes sharing the Redis, events split
                 round-robin between them (as a load balancer would).
Every process started here is ended in a finally block (and at exit).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import psutil

from bench import fake_openai
from bench.fake_slack import BenchSlack, Thread
from bench.procs import PYTHON, ROOT, Bot, Procs, RedisServer, bot_env, free_port
from bench.redis_proxy import CountingProxy
from bench.stats import summary, table
from tests.fakes.slack import event_body, mention, new_ts

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
API_KEY = "sk-bench"


@dataclass
class Config:
    quick: bool
    levels: list[int]
    per_workspace: int
    tokens: int
    token_delay: float
    tick: float
    interval: float
    updates_per_minute: float
    overhead_turns: int
    overhead_teams: int
    overhead_gap: float
    scale_n: int
    level_timeout: float
    profile: bool
    stream_n: int = 50


# ====================================================================== infrastructure
class Stage:
    """One scenario's world: fake Slack (in this process), fake OpenAI (own process),
    bot process(es), /healthz probes, redis-cli MONITOR."""

    def __init__(
        self,
        procs: Procs,
        redis: RedisServer,
        cfg: Config,
        *,
        name: str,
        mode: str,
        bots: int,
        profile: Path | None = None,
        stream_mode: str = "edit",
        append_limit: int = 100,
        appends_per_minute: float | None = None,
    ) -> None:
        self.procs, self.redis, self.cfg, self.name = procs, redis, cfg, name
        self.stream_mode, self.appends_per_minute = stream_mode, appends_per_minute
        self.mode, self.n_bots, self.profile = mode, bots, profile
        self.slack = BenchSlack(bot_token=BOT_TOKEN, update_per_minute=50, append_per_minute=append_limit)
        self.bots: list[Bot] = []
        self.probes: list[subprocess.Popen] = []
        self.openai_proc: subprocess.Popen | None = None
        self.openai_port = 0
        self.monitor: subprocess.Popen | None = None
        self.monitor_file = procs.workdir / f"{name}.monitor"
        self.proxy = CountingProxy(redis.port)

    async def __aenter__(self) -> Stage:
        try:
            return await self._enter()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def _enter(self) -> Stage:
        await self.slack.start()
        await self.proxy.start()
        cfg = self.cfg
        self.openai_proc = self.procs.spawn(
            [
                PYTHON,
                "-m",
                "bench.fake_openai",
                "--mode",
                self.mode,
                "--tokens",
                str(cfg.tokens),
                "--token-delay",
                str(cfg.token_delay),
                "--tick",
                str(cfg.tick),
                "--gap",
                str(cfg.overhead_gap),
                "--api-key",
                API_KEY,
                "--max-seconds",
                "1200",
            ],
            stdout=subprocess.PIPE,
            log=f"{self.name}-openai.log",
        )
        ready, _, _ = select.select([self.openai_proc.stdout], [], [], 20)
        line = self.openai_proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake OpenAI did not start (see {self.name}-openai.log)")
        self.openai_port = int(line.split()[1])
        self.redis.reset()
        for i in range(self.n_bots):
            lag = self.procs.workdir / f"{self.name}-bot{i}.lag"
            lag.unlink(missing_ok=True)
            env = bot_env(
                slack_url=self.slack.api_url,
                openai_url=f"http://127.0.0.1:{self.openai_port}/v1",
                redis_url=f"redis://127.0.0.1:{self.proxy.port}/0",
                port=free_port(),
                interval=cfg.interval,
                updates_per_minute=cfg.updates_per_minute,
                signing_secret=SIGNING_SECRET,
                bot_token=BOT_TOKEN,
                api_key=API_KEY,
                lag_file=lag,
                stream_mode=self.stream_mode,
                appends_per_minute=self.appends_per_minute,
            )
            self.bots.append(Bot(self.procs, env, name=f"{self.name}-bot{i}", profile=self.profile))
        for bot in self.bots:
            await asyncio.to_thread(bot.wait_healthy, 60)
        return self

    async def measure(self) -> None:
        """From here on the counters only see the load: Redis stats reset, Slack call log
        cleared (rate-limit windows kept), MONITOR and the /healthz probes started, and
        one idle second for the probes' baseline."""
        self.redis.reset()
        self.proxy.reset()
        self.slack.calls.clear()
        self.slack.times.clear()
        self.slack.limited.clear()
        self.slack.rate_limited.clear()
        self.monitor = self.procs.spawn(
            ["redis-cli", "-p", str(self.redis.port), "monitor"],
            stdout=await asyncio.to_thread(open, self.monitor_file, "wb"),
        )
        for bot in self.bots:
            self.probes.append(
                self.procs.spawn(
                    [PYTHON, "-m", "bench.probe", str(bot.port), "--interval", "0.05", "--max-seconds", "900"],
                    stdout=subprocess.PIPE,
                )
            )
        await asyncio.sleep(1.0)

    async def warm_up(self, session: aiohttp.ClientSession) -> None:
        """One conversation per bot process, in a workspace of its own, before measuring:
        lazy imports, Bolt's auth.test and connection pools are then warm."""
        convs = plan(self.slack, len(self.bots), per_ws=1, prefix="WARM", bots=len(self.bots))
        for conv in convs:
            await deliver(session, self, conv)
        try:
            await asyncio.wait_for(asyncio.gather(*(c.thread.done.wait() for c in convs)), 30)
        except TimeoutError:
            print("warm-up did not finish in 30 s", file=sys.stderr)

    async def stop_probes(self) -> list[list[tuple[float, float | None]]]:
        out = []
        for probe in self.probes:
            if probe.poll() is None:
                os.kill(probe.pid, signal.SIGTERM)
            try:
                data, _ = await asyncio.to_thread(probe.communicate, timeout=15)
                out.append(json.loads(data or b"[]"))
            except (subprocess.TimeoutExpired, ValueError):
                out.append([])
            self.procs.stop(probe)
        self.probes = []
        return out

    async def openai_records(self) -> list[dict]:
        async with aiohttp.ClientSession() as s:
            async with s.get(
                f"http://127.0.0.1:{self.openai_port}/__bench/records", headers={"Authorization": f"Bearer {API_KEY}"}
            ) as r:
                return await r.json()

    async def __aexit__(self, *exc) -> None:
        try:
            if self.probes:
                await self.stop_probes()
            if self.monitor is not None:
                self.procs.stop(self.monitor, grace=3)
            for bot in self.bots:
                await asyncio.to_thread(bot.stop)
            if self.openai_proc is not None:
                self.procs.stop(self.openai_proc, grace=5)
        finally:
            await self.proxy.stop()
            await self.slack.stop()


def signed_headers(raw: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{raw}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


@dataclass
class Conv:
    team: str
    channel: str
    user: str
    ts: str
    bot: int
    thread: Thread | None = None
    sent: float | None = None
    acked: float | None = None
    status: int | None = None


def plan(slack: BenchSlack, n: int, *, per_ws: int, prefix: str, bots: int) -> list[Conv]:
    convs = []
    for i in range(n):
        team = f"T{prefix}{i // per_ws:04d}"
        channel = f"C{prefix}{i:05d}"  # one channel per conversation (postMessage is limited per channel)
        user = f"U{prefix}{i:05d}"
        conv = Conv(team, channel, user, new_ts(), bot=i % bots)
        conv.thread = slack.expect(
            team=team,
            channel=channel,
            thread_ts=conv.ts,
            user=user,
            first_marker=fake_openai.FIRST_MARKER,
            final_marker=fake_openai.FINAL_MARKER,
        )
        convs.append(conv)
    return convs


async def deliver(session: aiohttp.ClientSession, stage: Stage, conv: Conv) -> None:
    event = mention(conv.channel, conv.user, "please explain streaming", ts=conv.ts, team=conv.team)
    raw = json.dumps(event_body(event, team_id=conv.team))
    headers = signed_headers(raw)
    url = f"http://127.0.0.1:{stage.bots[conv.bot].port}/slack/events"
    conv.sent = time.monotonic()
    async with session.post(url, data=raw.encode(), headers=headers) as resp:
        await resp.read()
        conv.status = resp.status
    conv.acked = time.monotonic()


# ====================================================================== measurements
def read_lag(path: Path | None, t0: float, t1: float) -> list[float]:
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            t, lag = map(float, line.split())
        except ValueError:
            continue
        if t0 <= t <= t1:
            out.append(max(0.0, lag))
    return out


_SETUP = {"CLIENT", "HELLO", "SELECT", "PING", "AUTH", "INFO", "CONFIG", "COMMAND", "MONITOR"}


def monitor_round_trips(path: Path) -> tuple[Counter, int]:
    """Client commands seen by MONITOR, by name (a MULTI…EXEC block counts once, named
    MULTI[...]; commands run inside Lua scripts are left out, counted apart). A
    non-transactional pipeline still shows as separate commands: round trips are
    counted by the proxy. Returns (commands by name, lines inside scripts)."""
    trips: Counter = Counter()
    in_lua = 0
    open_multi: dict[str, list[str]] = {}
    if not path.exists():
        return trips, 0
    with open(path, errors="replace") as f:
        for line in f:
            try:
                rest = line.split(" [", 1)[1]
                client, cmd = rest.split("] ", 1)
            except (IndexError, ValueError):
                continue
            name = cmd.split(" ", 1)[0].strip().strip('"').upper()
            if client.endswith(" lua"):
                in_lua += 1
                continue
            if name == "MULTI":
                open_multi[client] = []
            elif client in open_multi:
                if name == "EXEC":
                    trips["MULTI[" + "+".join(open_multi.pop(client)) + "]"] += 1
                else:
                    open_multi[client].append(name)
            else:
                trips[name] += 1
    return trips, in_lua


def bot_log_errors(paths: list[Path]) -> dict[str, int]:
    """Exception lines (`pkg.SomeError: …`) in the bots' logs, counted by class."""
    found: Counter = Counter()
    for path in paths:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                m = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)): ", line)
                if m:
                    found[m.group(1)] += 1
    return dict(found)


def slack_summary(slack: BenchSlack, convs: list[Conv]) -> dict:
    per_method = Counter(c.method for c in slack.calls)
    limited = Counter(c.method for c in slack.calls if c.error == "ratelimited")
    upd_max, upd_team = slack.max_in_window("chat.update", 60.0)
    ui_max, _ = slack.max_in_window("users.info", 60.0)
    teams = {c.team for c in convs}
    return {
        "calls": dict(per_method),
        "calls_per_conversation": {m: round(n / max(1, len(convs)), 2) for m, n in per_method.items()},
        "429": dict(limited),
        "429_total": sum(limited.values()),
        "chat_update_max_per_workspace_60s": upd_max,
        "chat_update_limit_per_workspace_60s": slack.update_per_minute,
        "users_info_max_per_workspace_60s": ui_max,
        "post_max_per_channel_1s": slack.max_posts_per_channel(1.0),
        "workspaces": len(teams),
        "intermediate_edits_per_conversation": round(
            sum(max(0, len(c.thread.updates) - 1) for c in convs if c.thread) / max(1, len(convs)), 2
        ),
    }


def redis_summary(stage: Stage, before_total: int, turns: int) -> dict:
    stats = stage.redis.commandstats()
    total = stage.redis.total_commands() - before_total
    trips, in_lua = monitor_round_trips(stage.monitor_file)
    pings = trips.pop("PING", 0)
    setup = sum(v for k, v in trips.items() if k in _SETUP)
    per_turn_cmds = {k: round(v / max(1, turns), 2) for k, v in sorted(trips.items()) if k not in _SETUP}
    # Round trips: request bursts counted by the proxy, less the probes' PINGs and connection set-up.
    by_first = dict(stage.proxy.by_first_command)
    load_trips = sum(v for k, v in by_first.items() if k not in _SETUP)
    cmd_no_ping = {k: v for k, v in stats.items() if k not in ("ping", "config|resetstat", "info", "monitor")}
    return {
        "commandstats": cmd_no_ping,
        "commands_per_turn": round(sum(cmd_no_ping.values()) / max(1, turns), 2),
        "total_commands_processed_delta": total,
        "round_trips_per_turn": round(load_trips / max(1, turns), 2),
        "round_trips_counted_by_proxy": stage.proxy.round_trips,
        "round_trips_per_turn_by_first_command": {
            k: round(v / max(1, turns), 2) for k, v in sorted(by_first.items()) if k not in _SETUP
        },
        "setup_round_trips": {k: v for k, v in by_first.items() if k in _SETUP},
        "redis_connections_opened": stage.proxy.connections,
        "commands_per_turn_by_name": per_turn_cmds,
        "connection_setup_commands": setup,
        "healthz_pings": pings,
        "commands_inside_lua": in_lua,
    }


# ====================================================================== scenarios
async def overhead(procs: Procs, redis: RedisServer, cfg: Config) -> dict:
    """Sequential turns on an instant model; warm-up turn per workspace first."""
    async with Stage(procs, redis, cfg, name="overhead", mode="overhead", bots=1) as stage:
        convs_warm = plan(stage.slack, cfg.overhead_teams, per_ws=1, prefix="W", bots=1)
        # measured turns: round-robin over the warm workspaces and their (now cached) users
        measured: list[Conv] = []
        for i in range(cfg.overhead_turns):
            w = convs_warm[i % len(convs_warm)]
            conv = Conv(w.team, f"C{w.team}M{i:05d}", w.user, new_ts(), bot=0)
            conv.thread = stage.slack.expect(
                team=w.team,
                channel=conv.channel,
                thread_ts=conv.ts,
                user=w.user,
                first_marker=fake_openai.FIRST_MARKER,
                final_marker=fake_openai.FINAL_MARKER,
            )
            measured.append(conv)
        bot = stage.bots[0]
        timeouts = 0
        await stage.measure()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for group in (convs_warm, measured):
                for conv in group:
                    await deliver(session, stage, conv)
                    try:
                        await asyncio.wait_for(conv.thread.done.wait(), 10)
                    except TimeoutError:
                        timeouts += 1
                    await asyncio.sleep(0.02)
                if group is convs_warm:
                    cpu0 = bot.cpu_seconds()
                    t_measure = time.monotonic()
        cpu = bot.cpu_seconds() - cpu0
        t_end = time.monotonic()
        await asyncio.sleep(0.3)
        recs = {(r["channel"], r["thread_ts"]): r for r in await stage.openai_records()}
        probes = await stage.stop_probes()
        calls = dict(Counter(c.method for c in stage.slack.calls))

    def figures(convs: list[Conv]) -> dict:
        placeholder, first, final, ack, paced = [], [], [], [], 0
        for c in convs:
            th, rec = c.thread, recs.get((c.channel, c.ts))
            if th.posts:
                placeholder.append(th.posts[0] - c.sent)
            ack.append(c.acked - c.sent if c.acked else None)
            if rec and rec["t_first"] and th.first_edit:
                if th.first_edit < rec["t_done"]:
                    first.append(th.first_edit - rec["t_first"])
                else:
                    paced += 1  # the first edit was skipped (budget) and merged into the final one
            if rec and rec["t_done"] and th.final_seen:
                final.append(th.final_seen - rec["t_done"])
        return {
            "turns": len(convs),
            "event_to_placeholder_ms": summary(placeholder),
            "first_delta_to_first_edit_ms": summary(first),
            "completed_to_final_edit_ms": summary(final),
            "event_to_http_ack_ms": summary(ack),
            "first_edit_skipped_by_pacing": paced,
        }

    return {
        "measured": figures(measured),
        "cold_first_message_per_user": figures(convs_warm),
        "timeouts": timeouts,
        "slack_calls": calls,
        "update_interval_s": cfg.interval,
        "model_gap_s": cfg.overhead_gap,
        "cpu_s_per_turn": round(cpu / max(1, len(measured)), 4),
        "duration_s": round(t_end - t_measure, 2),
        "healthz_idle_ms": summary([lat for p in probes for _, lat in p]),
    }


async def concurrency(
    procs: Procs,
    redis: RedisServer,
    cfg: Config,
    n: int,
    *,
    bots: int = 1,
    profile: Path | None = None,
    name: str | None = None,
) -> dict:
    name = name or f"c{n}x{bots}"
    ideal = cfg.tokens * cfg.token_delay
    async with Stage(procs, redis, cfg, name=name, mode="stream", bots=bots, profile=profile) as stage:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await stage.warm_up(session)
        await stage.measure()
        convs = plan(stage.slack, n, per_ws=cfg.per_workspace, prefix=f"{n}{bots}", bots=bots)
        rss0 = [b.rss() for b in stage.bots]
        cpu0 = [b.cpu_seconds() for b in stage.bots]
        fake_ps, me = psutil.Process(stage.openai_proc.pid), psutil.Process()
        fake0, me0 = sum(fake_ps.cpu_times()[:2]), sum(me.cpu_times()[:2])
        before_total = redis.total_commands()
        t0 = time.monotonic()
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            results = await asyncio.gather(*(deliver(session, stage, c) for c in convs), return_exceptions=True)
        delivery_errors = [repr(r) for r in results if isinstance(r, Exception)]
        t_delivered = time.monotonic()
        timeout = ideal + cfg.level_timeout
        try:
            await asyncio.wait_for(asyncio.gather(*(c.thread.done.wait() for c in convs)), timeout)
        except TimeoutError:
            pass
        t_end = max([c.thread.final_seen for c in convs if c.thread.final_seen] or [time.monotonic()])
        cpu = sum(b.cpu_seconds() - c for b, c in zip(stage.bots, cpu0, strict=False))
        cpu_each = [round(b.cpu_seconds() - c, 2) for b, c in zip(stage.bots, cpu0, strict=False)]
        fake_cpu, me_cpu = sum(fake_ps.cpu_times()[:2]) - fake0, sum(me.cpu_times()[:2]) - me0
        await asyncio.sleep(1.0)  # late edits, if any, land in the counts
        peak = [b.peak_rss() for b in stage.bots]
        recs = {(r["channel"], r["thread_ts"]): r for r in await stage.openai_records()}
        probes = await stage.stop_probes()
        redis_fig = redis_summary(stage, before_total, sum(1 for c in convs if c.thread.final_seen))
        slack_fig = slack_summary(stage.slack, convs)
        lags = [read_lag(b.lag_file, t0, t_end) for b in stage.bots]
        log_errors = bot_log_errors([stage.procs.workdir / f"{b.name}.log" for b in stage.bots])

    done = [c for c in convs if c.thread.final_seen]
    placeholder = [c.thread.posts[0] - c.sent for c in convs if c.thread.posts and c.sent]
    turn = [c.thread.final_seen - c.sent for c in done]
    final, first, stream = [], [], []
    for c in done:
        rec = recs.get((c.channel, c.ts))
        if rec and rec["t_done"]:
            final.append(c.thread.final_seen - rec["t_done"])
            stream.append(rec["t_done"] - rec["t_request"])
        if rec and rec["t_first"] and c.thread.first_edit:
            first.append(c.thread.first_edit - rec["t_first"])
    start_lag = [recs[(c.channel, c.ts)]["t_request"] - c.sent for c in convs if (c.channel, c.ts) in recs]
    probe_during = [lat for p in probes for t, lat in p if t0 <= t <= t_end]
    probe_idle = [lat for p in probes for t, lat in p if t < t0 and lat is not None]
    probe_fail = sum(1 for p in probes for t, lat in p if t0 <= t <= t_end and lat is None)
    return {
        "conversations": n,
        "bot_processes": bots,
        "workspaces": slack_fig["workspaces"],
        "completed": len(done),
        "no_placeholder": sum(1 for c in convs if not c.thread.posts),
        "bot_log_errors": log_errors,
        "delivery_errors": delivery_errors[:5],
        "http_status": dict(Counter(c.status for c in convs)),
        "ideal_stream_s": ideal,
        "wall_s": round(t_end - t0, 3),
        "wall_over_ideal": round((t_end - t0) / ideal, 2),
        "delivery_s": round(t_delivered - t0, 3),
        "event_to_placeholder_ms": summary(placeholder),
        "event_to_model_request_ms": summary(start_lag),
        "model_stream_s": summary(stream, scale=1),
        "first_delta_to_first_edit_ms": summary(first),
        "completed_to_final_visible_ms": summary(final),
        "turn_s": summary(turn, scale=1),
        "loop_lag_inproc_ms": [summary(lag) for lag in lags],
        "loop_lag_inproc_ms_all": summary([x for lag in lags for x in lag]),
        "healthz_ms": summary(probe_during),
        "healthz_idle_ms": summary(probe_idle),
        "healthz_failures": probe_fail,
        "cpu_s": round(cpu, 3),
        "cpu_s_per_reply": round(cpu / max(1, len(done)), 5),
        "cpu_utilisation": round(cpu / max(1e-9, t_end - t0), 2),
        "cpu_s_per_process": cpu_each,
        "load_side_cpu_s": {"fake_openai": round(fake_cpu, 2), "bench_driver_and_fake_slack": round(me_cpu, 2)},
        "rss_idle_mb": [round(r / 2**20, 1) for r in rss0],
        "peak_rss_mb": [round(p / 2**20, 1) for p in peak],
        "slack": slack_fig,
        "redis": redis_fig,
    }


# (label, ASSIST_BOT_STREAM_MODE, the fake's chat.appendStream limit per workspace per minute (0: none),
#  ASSIST_BOT_SLACK_APPENDS_PER_MINUTE (None: unset, the default: learned from Slack's 429s))
STREAM_RUNS: list[tuple[str, str, int, float | None]] = [
    ("edit", "edit", 100, None),
    ("native (defaults); Slack: no per-workspace limit on appends", "native", 0, None),
    ("native (defaults); Slack: appends at Tier 4, 100/min/workspace", "native", 100, None),
    ("native, APPENDS_PER_MINUTE=100; Slack: appends at Tier 4, 100/min/workspace", "native", 100, 100),
]


async def streaming(procs: Procs, redis: RedisServer, cfg: Config, run: tuple[str, str, int, float | None]) -> dict:
    """One workspace, `cfg.stream_n` answers streaming at once (about 300 tokens over about
    10 s each), in one mode: what a person sees of each answer."""
    label, mode, append_limit, appends_per_minute = run
    n = cfg.stream_n
    scfg = replace(cfg, tokens=300, token_delay=10.0 / 300)
    async with Stage(
        procs,
        redis,
        scfg,
        name=f"stream-{mode}-{append_limit}-{appends_per_minute or 'learn'}",
        mode="stream",
        bots=1,
        stream_mode=mode,
        append_limit=append_limit,
        appends_per_minute=appends_per_minute,
    ) as stage:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await stage.warm_up(session)
        await stage.measure()
        prefix = f"S{mode[0].upper()}{append_limit}{'F' if appends_per_minute else 'L'}"
        convs = plan(stage.slack, n, per_ws=n, prefix=prefix, bots=1)
        t0 = time.monotonic()
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            await asyncio.gather(*(deliver(session, stage, c) for c in convs), return_exceptions=True)
        try:
            await asyncio.wait_for(asyncio.gather(*(c.thread.done.wait() for c in convs)), 10 + cfg.level_timeout)
        except TimeoutError:
            pass
        t_end = max([c.thread.final_seen for c in convs if c.thread.final_seen] or [time.monotonic()])
        await asyncio.sleep(1.0)
        recs = {(r["channel"], r["thread_ts"]): r for r in await stage.openai_records()}
        await stage.stop_probes()
        slack_fig = slack_summary(stage.slack, convs)
    first, gaps, typical, updates = [], [], [], []
    for c in convs:
        th, rec = c.thread, recs.get((c.channel, c.ts))
        if rec and rec["t_first"] and th.first_edit:
            first.append(th.first_edit - rec["t_first"])
        if th.first_edit and th.final_seen:
            seen = sorted({t for t, text in th.updates if th.first_edit <= t <= th.final_seen})
            between = [b - a for a, b in zip(seen, seen[1:], strict=False)]
            gaps.append(max(between, default=0.0))
            typical.append(statistics.median(between) if between else 0.0)  # "advanced every N s"
            updates.append(len(seen))
    return {
        "mode": label,
        "answers": n,
        "completed": sum(1 for c in convs if c.thread.final_seen),
        "wall_s": round(t_end - t0, 2),
        "first_token_to_first_visible_ms": summary(first),
        "max_gap_between_visible_updates_ms": summary(gaps),
        "answers_with_a_gap_over_2s": sum(1 for g in gaps if g > 2.0),
        "median_gap_between_visible_updates_ms": summary(typical),
        # Visible updates besides the first text and the completed answer: did it move meanwhile?
        "answers_advancing_before_the_end": sum(1 for u in updates if u >= 3),
        "visible_updates_per_answer": summary(updates, scale=1),
        "slack": slack_fig,
    }


# ====================================================================== reporting
def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_report(res: dict) -> None:
    cfg = res["config"]
    print(f"\n## Machine\n{res['machine']}")
    if o := res.get("overhead"):
        print(f"\n## Overhead (instant model, sequential turns, ASSIST_BOT_UPDATE_INTERVAL={o['update_interval_s']}s)")
        rows = []
        for label, fig in (("measured", o["measured"]), ("cold (1st msg of a user)", o["cold_first_message_per_user"])):
            for metric in (
                "event_to_placeholder_ms",
                "first_delta_to_first_edit_ms",
                "completed_to_final_edit_ms",
                "event_to_http_ack_ms",
            ):
                s = fig[metric]
                rows.append([label, metric, s.get("n", 0), s.get("p50"), s.get("p95"), s.get("p99"), s.get("max")])
        print(table(["turns", "metric", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))
        print(
            f"cpu per turn {o['cpu_s_per_turn'] * 1000:.1f} ms; first edits skipped by pacing: "
            f"{o['measured']['first_edit_skipped_by_pacing']}; timeouts: {o['timeouts']}"
        )
    if streams := res.get("streaming"):
        print(f"\n## Streaming in one busy workspace ({streams[0]['answers']} answers at once, ~300 tokens over ~10 s)")
        rows = []
        for r in streams:
            f, g, u, t = (
                r["first_token_to_first_visible_ms"],
                r["max_gap_between_visible_updates_ms"],
                r["visible_updates_per_answer"],
                r.get("median_gap_between_visible_updates_ms", {}),
            )
            rows.append(
                [
                    r["mode"],
                    f"{r['completed']}/{r['answers']}",
                    r["wall_s"],
                    f.get("p50"),
                    f.get("p95"),
                    f.get("max"),
                    g.get("p50"),
                    g.get("max"),
                    r["answers_with_a_gap_over_2s"],
                    t.get("p50"),
                    t.get("max"),
                    r.get("answers_advancing_before_the_end"),
                    u.get("p50"),
                    u.get("max"),
                    r["slack"]["429_total"],
                    ", ".join(f"{k}={v}" for k, v in sorted(r["slack"]["calls"].items())),
                ]
            )
        print(
            table(
                [
                    "mode",
                    "done",
                    "wall s",
                    "1st visible p50 ms",
                    "p95 ms",
                    "max ms",
                    "max gap p50 ms",
                    "max gap max ms",
                    "gap > 2 s",
                    "median gap p50 ms",
                    "median gap max ms",
                    "advancing before the end",
                    "updates/answer p50",
                    "max",
                    "429s",
                    "Slack calls",
                ],
                rows,
            )
        )
    runs = res.get("concurrency", []) + res.get("scaling", [])
    if runs:
        print(
            f"\n## Concurrency ({cfg['tokens']} tokens/reply, {cfg['token_delay'] * 1000:.0f} ms/token, "
            f"{cfg['per_workspace']} conversations/workspace, interval {cfg['interval']}s)"
        )
        rows = []
        for r in runs:
            rows.append(
                [
                    r["conversations"],
                    r["bot_processes"],
                    f"{r['completed']}/{r['conversations']}",
                    r["wall_s"],
                    r["ideal_stream_s"],
                    r["event_to_placeholder_ms"].get("p99"),
                    r["completed_to_final_visible_ms"].get("p50"),
                    r["completed_to_final_visible_ms"].get("p99"),
                    r["loop_lag_inproc_ms_all"].get("p99"),
                    r["loop_lag_inproc_ms_all"].get("max"),
                    r["healthz_ms"].get("p99"),
                    r["cpu_s_per_reply"] * 1000,
                    r["cpu_utilisation"],
                    max(r["peak_rss_mb"]),
                    r["slack"]["429_total"],
                    r["redis"]["round_trips_per_turn"],
                    r["redis"]["commands_per_turn"],
                ]
            )
        print(
            table(
                [
                    "conv",
                    "procs",
                    "done",
                    "wall s",
                    "ideal s",
                    "placeholder p99 ms",
                    "final p50 ms",
                    "final p99 ms",
                    "lag p99 ms",
                    "lag max ms",
                    "healthz p99 ms",
                    "cpu ms/reply",
                    "cpu util",
                    "peak RSS MB",
                    "429s",
                    "redis RT/turn",
                    "redis cmd/turn",
                ],
                rows,
            )
        )
        rows = []
        for r in runs:
            s = r["slack"]
            rows.append(
                [
                    r["conversations"],
                    r["bot_processes"],
                    s["workspaces"],
                    ", ".join(f"{k}={v}" for k, v in sorted(s["calls"].items())),
                    s["chat_update_max_per_workspace_60s"],
                    s["post_max_per_channel_1s"],
                    s["users_info_max_per_workspace_60s"],
                    json.dumps(s["429"]),
                    s["intermediate_edits_per_conversation"],
                ]
            )
        print()
        print(
            table(
                [
                    "conv",
                    "procs",
                    "workspaces",
                    "Slack calls",
                    "max chat.update/ws/60s (limit 50)",
                    "max post/channel/1s",
                    "max users.info/ws/60s",
                    "429s",
                    "interm. edits/conv",
                ],
                rows,
            )
        )
        last = runs[-1]["redis"]
        print(
            "\nRedis round trips per turn by the first command they carry (last run):",
            last["round_trips_per_turn_by_first_command"],
        )
        print(
            "Redis commands per turn by name (last run; MULTI blocks once, Lua-internal left out):",
            last["commands_per_turn_by_name"],
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short run (≤ 2 minutes): 10 and 100 conversations")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    p.add_argument("--levels", default=None, help="comma-separated conversation counts (default 10,100,500,1000)")
    p.add_argument("--per-workspace", type=int, default=10)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--token-delay", type=float, default=0.02, help="seconds between two model tokens")
    p.add_argument("--tick", type=float, default=0.05, help="the fake model writes due tokens every TICK s")
    p.add_argument("--interval", type=float, default=1.0, help="ASSIST_BOT_UPDATE_INTERVAL")
    p.add_argument("--updates-per-minute", type=float, default=50, help="ASSIST_BOT_SLACK_UPDATES_PER_MINUTE")
    p.add_argument("--scale-n", type=int, default=None, help="size of the 1-vs-2 process run (default: largest)")
    p.add_argument("--skip", default="", help="comma-separated: overhead,streaming,concurrency,scaling,state")
    p.add_argument("--stream-n", type=int, default=50, help="answers at once in the streaming scenario")
    p.add_argument(
        "--stream-only", default="", help="run only the streaming runs whose label contains this (e.g. 'Tier 4')"
    )
    p.add_argument(
        "--profile", action="store_true", help="also run the largest level once under cProfile (written next to --out)"
    )
    p.add_argument("--level-timeout", type=float, default=120, help="seconds past the ideal before giving up a level")
    a = p.parse_args(argv)
    levels = [int(x) for x in a.levels.split(",")] if a.levels else ([10, 100] if a.quick else [10, 100, 500, 1000])
    cfg = Config(
        quick=a.quick,
        levels=levels,
        per_workspace=a.per_workspace,
        tokens=a.tokens,
        token_delay=a.token_delay,
        tick=a.tick,
        interval=a.interval,
        updates_per_minute=a.updates_per_minute,
        overhead_turns=60 if a.quick else 300,
        overhead_teams=10 if a.quick else 20,
        overhead_gap=0.25,
        scale_n=a.scale_n or max(levels),
        level_timeout=30 if a.quick else a.level_timeout,
        profile=a.profile,
        stream_n=a.stream_n,
    )
    skip = set(filter(None, a.skip.split(",")))
    stream_only = a.stream_only
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="assist-bot-bench-"))
    res: dict = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "config": cfg.__dict__,
        "workdir": str(workdir),
        "started": time.time(),
    }
    procs = Procs(workdir)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        redis = RedisServer(procs)
        res["redis_version"] = redis.client.info("server")["redis_version"]

        async def scenarios() -> None:
            if "overhead" not in skip:
                print(f"overhead: {cfg.overhead_turns} sequential turns…", flush=True)
                res["overhead"] = await overhead(procs, redis, cfg)
            if "streaming" not in skip:
                res["streaming"] = []
                for run in [r for r in STREAM_RUNS if stream_only in r[0]]:
                    print(f"streaming: {cfg.stream_n} answers in one workspace, {run[0]}…", flush=True)
                    res["streaming"].append(await streaming(procs, redis, cfg, run))
                    _save(out, res)
            if "concurrency" not in skip:
                res["concurrency"] = []
                for n in cfg.levels:
                    print(f"concurrency: {n} conversations, 1 process…", flush=True)
                    res["concurrency"].append(await concurrency(procs, redis, cfg, n))
                    _save(out, res)
            if "scaling" not in skip:
                res["scaling"] = []
                n = cfg.scale_n
                if not any(r["conversations"] == n for r in res.get("concurrency", [])):
                    print(f"scaling: {n} conversations, 1 process…", flush=True)
                    res["scaling"].append(await concurrency(procs, redis, cfg, n))
                print(f"scaling: {n} conversations, 2 processes…", flush=True)
                res["scaling"].append(await concurrency(procs, redis, cfg, n, bots=2))
            if "state" not in skip:
                from bench import state

                print("state: one thread of 100 turns per ASSIST_BOT_STATE…", flush=True)
                res["state"] = await state.scenario(procs, redis, turns=20 if cfg.quick else 101)
            if cfg.profile:
                n = max(cfg.levels)
                prof = out.with_suffix(".prof")
                print(f"profile: {n} conversations under cProfile → {prof}", flush=True)
                res["profiled"] = await concurrency(procs, redis, cfg, n, profile=prof, name=f"prof{n}")
                _profile_text(prof, out.with_suffix(".profile.txt"))

        asyncio.run(scenarios())
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        res["interrupted"] = True
    finally:
        procs.close()
        res["finished"] = time.time()
        _save(out, res)
    print_report(res)
    if res.get("state"):
        from bench import state

        state.report(res["state"])
    print(f"\nJSON: {out}\nlogs: {workdir}")
    return 1 if res.get("interrupted") else 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _save(out: Path, res: dict) -> None:
    out.write_text(json.dumps(res, indent=1, default=str))


def _profile_text(prof: Path, dest: Path) -> None:
    import io
    import pstats

    if not prof.exists():
        return
    buf = io.StringIO()
    st = pstats.Stats(str(prof), stream=buf)
    st.sort_stats("tottime").print_stats(40)
    st.sort_stats("cumulative").print_stats(60)
    dest.write_text(buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
