"""Slack calls made while a reply streams: contained, and paced by Slack's own 429s.

Every failure of a call — an API error, a dropped connection, a time-out — comes back as an
`Outcome` instead of an exception, so a reply can always decide what to do next and always end.

A 429 pauses that method for that workspace (`RateGate`) on every replica sharing the store:
every later call of it, here or elsewhere, waits until `Retry-After` has passed, instead of
each call retrying on its own inside the announced wait. What the 429 taught the method's
pacer about the workspace's limit goes into the store with the pause and reaches every replica
with the pause read it makes before each call (`SlackCalls` hands it to its pacer). New
messages are paced per channel ahead of time (slack/pacing.py `PostPacer`), so a burst of
answers in one channel draws no 429 at all. Calls that must go through (the final text) wait
out every 429, however many; the others give up and let their content coalesce into a later call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.pacing import Pacer, PostPacer
from assist_bot.store import Store
from assist_bot.store.base import NO_SLACK_LIMITS, SlackLesson

log = logging.getLogger(__name__)

# How many times a call that must go through retries a failure that is not a 429 (a dropped
# connection, a 5xx, a time-out). A 429 is no failure: Slack only asks to wait, so it waits.
MUST_RETRIES = 3
RETRY_BACKOFF = 0.2
# A store that does not answer must not hold up a reply: the pause is then this replica's own.
STORE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Outcome:
    response: dict[str, Any] | None = None
    error: str | None = None  # Slack's error name, or "connection" for a failure on the way

    @property
    def ok(self) -> bool:
        return self.error is None


class RateGate:
    """When a call of a method may go out in a workspace: not while Slack has paused the method
    there (429 + Retry-After, recorded in the store so every replica honours it), and for a new
    message (chat.postMessage) not before its channel's next slot."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        posts: PostPacer | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._posts = posts or (PostPacer(store, sleep=sleep) if store is not None else None)
        # This replica's own pauses: read without a round trip, and enough when the store is down.
        self._until: dict[tuple[str, str], float] = {}
        # Per method: the lesson read with its pause, until `lesson` takes it.
        self._lessons: dict[tuple[str, str], SlackLesson] = {}
        self._store_failing = False

    async def pause(self, team: str, method: str, seconds: float, *, lesson: SlackLesson | None = None) -> None:
        """Slack answered 429; `lesson`: what it taught this replica, for the others."""
        key = (team, method)
        self._until[key] = max(self._until.get(key, 0.0), self._clock() + max(seconds, 0.0))
        if self._store is not None:
            await self._shared(self._store.pause_slack_method(team, method, seconds, lesson=lesson), None)

    async def wait_time(self, team: str, method: str) -> float:
        local = max(0.0, self._until.get((team, method), 0.0) - self._clock())
        if self._store is None:
            return local
        # The lesson rides on this read, made before every call anyway: a replica hears another's
        # 429 at its next call of the method in the workspace — while that 429's pause still holds
        # it back, so its first call after the pause is already paced — at no extra round trip.
        # (The heartbeat, every few seconds, would hear it late: a Retry-After of a second or two
        # is over by then, and the replica's own 429 has been drawn.)
        shared = await self._shared(self._store.slack_method_limits(team, method), NO_SLACK_LIMITS)
        if shared.lesson is not None:
            self._lessons[(team, method)] = shared.lesson
        return max(local, shared.pause)

    def lesson(self, team: str, method: str) -> SlackLesson | None:
        """The last lesson about the method's limit in the workspace read with its pause (once)."""
        return self._lessons.pop((team, method), None)

    async def wait(self, team: str, method: str, *, channel: str | None = None, patient: bool = True) -> bool:
        """Until the call may go: the channel's slot (taken once per call), then any pause of the
        method — read again after each wait, since another replica may have extended it. A call
        that is not `patient` does not wait out a pause: False, and it is not made."""
        left = await self.wait_time(team, method)
        if left > 0 and not patient:
            return False
        if channel is not None and method in PostPacer.METHODS and self._posts is not None:
            if await self._posts.take(team, channel) > 0:
                left = await self.wait_time(team, method)  # time passed: read it again
        while left > 0:
            await self._sleep(left)
            left = await self.wait_time(team, method)
        return True

    async def _shared(self, operation: Awaitable[Any], fallback: Any) -> Any:
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                result = await operation
        except Exception as exc:  # the store is down or slow: pace by this replica's own pauses
            if not self._store_failing:
                log.warning("Slack pauses are not shared right now (store: %s)", type(exc).__name__)
            self._store_failing = True
            return fallback
        if self._store_failing:
            log.info("Slack pauses are shared again")
        self._store_failing = False
        return result


def _retry_after(exc: SlackApiError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                break
    return 1.0


class SlackCalls:
    """Runs reply calls through the gate; never raises for a failed call. A 429 also teaches
    the method's pacer (`pacers`, by method) how much Slack takes in that workspace."""

    def __init__(
        self,
        gate: RateGate,
        *,
        pacers: Mapping[str, Pacer] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gate = gate
        self._pacers = dict(pacers or {})
        self._sleep = sleep

    async def run(
        self,
        team: str,
        method: str,
        call: Callable[[], Awaitable[Any]],
        *,
        must: bool = False,
        channel: str | None = None,
    ) -> Outcome:
        """One call of `method` (made by `call`; `channel`: where a new message goes, for its
        pace). With `must`, every 429 is waited out and other failures on the way are retried
        a few times; without, a call of a paused method is not made ("ratelimited")."""
        retries = 0
        while True:
            may_go = await self.gate.wait(team, method, channel=channel, patient=must)
            lesson = self.gate.lesson(team, method)
            if lesson is not None and (pacer := self._pacers.get(method)) is not None:
                pacer.heard(team, lesson)  # another replica's 429 (or this one's, which it knows)
            if not may_go:
                # Paused by a 429: an optional call does not hold its reply up for the pause.
                return Outcome(error="ratelimited")
            outcome = await self._once(team, method, call)
            if outcome.ok or not must:
                return outcome
            if outcome.error == "ratelimited":
                continue  # Slack only asks to wait: the gate now holds the call until it may go
            if outcome.error not in ("connection", "internal_error", "fatal_error", "request_timeout"):
                return outcome  # Slack said no for a reason waiting will not change
            retries += 1
            if retries > MUST_RETRIES:
                return outcome
            await self._sleep(RETRY_BACKOFF * retries)

    async def _once(self, team: str, method: str, call: Callable[[], Awaitable[Any]]) -> Outcome:
        try:
            response = await call()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            status = getattr(exc.response, "status_code", 200)
            if status >= 500:
                log.warning("%s in %s failed: HTTP %s", method, team, status)
                return Outcome(error="connection")  # Slack's side failed: worth another try
            if status == 429 or error == "ratelimited":
                pacer = self._pacers.get(method)
                lesson = pacer.limited(team) if pacer is not None else None
                await self.gate.pause(team, method, _retry_after(exc), lesson=lesson)
                log.info("%s is rate limited in %s: pausing it", method, team)
                return Outcome(error="ratelimited")
            log.warning("%s in %s failed: %s", method, team, error)
            return Outcome(error=error)
        except (aiohttp.ClientError, TimeoutError, SlackClientError, OSError) as exc:
            log.warning("%s in %s failed on the way: %s", method, team, type(exc).__name__)
            return Outcome(error="connection")
        if (pacer := self._pacers.get(method)) is not None:
            pacer.accepted(team)
        data = getattr(response, "data", response)
        return Outcome(response=data if isinstance(data, dict) else {})


def without_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The workspace's client without the SDK's per-call retries: a reply's calls go through
    SlackCalls, which pauses a rate-limited method for the whole workspace instead."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        session=client.session,
        headers=client.headers,
        team_id=getattr(client, "team_id", None),
        logger=client.logger,
        # Handlers that only watch (the metrics counter) stay; the ones that retry go.
        retry_handlers=[h for h in client.retry_handlers or [] if getattr(h, "observes_only", False)],
    )
