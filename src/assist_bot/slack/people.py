"""Who is speaking: Slack user id → display name, for the model's input."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from assist_bot.slack.clients import SlackClients

log = logging.getLogger(__name__)


class People:
    """Display names with a small time-bounded cache.

    The cache only saves users.info calls (Tier 4); a stale name is harmless,
    so it is fine for it to live per process.
    """

    def __init__(self, clients: SlackClients, *, ttl: float = 3600, size: int = 5000) -> None:
        self._clients = clients
        self._ttl = ttl
        self._size = size
        self._names: dict[tuple[str, str], tuple[str, float]] = {}

    async def name(self, team: str, user: str) -> str:
        cached = self._names.get((team, user))
        if cached and cached[1] > time.monotonic():
            return cached[0]
        name = await self._lookup(team, user)
        if len(self._names) >= self._size:
            self._names.clear()
        self._names[(team, user)] = (name, time.monotonic() + self._ttl)
        return name

    async def _lookup(self, team: str, user: str) -> str:
        try:
            client = await self._clients.for_team(team)  # a user is looked up in their own workspace
            response = await client.users_info(user=user)
        except SlackApiError as exc:
            log.info("users.info for %s failed: %s", user, exc.response.get("error"))
            return user
        info = response.get("user") or {}
        profile = info.get("profile") or {}
        return (
            profile.get("display_name") or profile.get("real_name") or info.get("real_name") or info.get("name") or user
        )
