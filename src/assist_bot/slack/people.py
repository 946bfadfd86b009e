"""Who is speaking: Slack user id → display name (for the model's input) and whether the
person is a workspace admin or owner (for `/assist` changes when no admins are configured).

Looked up with users.info when a turn starts or a command runs — never on the ack path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from assist_bot.slack.clients import SlackClients

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    is_workspace_admin: bool  # admin, owner or primary owner of the workspace


class People:
    """users.info with a small time-bounded cache and one lookup per person at a time.

    The cache only saves users.info calls (Tier 4); a stale name is harmless, so it
    is fine for it to live per process. Admin checks always look again (`fresh`).
    Ten messages from one person arriving together share one call (single-flight).
    """

    def __init__(self, clients: SlackClients, *, ttl: float = 3600, size: int = 5000) -> None:
        self._clients = clients
        self._ttl = ttl
        self._size = size
        self._cache: dict[tuple[str, str], tuple[Person, float]] = {}
        self._lookups: dict[tuple[str, str], asyncio.Task[Person | None]] = {}

    async def name(self, team: str, user: str) -> str:
        person = await self.person(team, user)
        return person.name if person else user

    async def is_workspace_admin(self, team: str, user: str) -> bool:
        person = await self.person(team, user, fresh=True)
        return bool(person and person.is_workspace_admin)

    async def person(self, team: str, user: str, *, fresh: bool = False) -> Person | None:
        """The person, or None when Slack could not tell (the failure is not cached)."""
        key = (team, user)
        cached = self._cache.get(key)
        if not fresh and cached and cached[1] > time.monotonic():
            return cached[0]
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.create_task(self._lookup(team, user), name=f"users.info {user}")
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        # Shielded: one waiter giving up (its turn cancelled) does not cancel the others' lookup.
        person = await asyncio.shield(lookup)
        if person is not None:
            if len(self._cache) >= self._size:
                self._cache.clear()
            self._cache[key] = (person, time.monotonic() + self._ttl)
        return person

    async def _lookup(self, team: str, user: str) -> Person | None:
        try:
            client = await self._clients.for_team(team)  # a user is looked up in their own workspace
            response = await client.users_info(user=user)
        except SlackApiError as exc:
            log.info("users.info for %s failed: %s", user, exc.response.get("error"))
            return None
        except Exception as exc:  # a name is not worth failing a turn for: the id stands in
            log.warning("users.info for %s failed: %s", user, type(exc).__name__)
            return None
        info = response.get("user") or {}
        profile = info.get("profile") or {}
        name = (
            profile.get("display_name") or profile.get("real_name") or info.get("real_name") or info.get("name") or user
        )
        admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
        return Person(name=name, is_workspace_admin=admin)
