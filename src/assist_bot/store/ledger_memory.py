"""In-process twin of the ledger (one process; lost on restart, like the memory store)."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Sequence

from assist_bot.store.ledger import TOKENS, Ledger, LedgerKeys, Owner, Resource, UsageEntry
from assist_bot.store.memory import MemoryStore


class MemoryLedger(Ledger):
    # No awaits inside a method: each is atomic on the event loop, as a MULTI is in Redis.

    def __init__(
        self,
        store: MemoryStore,
        keys: LedgerKeys | None = None,
    ) -> None:
        super().__init__(keys)
        self._store = store  # its keys go too when a workspace is removed
        self._clock = store._clock  # leases expire by the store's clock (tests move it by hand)
        self._hashes: dict[str, dict[str, int]] = defaultdict(dict)
        self._tops: dict[str, dict[str, int]] = defaultdict(dict)
        self._last_use: dict[str, dict[str, float]] = defaultdict(dict)  # team → owner token → time
        self._owned: dict[str, set[str]] = defaultdict(set)
        self._leases: dict[str, tuple[str, float]] = {}
        self._teams: set[str] = set()

    async def record(self, entry: UsageEntry, *, now: float) -> dict[str, int]:
        after: dict[str, int] = {}
        for scope in entry.scopes:
            figures = self._hashes[self.keys.usage(entry.team, entry.month, scope)]
            for name, value in {**entry.counts, TOKENS: entry.counts.get(TOKENS, 0)}.items():
                if value or name == TOKENS:
                    figures[name] = figures.get(name, 0) + value
            after[scope] = figures[TOKENS]
        for kind, member in entry.ranked.items():
            top = self._tops[self.keys.top(entry.team, entry.month, kind)]
            top[member] = top.get(member, 0) + entry.counts.get(TOKENS, 0)
        for owner, resource in entry.resources:
            self._owned[self.keys.owned(owner)].add(resource.token)
            self._teams.add(owner.team)
        for owner in {*entry.touched, *(owner for owner, _ in entry.resources)}:
            self._touch(owner, now)
        return after

    def _touch(self, owner: Owner, now: float) -> None:
        uses = self._last_use[owner.team]
        uses[owner.token] = max(now, uses.get(owner.token, now))

    async def usage(self, team: str, month: str, scopes: Sequence[str]) -> dict[str, dict[str, int]]:
        return {
            scope: {
                k: v
                for k, v in self._hashes.get(self.keys.usage(team, month, scope), {}).items()
                if not k.startswith("flag:")
            }
            for scope in scopes
        }

    async def top(self, team: str, month: str, kind: str, n: int) -> list[tuple[str, int]]:
        ranked = self._tops.get(self.keys.top(team, month, kind), {})
        return sorted(ranked.items(), key=lambda item: (-item[1], item[0]))[:n]

    async def mark_once(self, team: str, month: str, scope: str, flag: str) -> bool:
        figures = self._hashes[self.keys.usage(team, month, scope)]
        if f"flag:{flag}" in figures:
            return False
        figures[f"flag:{flag}"] = 1
        return True

    async def add_resource(self, owner: Owner, resource: Resource, *, now: float) -> None:
        self._owned[self.keys.owned(owner)].add(resource.token)
        self._touch(owner, now)
        self._teams.add(owner.team)

    async def resources(self, owner: Owner) -> list[Resource]:
        return sorted(Resource.parse(t) for t in self._owned.get(self.keys.owned(owner), ()))

    async def owners(self, team: str, *, channel: str | None = None) -> dict[Owner, float]:
        owners = {Owner.parse(team, token): when for token, when in self._last_use.get(team, {}).items()}
        return {o: t for o, t in owners.items() if channel is None or o.channel == channel}

    async def remove_resources(self, owner: Owner, resources: Sequence[Resource]) -> None:
        key = self.keys.owned(owner)
        left = self._owned.get(key, set()) - {r.token for r in resources}
        if left:
            self._owned[key] = left
            return
        self._owned.pop(key, None)
        self._last_use.get(owner.team, {}).pop(owner.token, None)

    async def teams(self) -> list[str]:
        return sorted(self._teams)

    async def drop_team(self, team: str) -> int:
        patterns = self.keys.team_patterns(team)

        def mine(key: str) -> bool:
            return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)

        count = 0
        for table in (self._hashes, self._tops, self._owned):
            for key in [k for k in table if mine(k)]:
                del table[key]
                count += 1
        count += 1 if self._last_use.pop(team, None) else 0
        self._teams.discard(team)
        doomed = [key for key in self._store._kv.keys() if mine(key)]  # the twin's keys follow the same layout
        for key in doomed:
            self._store._kv.pop(key)
        return count + len(doomed)

    async def delete_keys(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._store._kv.pop(key)

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        current = self._leases.get(name)
        if current is not None and current[1] > self._clock():
            return False
        self._leases[name] = (holder, self._clock() + ttl)
        return True

    async def refresh_lease(self, name: str, holder: str, ttl: float) -> bool:
        current = self._leases.get(name)
        if current is None or current[0] != holder or current[1] <= self._clock():
            return False
        self._leases[name] = (holder, self._clock() + ttl)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        if self._leases.get(name, ("", 0.0))[0] == holder:
            del self._leases[name]
