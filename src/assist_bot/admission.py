"""Admission of turns: at most ASSIST_BOT_MAX_CONCURRENT_TURNS stream at once, shared
fairly by workspaces and by people.

Why fair: the limit is shared by every workspace the process serves. First come, first
served lets one user with 150 threads (or one workspace's burst) make everybody else
wait until all of theirs are answered. Here each free slot goes to the workspace with the
fewest running turns (ties: the one served longest ago), and within it to the user with
the fewest (same tie-break); each user's own turns keep their order. So a newcomer's turn
takes the next slot that frees, whatever is queued ahead of it.

Shares: from ten slots up, a tenth of them is kept from any one workspace, and another
tenth from any one person within a workspace (of 100: a workspace may hold 90 at once,
a person 80). So even when every running answer is long, another workspace or person
finds a free slot at once instead of waiting for one to end; the cost is idle slots
while one person alone is busy.

Why a turn can set its slot aside: a turn waiting for a person's Approve/Decline streams
nothing, possibly for minutes. Holding its slot meanwhile would let a hundred unanswered
approvals freeze every workspace. It hands the slot back and takes its turn in line again
when the decision arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator
from types import TracebackType


class Admission:
    """A fair counting semaphore. Single event loop; every method is atomic on it."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self._free = limit
        reserve = limit // 10
        self._team_cap = limit - reserve
        self._user_cap = limit - 2 * reserve
        self._running_teams: Counter[str] = Counter()
        self._running_users: Counter[tuple[str, str]] = Counter()
        # team → user → that user's waiting turns, oldest first
        self._waiting: dict[str, dict[str, deque[asyncio.Future[None]]]] = {}
        # When each team / user was last given a slot: breaks ties in favour of whoever
        # waited longest since. Kept only for parties with a turn running or waiting.
        self._clock = itertools.count(1)
        self._served_teams: dict[str, int] = {}
        self._served_users: dict[tuple[str, str], int] = {}

    @property
    def running(self) -> int:
        return sum(self._running_teams.values())

    @property
    def waiting(self) -> int:
        return sum(len(q) for users in self._waiting.values() for q in users.values())

    async def acquire(self, team: str, user: str) -> None:
        if self._free > 0 and not self._waiting and self._eligible(team, user):
            self._grant(team, user)
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(team, {}).setdefault(user, deque()).append(granted)
        self._wake()  # a slot may be free that those waiting ahead may not take (their share is full)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(team, user)  # granted just as we were cancelled: give it on
            else:
                self._forget(team, user, granted)
            raise

    def release(self, team: str, user: str) -> None:
        self._running_teams[team] -= 1
        self._running_users[(team, user)] -= 1
        if self._running_teams[team] <= 0:
            del self._running_teams[team]
        if self._running_users[(team, user)] <= 0:
            del self._running_users[(team, user)]
        self._free += 1
        self._tidy(team, user)
        self._wake()

    def slot(self, team: str, user: str) -> Slot:
        return Slot(self, team, user)

    # -- internals ---------------------------------------------------------------------
    def _grant(self, team: str, user: str) -> None:
        self._free -= 1
        self._running_teams[team] += 1
        self._running_users[(team, user)] += 1
        stamp = next(self._clock)
        self._served_teams[team] = stamp
        self._served_users[(team, user)] = stamp

    def _eligible(self, team: str, user: str) -> bool:
        return self._running_teams[team] < self._team_cap and self._running_users[(team, user)] < self._user_cap

    def _wake(self) -> None:
        while self._free > 0:
            candidates = [
                (team, [u for u in users if self._eligible(team, u)]) for team, users in self._waiting.items()
            ]
            candidates = [(team, users) for team, users in candidates if users]
            if not candidates:
                return  # nobody waits, or everyone waiting has their share
            team, users = min(candidates, key=lambda c: (self._running_teams[c[0]], self._served_teams.get(c[0], 0)))
            user = min(users, key=lambda u: (self._running_users[(team, u)], self._served_users.get((team, u), 0)))
            granted = self._waiting[team][user].popleft()
            self._drop_empty(team, user)
            self._grant(team, user)
            granted.set_result(None)

    def _forget(self, team: str, user: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(team, {}).get(user)
        if queue is not None and granted in queue:
            queue.remove(granted)
            self._drop_empty(team, user)
        self._tidy(team, user)

    def _drop_empty(self, team: str, user: str) -> None:
        users = self._waiting[team]
        if not users[user]:
            del users[user]
        if not users:
            del self._waiting[team]

    def _tidy(self, team: str, user: str) -> None:
        # Forget when a party was served once it has nothing running or waiting, so the
        # bookkeeping stays as small as the current load.
        if (team, user) not in self._running_users and user not in self._waiting.get(team, {}):
            self._served_users.pop((team, user), None)
        if team not in self._running_teams and team not in self._waiting:
            self._served_teams.pop(team, None)


class Slot:
    """One turn's place in the admission: held while it streams, set aside while it
    waits for people (several approvals of one turn may wait at once)."""

    def __init__(self, admission: Admission, team: str, user: str) -> None:
        self._admission = admission
        self._team = team
        self._user = user
        self._held = False
        self._aside = 0  # how many waits currently want the slot set aside
        self._resuming = asyncio.Lock()

    @property
    def held(self) -> bool:
        return self._held

    async def __aenter__(self) -> Slot:
        await self._admission.acquire(self._team, self._user)
        self._held = True
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._give_back()

    @contextlib.asynccontextmanager
    async def set_aside(self) -> AsyncIterator[None]:
        """Hand the slot back for the duration; take a place in line again afterwards."""
        self._aside += 1
        self._give_back()
        try:
            yield
        finally:
            self._aside -= 1
            await self._resume()

    async def _resume(self) -> None:
        async with self._resuming:  # one re-acquisition at a time
            if self._held or self._aside:
                return
            await self._admission.acquire(self._team, self._user)
            self._held = True
            if self._aside:  # another wait began while we stood in line
                self._give_back()

    def _give_back(self) -> None:
        if self._held:
            self._held = False
            self._admission.release(self._team, self._user)
