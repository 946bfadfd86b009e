"""Redis twin of the store: shared by every replica, survives restarts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from assist_bot.store import redis_scripts as scripts
from assist_bot.store.base import (
    APPROVAL_TTL,
    INDEX_MARGIN,
    NO_CAPS,
    PENDING_TTL,
    RETRIES_AFTER_INTERRUPTION,
    RUNNING_TTL,
    SEEN_TTL,
    ChannelKey,
    Enqueued,
    QueueCaps,
    ReplyRef,
    SlackLesson,
    SlackLimits,
    Store,
    ThreadKey,
    TurnSnapshot,
    decode,
    encode,
    feedback_field,
)
from assist_bot.store.keys import Keys
from assist_bot.store.redis_client import PING_TIMEOUT, Client, connect, maybe_text, text
from assist_bot.store.redis_decisions import DecisionListener
from assist_bot.store.slack_limits import RedisSlackLimits


def _member(thread: ThreadKey) -> str:
    return json.dumps([thread.team, thread.channel, thread.thread_ts])


def _thread(member: str) -> ThreadKey:
    team, channel, thread_ts = json.loads(member)
    return ThreadKey(team, channel, thread_ts)


# How long replicas of a version without the channels' index may run beside newer ones
# during an upgrade (their keys may be written that much after the first reset of a new one).
UPGRADE_GRACE = 24 * 60 * 60

# The ENQUEUE script's `refused` code → Enqueued.refused.
_REFUSED: dict[int, Literal["", "messages", "bytes"]] = {0: "", 1: "messages", 2: "bytes"}


class RedisStore(Store):
    def __init__(
        self,
        client: Client,
        *,
        retention_seconds: int,
        keys: Keys | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        # `now`: wall-clock seconds for replica heartbeats (tests move a clock by hand).
        super().__init__(retention_seconds=retention_seconds, keys=keys)
        self._redis = client
        self._now = now
        self._release = client.register_script(scripts.RELEASE)
        self._refresh = client.register_script(scripts.REFRESH)
        self._decide = client.register_script(scripts.DECIDE)
        self._enqueue = client.register_script(scripts.ENQUEUE)
        self._end_turn = client.register_script(scripts.END_TURN)
        self._begin_turn = client.register_script(scripts.BEGIN_TURN)
        self._take_over = client.register_script(scripts.TAKE_OVER)
        self._unwatch = client.register_script(scripts.UNWATCH)
        self._hold = client.register_script(scripts.HOLD)
        self._stop = client.register_script(scripts.STOP)
        self._clear_running = client.register_script(scripts.CLEAR_RUNNING)
        self._index_thread = client.register_script(scripts.INDEX_THREAD)
        self._cluster = isinstance(client, RedisCluster)
        self._decisions = DecisionListener(client, self.keys.decisions())
        self._slack_limits = RedisSlackLimits(client, self.keys)

    @classmethod
    def from_url(
        cls, url: str, *, retention_seconds: int, max_connections: int = 50, now: Callable[[], float] = time.time
    ) -> RedisStore:
        return cls(connect(url, max_connections=max_connections), retention_seconds=retention_seconds, now=now)

    async def ping(self) -> bool:
        # Bounded: a Redis that does not answer at all (a network partition, a stopped host)
        # must make /healthz say 503, not hang it.
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                return bool(await self._redis.ping())
        except (RedisError, OSError):  # TimeoutError is an OSError
            return False

    async def close(self) -> None:
        await self._decisions.close()
        await self._redis.aclose()

    async def enqueue(
        self,
        thread: ThreadKey,
        item: dict[str, Any],
        *,
        dedupe_token: str,
        owner: str,
        lease: float,
        caps: QueueCaps = NO_CAPS,
    ) -> Enqueued:
        keys = [
            self.keys.message_seen(thread, dedupe_token),
            self.keys.pending(thread),
            self.keys.lock(thread),
            self.keys.known(thread),
        ]
        args: list[str | int] = [SEEN_TTL, encode(item), PENDING_TTL, owner, int(lease * 1000), self.retention_seconds]
        args += [caps.messages, caps.bytes, *self._index_args(thread)]
        if self._cluster:
            # The index first (its channel's slot, a step of its own): if it fails, nothing is
            # stored and Slack's redelivery tries both again; the other way round, a message
            # could be queued unindexed with its delivery refused as a duplicate.
            await self._index(thread)
        else:
            keys.append(self._index_key(thread))
        accepted, locked, refused = await self._enqueue(keys=keys, args=args)
        return Enqueued(accepted=bool(accepted), locked=bool(locked), refused=_REFUSED[refused])

    # The channel's index of threads (see INDEX_THREAD): on a single Redis each thread's script
    # renews it too; on a cluster it is in another slot, so it is written beside the script.
    def _index_key(self, thread: ThreadKey) -> str:
        return self.keys.channel_threads(ChannelKey(thread.team, thread.channel))

    def _index_args(self, thread: ThreadKey) -> list[str | int]:
        return [thread.thread_ts, int(self._now() * 1000), self.retention_seconds + INDEX_MARGIN]

    async def _index(self, thread: ThreadKey) -> None:
        await self._index_thread(keys=[self._index_key(thread)], args=self._index_args(thread))

    async def begin_turn(self, thread: ThreadKey) -> TurnSnapshot:
        # The thread's keys in one script (one slot): one round trip. The channel's settings
        # are read in it too on a single Redis; on a cluster (another slot) beside it, at the
        # same time. The local history is one list read whole: the same at any thread length.
        channel = ChannelKey(thread.team, thread.channel)
        keys = [
            self.keys.pending(thread),
            self.keys.inflight(thread),
            self.keys.turn(thread),
            self.keys.conversation(thread),
            self.keys.thread_files(thread),
            self.keys.history(thread),
        ]
        args = [self.retention_seconds, PENDING_TTL, RETRIES_AFTER_INTERRUPTION, *self._index_args(thread)]
        if self._cluster:
            begun, settings, _ = await asyncio.gather(
                self._begin_turn(keys=keys, args=args), self.get_channel_settings(channel), self._index(thread)
            )
        else:
            begun = await self._begin_turn(keys=[*keys, self.keys.channel(channel), self._index_key(thread)], args=args)
            pairs = begun[8]
            settings = {text(pairs[i]): text(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        old, new, server_state, files, _, ts, given_up, past = begun[:8]
        return TurnSnapshot(
            [decode(i) for i in [*old, *new]],
            server_state or None,
            settings,
            files,
            [decode(i) for i in past],
            interrupted=ReplyRef.in_thread(thread, ts) if ts else None,
            given_up=int(given_up),
        )

    async def end_turn(
        self,
        thread: ThreadKey,
        owner: str,
        lease: float,
        *,
        server_state: str | None = None,
        history: Sequence[dict[str, Any]] = (),
        history_drop: int = 0,
    ) -> bool:
        keys = [
            self.keys.lock(thread),
            self.keys.pending(thread),
            self.keys.conversation(thread),
            self.keys.history(thread),
            self.keys.inflight(thread),
            self.keys.turn(thread),
        ]
        args: list[str | int] = [owner, int(lease * 1000), server_state or "", self.retention_seconds, history_drop]
        args += [*self._index_args(thread), *(encode(item) for item in history)]
        if not self._cluster:
            keys.append(self._index_key(thread))
        elif server_state or history:
            await self._index(thread)  # first, as in enqueue: a retried end must not append history twice
        return await self._end_turn(keys=keys, args=args) == 1

    async def note_reply(self, thread: ThreadKey, reply: ReplyRef) -> None:
        key = self.keys.turn(thread)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"channel": reply.channel, "ts": reply.ts})
            pipe.expire(key, PENDING_TTL)
            await pipe.execute()

    async def watch_turn(self, thread: ThreadKey, lease: float) -> None:
        key = self.keys.turns()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {_member(thread): (self._now() + lease) * 1000})
            pipe.expire(key, PENDING_TTL)  # as long as the messages it points to
            await pipe.execute()

    async def hold_sweeper(self, owner: str, lease: float) -> bool:
        return bool(await self._hold(keys=[self.keys.sweeper()], args=[owner, int(lease * 1000)]))

    async def stalled_turns(self, limit: int = 100) -> list[ThreadKey]:
        now = self._now() * 1000
        members = await self._redis.zrangebyscore(self.keys.turns(), "-inf", now, start=0, num=limit)
        return [_thread(text(m)) for m in members]

    async def take_over(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        keys = [self.keys.lock(thread), self.keys.pending(thread), self.keys.inflight(thread)]
        taken = await self._take_over(keys=keys, args=[owner, int(lease * 1000)])
        if taken == -1:  # nothing left: stop listing it (a slot of its own: a second step)
            await self._unwatch(keys=[self.keys.turns()], args=[_member(thread), int(self._now() * 1000)])
        return taken == 1

    async def thread_known(self, thread: ThreadKey) -> bool:
        keys = (
            self.keys.known(thread),
            self.keys.conversation(thread),
            self.keys.history(thread),
            self.keys.thread_files(thread),
        )
        return bool(await self._redis.exists(*keys))

    async def heartbeat(self, owner: str, ttl: float) -> int:
        # A sorted set of replicas scored by their last beat; the stale ones drop out.
        now = self._now()
        key = self.keys.replicas()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {owner: now})
            pipe.zremrangebyscore(key, "-inf", now - ttl)
            pipe.expire(key, int(ttl) + 1)
            pipe.zcard(key)
            *_, count = await pipe.execute()
        return max(1, count)

    async def delete_channel_conversations(self, channel: ChannelKey) -> int:
        # The channel's index names its threads: no SCAN over every workspace's keys. Its entries
        # stay, to lapse with the retention: on a cluster a thread's keys are written a step after
        # its entry, so a turn ending during the reset could leave keys whose entry the reset
        # removed — and the next reset would miss them. Naming a thread whose keys are gone costs
        # nothing but a DEL that finds nothing.
        threads = [
            ThreadKey(channel.team, channel.channel, text(ts))
            for ts in await self._redis.zrange(self.keys.channel_threads(channel), 0, -1)
        ]
        conversations = {self.keys.conversation(thread) for thread in threads}
        markers = {key for thread in threads for key in (self.keys.known(thread), self.keys.history(thread))}
        if await self._unindexed_keys_may_remain():
            # Fallback: keys written before the index existed are in no index — not even in one
            # the channel has now, if it was used since. While they may still live, one SCAN
            # (SCAN, not KEYS: it must not block Redis for other replicas) finds them as before.
            async for key in self._redis.scan_iter(match=self.keys.channel_thread_keys(channel), count=500):
                kind = self.keys.thread_key_kind(key)
                if kind == "conv":
                    conversations.add(key)
                elif kind in ("known", "hist"):
                    markers.add(key)
        forgotten = await self._redis.delete(*conversations) if conversations else 0
        if markers:
            await self._redis.delete(*markers)
        return int(forgotten)

    async def _unindexed_keys_may_remain(self) -> bool:
        """Whether keys of a version without the channels' index may still live: until the
        retention (and the time a rolling upgrade takes) has passed since the first reset of
        a version with it. Read at each reset (one GET); lost, it is only set again later."""
        key = self.keys.threads_indexed_since()
        since = maybe_text(await self._redis.get(key))
        if since is None:
            await self._redis.set(key, repr(self._now()), nx=True)
            since = maybe_text(await self._redis.get(key)) or repr(self._now())
        return self._now() < float(since) + self.retention_seconds + UPGRADE_GRACE

    async def claim(self, team: str, token: str, ttl: int = SEEN_TTL) -> bool:
        return bool(await self._redis.set(self.keys.seen(team, token), "1", nx=True, ex=ttl))

    async def refresh_lock(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        return bool(await self._refresh(keys=[self.keys.lock(thread)], args=[owner, int(lease * 1000)]))

    async def release_lock(self, thread: ThreadKey, owner: str) -> None:
        await self._release(keys=[self.keys.lock(thread)], args=[owner])

    async def _pending_count(self, thread: ThreadKey) -> int:
        """How many messages wait (for tests; production asks end_turn)."""
        return await self._redis.llen(self.keys.pending(thread))

    async def put_approval(self, team: str, approval_id: str, record: dict[str, Any]) -> None:
        key = self.keys.approval(team, approval_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "record", encode(record))
            pipe.expire(key, APPROVAL_TTL)
            await pipe.execute()

    async def get_approval(self, team: str, approval_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(self.keys.approval(team, approval_id))
        if "record" not in raw:
            return None
        record = decode(raw["record"])
        if "decision" in raw:
            record["decision"] = decode(raw["decision"])
        return record

    async def decide_approval(self, team: str, approval_id: str, decision: dict[str, Any]) -> bool:
        key = self.keys.approval(team, approval_id)
        return bool(await self._decide(keys=[key], args=[encode(decision), self._decisions.channel]))

    async def wait_for_decision(self, team: str, approval_id: str) -> dict[str, Any] | None:
        key = self.keys.approval(team, approval_id)

        async def read() -> tuple[bool, dict[str, Any] | None]:
            raw = await self._redis.hmget(key, ["record", "decision"])
            record, decision = raw[0], raw[1]
            if record is None:
                return True, None  # unknown or expired
            return decision is not None, None if decision is None else decode(decision)

        result: dict[str, Any] | None = await self._decisions.wait(key, read)
        return result

    # Stop: the same one subscription as approval decisions wakes the turn that was stopped.
    async def put_running(self, thread: ThreadKey, turn: str, askers: list[str]) -> None:
        key = self.keys.running(thread)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"turn": turn, "askers": encode({"askers": askers})})
            pipe.expire(key, RUNNING_TTL)
            await pipe.execute()

    async def get_running(self, thread: ThreadKey) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(self.keys.running(thread))
        if "turn" not in raw:
            return None
        record: dict[str, Any] = {"turn": raw["turn"], "askers": decode(raw["askers"])["askers"]}
        if "stopped_by" in raw:
            record["stopped_by"] = raw["stopped_by"]
        return record

    async def clear_running(self, thread: ThreadKey, turn: str) -> None:
        await self._clear_running(keys=[self.keys.running(thread)], args=[turn, self._decisions.channel])

    async def request_stop(self, thread: ThreadKey, turn: str, by: str) -> bool:
        key = self.keys.running(thread)
        return bool(await self._stop(keys=[key], args=[turn, by, self._decisions.channel]))

    async def wait_for_stop(self, thread: ThreadKey, turn: str) -> str | None:
        key = self.keys.running(thread)

        async def read() -> tuple[bool, str | None]:
            current, by = await self._redis.hmget(key, ["turn", "stopped_by"])
            if current != turn:
                return True, None  # ended (or replaced): nothing to wait for
            return by is not None, None if by is None else text(by)

        result: str | None = await self._decisions.wait(key, read)
        return result

    async def add_thread_file(self, thread: ThreadKey, file_id: str) -> None:
        key = self.keys.thread_files(thread)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {file_id: time.time()}, nx=True)  # ordered by arrival, each once
            pipe.expire(key, self.retention_seconds)
            await pipe.execute()

    # The channel's index and the file's holders live in different slots (a channel's, a
    # file's): no MULTI spans them on a cluster. The holders are written first and cleared
    # last, so they are never fewer than the channels that hold the file — a crash in
    # between leaves a holder whose index lacks the file, which a removal passes over.
    async def put_knowledge_file(self, channel: ChannelKey, slack_file_id: str, record: dict[str, Any]) -> None:
        await self._redis.sadd(self.keys.knowledge_holders(channel.team, slack_file_id), channel.channel)
        await self._redis.hset(self.keys.knowledge(channel), slack_file_id, encode(record))

    async def knowledge_files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]:
        raw = await self._redis.hgetall(self.keys.knowledge(channel))
        return {text(file_id): decode(record) for file_id, record in raw.items()}

    async def knowledge_channels_of(self, team: str, slack_file_id: str) -> list[str]:
        holders = self.keys.knowledge_holders(team, slack_file_id)
        legacy = self.keys.knowledge_owner(team, slack_file_id)
        owner = maybe_text(await self._redis.get(legacy))
        if owner is not None:  # an index written by an older version: move its one owner into the set
            await self._redis.sadd(holders, owner)  # first: a crash in between only repeats the move
            await self._redis.delete(legacy)
        return sorted(text(c) for c in await self._redis.smembers(holders))

    async def remove_knowledge_file(self, channel: ChannelKey, slack_file_id: str) -> dict[str, Any] | None:
        key = self.keys.knowledge(channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, slack_file_id)
            pipe.hdel(key, slack_file_id)
            raw, _ = await pipe.execute()
        await self._redis.srem(self.keys.knowledge_holders(channel.team, slack_file_id), channel.channel)
        return decode(raw) if raw else None

    async def get_channel_settings(self, channel: ChannelKey) -> dict[str, str]:
        raw = await self._redis.hgetall(self.keys.channel(channel))
        return {text(name): text(value) for name, value in raw.items()}

    async def set_channel_setting(self, channel: ChannelKey, name: str, value: str | None) -> None:
        key = self.keys.channel(channel)
        if value is None:
            await self._redis.hdel(key, name)
        else:
            await self._redis.hset(key, name, value)

    async def put_feedback(self, team: str, record: dict[str, Any]) -> None:
        key = self.keys.feedback(team)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, feedback_field(record), encode(record))
            pipe.expire(key, self.retention_seconds)
            await pipe.execute()

    async def feedback(self, team: str) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self.keys.feedback(team))
        return [decode(value) for value in raw.values()]

    async def pause_slack_method(
        self, team: str, method: str, seconds: float, *, lesson: SlackLesson | None = None
    ) -> None:
        await self._slack_limits.pause(team, method, seconds, lesson)

    async def slack_method_limits(self, team: str, method: str) -> SlackLimits:
        return await self._slack_limits.limits(team, method)

    async def reserve_post(self, channel: ChannelKey, *, interval: float, burst: int) -> float:
        return await self._slack_limits.reserve_post(channel, interval=interval, burst=burst)
