"""Slack calls made while a reply streams: contained, and paced by Slack's own 429s.

Every failure of a call — an API error, a dropped connection, a time-out — comes back as an
`Outcome` instead of an exception, so a reply can always decide what to do next and always end.

A 429 pauses that method for that workspace (`RateGate`): every later call of it waits until
`Retry-After` has passed, instead of each call retrying on its own inside the announced wait.
Calls that must go through (the final text) wait and try again; the others give up and let
their content coalesce into a later call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# How long a call that must go through keeps trying while Slack only asks it to wait, and how
# many times it retries a failure that is not a 429 (a dropped connection, a 5xx, a time-out).
MUST_DEADLINE = 300.0
MUST_RETRIES = 3
RETRY_BACKOFF = 0.2


@dataclass(frozen=True, slots=True)
class Outcome:
    response: dict[str, Any] | None = None
    error: str | None = None  # Slack's error name, or "connection" for a failure on the way

    @property
    def ok(self) -> bool:
        return self.error is None


class RateGate:
    """When each (workspace, method) may be called again after a 429."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._until: dict[tuple[str, str], float] = {}

    def pause(self, team: str, method: str, seconds: float) -> None:
        key = (team, method)
        self._until[key] = max(self._until.get(key, 0.0), self._clock() + max(seconds, 0.0))

    def wait_time(self, team: str, method: str) -> float:
        return max(0.0, self._until.get((team, method), 0.0) - self._clock())

    async def wait(self, team: str, method: str) -> None:
        while (left := self.wait_time(team, method)) > 0:
            await self._sleep(left)


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
    """Runs reply calls through the gate; never raises for a failed call."""

    def __init__(self, gate: RateGate, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.gate = gate
        self._sleep = sleep

    async def run(self, team: str, method: str, call: Callable[[], Awaitable[Any]], *, must: bool = False) -> Outcome:
        """One call of `method` (made by `call`). With `must`, a 429 is waited out (up to
        MUST_DEADLINE) and other failures on the way are retried a few times."""
        waited = retries = 0.0
        while True:
            before = self.gate.wait_time(team, method)
            await self.gate.wait(team, method)
            waited += before
            outcome = await self._once(team, method, call)
            if outcome.ok or not must:
                return outcome
            if outcome.error == "ratelimited":
                if waited > MUST_DEADLINE:
                    return outcome
                continue
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
                self.gate.pause(team, method, _retry_after(exc))
                log.info("%s is rate limited in %s: pausing it", method, team)
                return Outcome(error="ratelimited")
            log.warning("%s in %s failed: %s", method, team, error)
            return Outcome(error=error)
        except (aiohttp.ClientError, TimeoutError, SlackClientError, OSError) as exc:
            log.warning("%s in %s failed on the way: %s", method, team, type(exc).__name__)
            return Outcome(error="connection")
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
        retry_handlers=[],
    )
