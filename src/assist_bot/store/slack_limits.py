"""Slack's rate limits, shared by every replica through the store.

- A method Slack paused for a workspace (HTTP 429 + Retry-After): one key per team and
  method, living exactly as long as the wait (PX), so every replica reads the pause with
  one cheap PTTL before calling the method.
- What that 429 taught the replica that drew it about the method's limit (a SlackLesson), for
  the others: one key beside the pause, in its slot, living as long as the lesson holds. The
  read before each call gets it with the pause in the same round trip; its age is what its TTL
  has run down, on the server's clock.
- The pace of new messages per channel (chat.postMessage: about one a second, short bursts):
  a GCRA — one number per channel, the time the next slot frees up — that each post moves
  on by one interval. Reserving a slot ahead tells a poster exactly how long to wait, so
  concurrent posters queue up instead of polling. On Redis the server's own clock is used,
  so replicas with skewed clocks still agree.

Both twins' sides are here (RedisSlackLimits, MemorySlackLimits): each store delegates to its own.
"""

from __future__ import annotations

import math
from dataclasses import replace

from assist_bot.store.base import ChannelKey, SlackLesson, SlackLimits, decode, encode
from assist_bot.store.expiring import Expiring
from assist_bot.store.keys import Keys
from assist_bot.store.redis_client import Client


def next_slot(tat: float | None, now: float, *, interval: float, burst: int) -> tuple[float, float]:
    """GCRA over a theoretical arrival time `tat`: (the new tat, how long to wait first).
    `burst` slots are free at once, then one per `interval`."""
    tat = now if tat is None or tat < now else tat
    wait = max(0.0, tat - (burst - 1) * interval - now)
    return tat + interval, wait


# KEYS[1]: the channel's pace key. ARGV: interval (ms), burst. Returns the wait (ms).
# The same arithmetic as next_slot, on the server's clock; the key lives until its slot is past.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - (burst - 1) * interval - now
if wait < 0 then wait = 0 end
tat = tat + interval
redis.call('SET', KEYS[1], tat, 'PX', tat - now)
return wait
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisSlackLimits:
    """The Redis side of Store.pause_slack_method / slack_method_limits / reserve_post."""

    def __init__(self, client: Client, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._reserve = client.register_script(_RESERVE)

    async def pause(self, team: str, method: str, seconds: float, lesson: SlackLesson | None) -> None:
        holds = 0.0 if lesson is None else lesson.lasts - lesson.age
        if seconds <= 0 and holds <= 0:
            return
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: one MULTI
            if seconds > 0:
                key, ms = self._keys.slack_pause(team, method), _ms(seconds)
                pipe.set(key, "1", px=ms, nx=True)  # a new pause…
                pipe.pexpire(key, ms, gt=True)  # …or a longer one; a shorter one leaves it as it is
            if lesson is not None and holds > 0:
                record = {"id": lesson.id, "per_minute": lesson.per_minute, "lasts": lesson.lasts}
                pipe.set(self._keys.slack_lesson(team, method), encode(record), px=_ms(holds))
            await pipe.execute()

    async def limits(self, team: str, method: str) -> SlackLimits:
        lesson_key = self._keys.slack_lesson(team, method)
        async with self._redis.pipeline(transaction=False) as pipe:  # one slot, so one node: one round trip
            pipe.pttl(self._keys.slack_pause(team, method))
            pipe.get(lesson_key)
            pipe.pttl(lesson_key)
            paused, raw, left = await pipe.execute()
        pause = paused / 1000 if paused > 0 else 0.0
        if raw is None or left <= 0:
            return SlackLimits(pause)
        record = decode(raw)
        lasts = float(record["lasts"])
        lesson = SlackLesson(str(record["id"]), float(record["per_minute"]), lasts, max(0.0, lasts - left / 1000))
        return SlackLimits(pause, lesson)

    async def reserve_post(self, channel: ChannelKey, *, interval: float, burst: int) -> float:
        wait = await self._reserve(keys=[self._keys.post_pace(channel)], args=[_ms(interval), max(1, burst)])
        return int(wait) / 1000


class MemorySlackLimits:
    """The memory side of the same three operations, on the memory twin's keyspace and clock."""

    def __init__(self, kv: Expiring, keys: Keys) -> None:
        self._kv = kv
        self._keys = keys

    def pause(self, team: str, method: str, seconds: float, lesson: SlackLesson | None) -> None:
        key = self._keys.slack_pause(team, method)
        if seconds > (self._kv.ttl(key) or 0.0):  # a longer pause already recorded stays
            self._kv.set(key, True, seconds)
        if lesson is not None and lesson.lasts > lesson.age:
            self._kv.set(self._keys.slack_lesson(team, method), lesson, lesson.lasts - lesson.age)

    def limits(self, team: str, method: str) -> SlackLimits:
        pause = max(0.0, self._kv.ttl(self._keys.slack_pause(team, method)) or 0.0)
        key = self._keys.slack_lesson(team, method)
        lesson: SlackLesson | None = self._kv.get(key)
        if lesson is None:
            return SlackLimits(pause)
        # Its age is what its TTL has run down, as on Redis.
        return SlackLimits(pause, replace(lesson, age=lesson.lasts - (self._kv.ttl(key) or 0.0)))

    def reserve_post(self, channel: ChannelKey, *, interval: float, burst: int) -> float:
        key, now = self._keys.post_pace(channel), self._kv.now()
        tat, wait = next_slot(self._kv.get(key), now, interval=interval, burst=max(1, burst))
        self._kv.set(key, tat, tat - now)
        return wait
