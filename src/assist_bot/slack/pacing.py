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

A limit Slack does not publish is learned instead (`Pacer(per_minute=None)`, the default for
chat.appendStream, whose "Tier 4, 100+ per minute" does not say whether it counts per workspace or
per stream): appends go out at each stream's own pace until Slack answers one with a 429; from
then on that workspace gets a little less than what went through in the minute before, shared
fairly as above, growing back while Slack stays quiet. A configured limit is a ceiling that a
429 lowers the same way. What one replica learns, every replica sharing the store paces by
(`limited` returns the lesson, `heard` takes another replica's; slack/calls.py carries them):
one 429 teaches the whole deployment, instead of each replica drawing its own.

New messages have a limit of their own, per channel (`PostPacer`): about one a second, with
short bursts, kept in the store so that every replica posting in a channel shares it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from assist_bot.store.base import ChannelKey, SlackLesson, Store

log = logging.getLogger(__name__)

# A reply that has not asked again for this long no longer waits in line (it ended, or has
# nothing to show): a token is never held for it.
STALE = 5.0

# What a 429 teaches. The calls Slack took in the last minute are counted; after a 429 the workspace's
# limit becomes BACK_OFF times that count (never below the method's published floor: a 429 under
# it means another replica's calls share the budget, not that Slack allows less), then grows by
# GROWTH for every minute without another 429, and is forgotten after FORGET_AFTER s of quiet.
WINDOW = 60.0
BACK_OFF = 0.8
GROWTH = 1.5
FORGET_AFTER = 1800.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class _Learned:
    per_minute: float
    at: float  # when Slack last said "too many"
    taken: int = 0  # calls let out since
    lesson: str = ""  # the id of the lesson this is (this replica's own, or one heard from another)


class Pacer:
    """Token buckets per key (workspace) that never exceed the key's limit in any
    60-second window: a burst of a fifth of it, refilled at the rest. The limit is
    `per_minute` (split between replicas), or what a 429 taught (`limited`), or none
    (`per_minute=None` and no 429 yet: every call may go).

    `clock` and `sleep` are injectable so tests can assert how long a call waited
    without waiting for real."""

    def __init__(
        self,
        *,
        per_minute: float | None,
        floor: float = 10.0,
        method: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._method = method or "this method"  # for the log
        self._clock = clock
        self._sleep = sleep
        self._budget, self._floor_budget = per_minute, floor
        self._buckets: dict[str, _Bucket] = {}
        self._sent: dict[str, deque[float]] = {}  # per key: when Slack took each call of the last minute
        self._learned: dict[str, _Learned] = {}
        self._open: dict[str, int] = {}
        # Per key: each reply waiting for an optional token → (waiting since: its last visible
        # update or its first ask, last asked); and when each reply last got one.
        self._line: dict[str, dict[Hashable, tuple[float, float]]] = {}
        self._last: dict[str, dict[Hashable, float]] = {}
        self.share(1)

    def share(self, replicas: int) -> None:
        """Split the workspace budget between this many live replicas (each paces its own
        edits; together they stay within Slack's limit), and the floor a 429 cannot push
        it under. A learned limit is already this replica's own: it is not split again."""
        self._replicas = max(1, replicas)
        self.per_minute = None if self._budget is None else self._budget / self._replicas
        self._floor = self._floor_budget / self._replicas

    def limit(self, key: str) -> float | None:
        """Calls per minute allowed in this workspace now; None: no limit known."""
        learned = self._learned.get(key)
        if learned is None:
            return self.per_minute
        quiet = self._clock() - learned.at
        if quiet >= FORGET_AFTER:
            del self._learned[key]
            return self.per_minute
        grown = learned.per_minute * GROWTH ** int(quiet // WINDOW)
        return grown if self.per_minute is None else min(grown, self.per_minute)

    def limited(self, key: str) -> SlackLesson | None:
        """Slack answered a call in this workspace with a 429: from now on it gets a little less
        than what Slack accepted in the last minute. Calls already on their way when it learned
        do not teach it again; a call made at the new pace that still draws a 429 does.
        Returns the lesson, for the other replicas (None: nothing new)."""
        learned = self._learned.get(key)
        if learned is not None and learned.taken == 0:
            return None
        now = self._clock()
        current = self.limit(key)
        accepted = float(len(self._recent(key, now)))
        observed = accepted if current is None else min(accepted, current)
        part = max(self._floor, BACK_OFF * observed)
        # The lesson is the workspace's limit, this replica's part × the live replicas: replicas
        # pace to equal parts of a workspace's budget (`share`), so that is the budget whose part
        # this one now paces at. Each replica hearing it takes its part by its own count (`heard`),
        # as it splits a configured budget — still right when replicas come or go before they
        # hear it, where a part stored as such would not be. A replica that carried more than its
        # part of the traffic makes the lesson generous: the next 429, on any replica, corrects
        # it (a pause, never text); one that carried less, cautious: it grows back each minute.
        lesson = SlackLesson(uuid.uuid4().hex, part * self._replicas, lasts=FORGET_AFTER)
        self._learned[key] = _Learned(part, now, lesson=lesson.id)
        self._buckets[key] = _Bucket(0.0, now)  # Slack just said "not now": the burst is spent
        log.info("Slack limits %s in %s: pacing it at %.0f a minute", self._method, key, part)
        return lesson

    def heard(self, key: str, lesson: SlackLesson) -> None:
        """Another replica learned this workspace's limit from a 429 (`limited` there, shared
        through the store): pace as if this one had — at its part of that limit, growing back
        from when it was learned. A lesson already taken (or this replica's own), or older than
        what this replica knows, changes nothing."""
        now = self._clock()
        at = now - lesson.age
        known = self._learned.get(key)
        if known is not None and (known.lesson == lesson.id or known.at >= at):
            return
        part = max(self._floor, lesson.per_minute / self._replicas)
        self._learned[key] = _Learned(part, at, lesson=lesson.id)
        if lesson.age < WINDOW:  # Slack said "not now" within the minute: the workspace's burst is spent
            self._buckets[key] = _Bucket(0.0, now)
        log.info("Slack limits %s in %s (another replica's 429): pacing it at %.0f a minute", self._method, key, part)

    def accepted(self, key: str) -> None:
        """Slack took a call in this workspace (what a 429 learns from)."""
        now = self._clock()
        self._recent(key, now).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        sent = self._sent.setdefault(key, deque())
        while sent and now - sent[0] > WINDOW:
            sent.popleft()
        return sent

    def _count(self, key: str) -> None:
        if (learned := self._learned.get(key)) is not None:
            learned.taken += 1

    def opened(self, key: str) -> None:
        """A reply started streaming in this workspace: keep a token for its final edit."""
        self._open[key] = self._open.get(key, 0) + 1

    def closed(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def _reserve(self, key: str, capacity: float) -> float:
        return min(capacity - 1, max(1, self._open.get(key, 0)))

    def can_take(self, key: str) -> bool:
        """Would `try_take` succeed now? (Checked before rendering, which is not free.)"""
        refilled = self._refill(key)
        if refilled is None:
            return True
        bucket, capacity, _ = refilled
        return bucket.tokens - 1 >= self._reserve(key, capacity)

    def _refill(self, key: str) -> tuple[_Bucket, float, float] | None:
        """The key's bucket brought up to now, with its burst and refill rate (per second);
        None while no limit is known."""
        limit = self.limit(key)
        if limit is None:
            return None
        capacity = max(1.0, limit / 5)
        # burst + refill over any 60 s ≤ the limit, even against a strict sliding window
        rate = max(limit - capacity, 1.0) / WINDOW
        bucket = self._buckets.get(key)
        now = self._clock()
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        return bucket, capacity, rate

    def try_take(self, key: str, reply: Hashable | None = None) -> bool:
        """A token for an edit that may be skipped: only above the reserve. A `reply` that names
        itself waits in line: it gets a token only while fewer replies have waited longer."""
        refilled = self._refill(key)
        if refilled is None:
            self._count(key)
            return True
        bucket, capacity, _ = refilled
        free = int(bucket.tokens - self._reserve(key, capacity))
        if reply is not None and not self._in_turn(key, reply, free):
            return False
        if free < 1:
            return False
        bucket.tokens -= 1
        self._count(key)
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
            refilled = self._refill(key)
            if refilled is None:
                self._count(key)
                return
            bucket, _, rate = refilled
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                self._count(key)
                return
            await self._sleep((1 - bucket.tokens) / rate)


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
