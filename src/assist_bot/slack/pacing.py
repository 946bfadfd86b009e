"""Slack's rate limits, respected by design rather than by retrying 429s.

chat.update is a Tier 3 method: about 50 calls per minute per workspace, with
sporadic bursts. Every streaming reply in a workspace shares that budget, so a
token bucket per workspace decides who may edit now:

- an intermediate edit (`try_take`) only goes out when the bucket has tokens
  beyond a reserve of one per reply still open in the workspace; otherwise it is
  skipped and its text coalesces into a later edit — streaming just gets coarser
  when the workspace is busy;
- a final edit (`take`) waits for a token, and the reserve makes that wait short:
  final answers come before progress;
- fairly: when replies name themselves (`try_take(key, reply)`), a free token goes to the
  reply that has waited longest since its last visible update (round-robin), so every open
  answer advances as evenly as the budget allows instead of a few lucky ones taking it all.

New messages have a limit of their own, per channel (`PostPacer`): about one a second, with
short bursts, kept in the store so that every replica posting in a channel shares it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from assist_bot.store.base import ChannelKey, Store

log = logging.getLogger(__name__)

# A reply that has not asked again for this long no longer waits in line (it ended, or has
# nothing to show): a token is never held for it.
STALE = 5.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class Pacer:
    """Token buckets per key (workspace) that never exceed `per_minute` calls in
    any 60-second window: a burst of `per_minute / 5`, refilled at the rest.

    `clock` and `sleep` are injectable so tests can assert how long a call waited
    without waiting for real."""

    def __init__(
        self,
        *,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._budget = per_minute
        self._buckets: dict[str, _Bucket] = {}
        self._open: dict[str, int] = {}
        # Per key: each reply waiting for an optional token → (waiting since: its last visible
        # update or its first ask, last asked); and when each reply last got one.
        self._line: dict[str, dict[Hashable, tuple[float, float]]] = {}
        self._last: dict[str, dict[Hashable, float]] = {}
        self.share(1)

    def share(self, replicas: int) -> None:
        """Split the workspace budget between this many live replicas (each paces its own
        edits; together they stay within Slack's limit)."""
        self.per_minute = self._budget / max(1, replicas)
        self._capacity = max(1.0, self.per_minute / 5)
        # burst + refill over any 60 s ≤ per_minute, even against a strict sliding window
        self._rate = max(self.per_minute - self._capacity, 1.0) / 60.0

    def opened(self, key: str) -> None:
        """A reply started streaming in this workspace: keep a token for its final edit."""
        self._open[key] = self._open.get(key, 0) + 1

    def closed(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def _reserve(self, key: str) -> float:
        return min(self._capacity - 1, max(1, self._open.get(key, 0)))

    def can_take(self, key: str) -> bool:
        """Would `try_take` succeed now? (Checked before rendering, which is not free.)"""
        return self._refill(key).tokens - 1 >= self._reserve(key)

    def _refill(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        now = self._clock()
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._capacity, now)
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        return bucket

    def try_take(self, key: str, reply: Hashable | None = None) -> bool:
        """A token for an edit that may be skipped: only above the reserve. A `reply` that names
        itself waits in line: it gets a token only while fewer replies have waited longer."""
        bucket = self._refill(key)
        free = int(bucket.tokens - self._reserve(key))
        if reply is not None and not self._in_turn(key, reply, free):
            return False
        if free < 1:
            return False
        bucket.tokens -= 1
        return True

    def _in_turn(self, key: str, reply: Hashable, free: int) -> bool:
        now = self._clock()
        line = self._line.setdefault(key, {})
        since = line[reply][0] if reply in line else self._last.get(key, {}).get(reply, now)
        line[reply] = (since, now)
        for stale in [r for r, (_, asked) in line.items() if now - asked > STALE]:
            del line[stale]  # it ended, or has nothing more to show
        ahead = sum(1 for s, _ in line.values() if s < since)
        if free < 1 or ahead >= free:
            return False
        del line[reply]
        self._last.setdefault(key, {})[reply] = now
        return True

    def shown(self, key: str, reply: Hashable) -> None:
        """The reply's text changed visibly (its first text, a required append): it waits anew."""
        now = self._clock()
        self._last.setdefault(key, {})[reply] = now
        line = self._line.get(key)
        if line is not None and reply in line:
            line[reply] = (now, line[reply][1])

    def forget(self, key: str, reply: Hashable) -> None:
        """The reply ended: it leaves the line."""
        for table in (self._line, self._last):
            entries = table.get(key)
            if entries is not None:
                entries.pop(reply, None)
                if not entries:
                    del table[key]

    async def take(self, key: str) -> None:
        """A token for an edit that must happen (the final one): wait for it."""
        while True:
            bucket = self._refill(key)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            await self._sleep((1 - bucket.tokens) / self._rate)


class PostPacer:
    """New messages at Slack's pace per channel — chat.postMessage allows about one a second
    in a channel, with short bursts — on every replica: each post takes the channel's next
    slot in the store (Store.reserve_post) and waits until it comes. A burst of answers in one
    channel then goes out one a second instead of drawing 429s."""

    METHODS = frozenset({"chat.postMessage"})

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 1.0,
        burst: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._interval = interval
        self._burst = burst
        self._sleep = sleep

    async def take(self, team: str, channel: str) -> float:
        """Wait for the channel's next slot; returns how long that was."""
        try:
            async with asyncio.timeout(5):
                wait = await self._store.reserve_post(
                    ChannelKey(team, channel), interval=self._interval, burst=self._burst
                )
        except Exception as exc:  # no store, no shared pace: Slack's 429s (RateGate) still hold posts back
            log.warning("posts in %s are not paced right now (store: %s)", channel, type(exc).__name__)
            return 0.0
        if wait > 0:
            await self._sleep(wait)
        return wait
