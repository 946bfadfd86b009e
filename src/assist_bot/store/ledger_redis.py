"""Redis twin of the ledger: a hash per month and scope, counted with HINCRBY."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from assist_bot.store import redis_scripts as scripts
from assist_bot.store.ledger import TOKENS, USAGE_TTL, Ledger, LedgerKeys, Owner, Resource, UsageEntry
from assist_bot.store.redis_client import text


class RedisLedger(Ledger):
    def __init__(self, client: aioredis.Redis | RedisCluster, keys: LedgerKeys | None = None) -> None:
        super().__init__(keys)
        self._redis = client
        # A lease is refreshed or released only by its holder (another replica may have taken
        # it after it expired): the thread locks' compare-and-set scripts.
        self._release = client.register_script(scripts.RELEASE)
        self._refresh = client.register_script(scripts.REFRESH)

    async def record(self, entry: UsageEntry, *, now: float) -> dict[str, int]:
        tokens_at: dict[str, int] = {}  # scope → index of its HINCRBY tokens reply
        async with self._redis.pipeline(transaction=True) as pipe:
            queued = 0  # commands in the pipeline so far (the cluster's pipeline has no command_stack)
            for scope in entry.scopes:
                key = self.keys.usage(entry.team, entry.month, scope)
                for name, value in entry.counts.items():
                    if name != TOKENS and value:
                        pipe.hincrby(key, name, value)
                        queued += 1
                tokens_at[scope] = queued
                pipe.hincrby(key, TOKENS, entry.counts.get(TOKENS, 0))
                pipe.expire(key, USAGE_TTL)
                queued += 2
            for kind, member in entry.ranked.items():
                top = self.keys.top(entry.team, entry.month, kind)
                pipe.zincrby(top, entry.counts.get(TOKENS, 0), member)
                pipe.expire(top, USAGE_TTL)
            for owner, resource in entry.resources:
                pipe.sadd(self.keys.owned(owner), resource.token)
            for owner in {*entry.touched, *(owner for owner, _ in entry.resources)}:
                pipe.zadd(self.keys.last_use(owner.team), {owner.token: now}, gt=True)
            replies = await pipe.execute()
        if entry.resources:  # the list of workspaces is one key of its own (another slot): after
            await self._redis.sadd(self.keys.teams(), *{owner.team for owner, _ in entry.resources})
        return {scope: int(replies[at]) for scope, at in tokens_at.items()}

    async def usage(self, team: str, month: str, scopes: Sequence[str]) -> dict[str, dict[str, int]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.hgetall(self.keys.usage(team, month, scope))
            replies = await pipe.execute()
        return {
            scope: {text(k): int(v) for k, v in raw.items() if not text(k).startswith("flag:")}
            for scope, raw in zip(scopes, replies, strict=True)
        }

    async def top(self, team: str, month: str, kind: str, n: int) -> list[tuple[str, int]]:
        ranked: list[Any] = await self._redis.zrevrange(self.keys.top(team, month, kind), 0, n - 1, withscores=True)
        return [(text(member), int(score)) for member, score in ranked]

    async def mark_once(self, team: str, month: str, scope: str, flag: str) -> bool:
        return bool(await self._redis.hsetnx(self.keys.usage(team, month, scope), f"flag:{flag}", 1))

    async def add_resource(self, owner: Owner, resource: Resource, *, now: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.owned(owner), resource.token)
            pipe.zadd(self.keys.last_use(owner.team), {owner.token: now}, gt=True)
            await pipe.execute()
        await self._redis.sadd(self.keys.teams(), owner.team)  # another slot on a cluster

    async def resources(self, owner: Owner) -> list[Resource]:
        return sorted(Resource.parse(text(t)) for t in await self._redis.smembers(self.keys.owned(owner)))

    async def owners(self, team: str, *, channel: str | None = None) -> dict[Owner, float]:
        ranked: list[Any] = await self._redis.zrange(self.keys.last_use(team), 0, -1, withscores=True)
        owners = {Owner.parse(team, text(token)): float(score) for token, score in ranked}
        return {o: t for o, t in owners.items() if channel is None or o.channel == channel}

    async def remove_resources(self, owner: Owner, resources: Sequence[Resource]) -> None:
        owned = self.keys.owned(owner)
        async with self._redis.pipeline(transaction=True) as pipe:
            if resources:
                pipe.srem(owned, *(r.token for r in resources))
            pipe.scard(owned)
            *_, left = await pipe.execute()
        if not left:
            await self._redis.zrem(self.keys.last_use(owner.team), owner.token)

    async def teams(self) -> list[str]:
        return sorted(text(t) for t in await self._redis.smembers(self.keys.teams()))

    async def drop_team(self, team: str) -> int:
        # SCAN, not KEYS: an uninstall must not block Redis for the other workspaces.
        doomed = [
            key
            for pattern in self.keys.team_patterns(team)
            async for key in self._redis.scan_iter(match=pattern, count=500)
        ]
        for start in range(0, len(doomed), 500):
            await self._redis.delete(*doomed[start : start + 500])
        await self._redis.srem(self.keys.teams(), team)
        return len(doomed)

    async def delete_keys(self, keys: Sequence[str]) -> None:
        if keys:
            await self._redis.delete(*keys)

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        return bool(await self._redis.set(self.keys.lease(name), holder, nx=True, px=int(ttl * 1000)))

    async def refresh_lease(self, name: str, holder: str, ttl: float) -> bool:
        return bool(await self._refresh(keys=[self.keys.lease(name)], args=[holder, int(ttl * 1000)]))

    async def release_lease(self, name: str, holder: str) -> None:
        await self._release(keys=[self.keys.lease(name)], args=[holder])
