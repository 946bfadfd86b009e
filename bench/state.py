"""Thread length and state mode (issue 13): one thread of N turns per ASSIST_BOT_STATE,
measuring per turn the Redis round trips and bytes (through the counting proxy) and the
bot's CPU, at turns 1, 10 and 100. `local` sends the stored history with every request;
the round trips must stay constant as the thread grows.

    python -m bench.state [--turns 100] [--modes conversation,local,response_chain]

(also the `state` scenario of `python -m bench`). The bot is the real process in HTTP
mode; the fake Slack and the fake OpenAI (instant echo answers) run in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from assist_bot.store.base import ThreadKey
from assist_bot.store.keys import Keys
from bench.procs import Bot, Procs, RedisServer, bot_env, free_port
from bench.redis_proxy import CountingProxy
from tests.fakes.openai import FakeOpenAI, Text, input_texts
from tests.fakes.slack import FakeSlack, event_body, mention, message, post_signed

SIGNING_SECRET = "bench-signing-secret"
API_KEY = "sk-bench"
ANSWER = "A steady answer of a few dozen words, as a model would give in a thread. " * 3
CHECKPOINTS = (1, 10, 100)


def _answer(body: dict) -> Text:
    texts = input_texts(body)
    return Text([f"{ANSWER}({texts[-1] if texts else ''})"])


async def one_mode(procs: Procs, redis: RedisServer, mode: str, turns: int, profile: Path | None = None) -> dict:
    proxy = await CountingProxy(redis.port).start()
    slack = FakeSlack()
    await slack.start()
    openai = FakeOpenAI(API_KEY)
    openai.default = _answer
    await openai.start()
    redis.reset()
    env = bot_env(
        slack_url=slack.api_url,
        openai_url=openai.base_url,
        redis_url=f"redis://127.0.0.1:{proxy.port}/0",
        port=free_port(),
        interval=0.05,
        updates_per_minute=100_000,
        signing_secret=SIGNING_SECRET,
        bot_token=slack.bot_token,
        api_key=API_KEY,
        lag_file=None,
    )
    env["ASSIST_BOT_STATE"] = mode
    bot = Bot(procs, env, name=f"state-{mode}", profile=profile)
    per_turn: list[dict] = []
    try:
        await asyncio.to_thread(bot.wait_healthy, 60)
        url = f"http://127.0.0.1:{bot.port}/slack/events"
        first = mention("C1", "U1", "turn 1")
        for n in range(1, turns + 1):
            event = first if n == 1 else message("C1", "U1", f"turn {n}", thread_ts=first["ts"])
            trips, up, down, cpu = proxy.round_trips, proxy.bytes_up, proxy.bytes_down, bot.cpu_seconds()
            status, _ = await post_signed(url, event_body(event), signing_secret=SIGNING_SECRET)
            assert status == 200, status
            await _answered(slack, first["ts"], n)
            await asyncio.sleep(0.05)  # end_turn lands after the final edit
            per_turn.append(
                {
                    "turn": n,
                    "round_trips": proxy.round_trips - trips,
                    "bytes_to_redis": proxy.bytes_up - up,
                    "bytes_from_redis": proxy.bytes_down - down,
                    "cpu_ms": round((bot.cpu_seconds() - cpu) * 1000, 1),
                    "request_input_items": len(openai.response_requests[-1].get("input") or []),
                }
            )
        history_bytes = redis.client.memory_usage(Keys().history(ThreadKey("T1", "C1", first["ts"]))) or 0
    finally:
        await asyncio.to_thread(bot.stop)
        await openai.stop()
        await slack.stop()
        await proxy.stop()
    return {"mode": mode, "per_turn": per_turn, "history_key_bytes": history_bytes, "at": _at(per_turn)}


async def _answered(slack: FakeSlack, thread_ts: str, n: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    want = f" turn {n})"
    while time.monotonic() < deadline:
        replies = [m for m in slack.bot_messages("C1") if m.thread_ts == thread_ts]
        if len(replies) >= n and want in replies[n - 1].text:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError(f"turn {n} was not answered in {seconds}s")


def _at(per_turn: list[dict]) -> dict:
    """Turns 1, 10 and 100 (each the mean of it and its two neighbours, to smooth the noise)."""
    out = {}
    for k in CHECKPOINTS:
        window = [t for t in per_turn if abs(t["turn"] - k) <= 1 and (k > 1 or t["turn"] == 1)]
        if window:
            out[str(k)] = {
                key: round(sum(t[key] for t in window) / len(window), 1)
                for key in ("round_trips", "bytes_to_redis", "bytes_from_redis", "cpu_ms", "request_input_items")
            }
    return out


async def scenario(
    procs: Procs, redis: RedisServer, *, turns: int = 100, modes: tuple[str, ...] = (), profile: Path | None = None
) -> list:
    modes = modes or ("conversation", "local")
    return [
        await one_mode(procs, redis, mode, turns, profile.with_suffix(f".{mode}.prof") if profile else None)
        for mode in modes
    ]


def report(results: list[dict]) -> None:
    print("\nstate modes: per turn at thread length 1 / 10 / 100")
    for r in results:
        for k, v in r["at"].items():
            print(
                f"  {r['mode']:<15} turn {k:>3}: {v['round_trips']:>4} round trips, "
                f"{v['bytes_to_redis']:>7} B to / {v['bytes_from_redis']:>7} B from Redis, "
                f"{v['cpu_ms']:>6} ms CPU, {v['request_input_items']:>4} input items"
            )
        print(f"  {r['mode']:<15} history key at the end: {r['history_key_bytes']} B")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    p.add_argument("--turns", type=int, default=100)
    p.add_argument("--modes", default="conversation,local")
    p.add_argument("--out", default=None)
    p.add_argument("--profile", default=None, help="run the bot under cProfile, written to PROFILE.<mode>.prof")
    a = p.parse_args(argv)
    procs = Procs(Path(tempfile.mkdtemp(prefix="assist-bot-bench-state-")))
    try:
        redis = RedisServer(procs)
        profile = Path(a.profile) if a.profile else None
        results = asyncio.run(scenario(procs, redis, turns=a.turns, modes=tuple(a.modes.split(",")), profile=profile))
    finally:
        procs.close()
    report(results)
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
