"""In-process twin of the Redis store: same contract, one process, lost on restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

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
    encode,
    feedback_field,
)
from assist_bot.store.expiring import Expiring
from assist_bot.store.keys import Keys
from assist_bot.store.slack_limits import MemorySlackLimits


class MemoryStore(Store):
    # Every method is free of awaits between read and write, so each is atomic
    # on the event loop, as each Redis command is on the server.

    def __init__(
        self, *, retention_seconds: int, keys: Keys | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(retention_seconds=retention_seconds, keys=keys)
        self._clock = clock
        self._kv = Expiring(clock)
        self._ops = 0
        # Turns waiting for an approval's decision, woken by decide_approval (no polling).
        self._decided: dict[str, asyncio.Event] = {}
        self._turns: dict[ThreadKey, float] = {}  # threads with a running turn → when its lease ends
        self._stops: dict[str, asyncio.Event] = {}  # running answers' keys → woken at a stop or their end
        self._slack_limits = MemorySlackLimits(self._kv, self.keys)

    def _tick(self) -> None:
        # Sweep now and then so that expired dedupe tokens do not pile up.
        self._ops += 1
        if self._ops % 1000 == 0:
            self._kv.sweep()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._kv.clear()
        for event in self._decided.values():
            event.set()  # waiters see the approval gone
        self._decided.clear()

    def _get_conversation(self, thread: ThreadKey) -> str | None:
        key = self.keys.conversation(thread)
        value = self._kv.get(key)
        if value is not None:
            self._kv.set(key, value, self.retention_seconds)
        return value

    def _set_conversation(self, thread: ThreadKey, conversation_id: str) -> None:
        self._tick()
        self._kv.set(self.keys.conversation(thread), conversation_id, self.retention_seconds)

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
        if not self._claim(self.keys.message_seen(thread, dedupe_token), SEEN_TTL):
            return Enqueued(accepted=False, locked=False)
        refused = self._queue_full(thread, item, caps)
        if not refused:
            self._push_pending(thread, item)
            self._kv.set(self.keys.known(thread), True, self.retention_seconds)
            self._index(thread)
        # Tried even when refused, as on Redis: a full queue whose turn died gets drained.
        locked = self._acquire_lock(thread, owner, lease)
        return Enqueued(accepted=not refused, locked=locked, refused=refused)

    def _queue_full(self, thread: ThreadKey, item: dict[str, Any], caps: QueueCaps) -> Literal["", "messages", "bytes"]:
        """Which cap the item would break (measured as Redis stores items: UTF-8 JSON)."""
        waiting = self._kv.get(self.keys.pending(thread)) or []
        if not waiting:
            return ""
        if caps.messages and len(waiting) >= caps.messages:
            return "messages"
        if caps.bytes and sum(len(encode(queued).encode()) for queued in [*waiting, item]) > caps.bytes:
            return "bytes"
        return ""

    async def begin_turn(self, thread: ThreadKey) -> TurnSnapshot:
        # As the Redis twin: the queue moves to `inflight` until end_turn; what a dead
        # turn left there is answered again (up to RETRIES_AFTER_INTERRUPTION times).
        inflight, turn = self.keys.inflight(thread), self.keys.turn(thread)
        old, new = self._kv.pop(inflight) or [], self._take_pending(thread)
        record = self._kv.pop(turn) or {}
        tries = record.get("tries", 0) + 1 if old else 0
        given_up = 0
        if tries > RETRIES_AFTER_INTERRUPTION:
            given_up, old, tries = len(old), [], 0
        if old or new:
            self._kv.set(inflight, [*old, *new], PENDING_TTL)
        if tries:
            self._kv.set(turn, {"tries": tries}, PENDING_TTL)
        history = self._kv.get(self.keys.history(thread)) or []
        if history:
            self._kv.set(self.keys.history(thread), history, self.retention_seconds)
        self._index(thread)  # as on Redis: the conversation and history were renewed
        return TurnSnapshot(
            items=[*old, *new],
            server_state=self._get_conversation(thread),
            channel_settings=await self.get_channel_settings(ChannelKey(thread.team, thread.channel)),
            thread_files=self._thread_files(thread),
            history=[dict(item) for item in history],
            interrupted=ReplyRef.in_thread(thread, record["ts"]) if "ts" in record and (old or given_up) else None,
            given_up=given_up,
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
        if server_state:
            self._set_conversation(thread, server_state)
        if history or history_drop:
            key = self.keys.history(thread)
            kept = (self._kv.get(key) or [])[history_drop:] + [dict(item) for item in history]
            self._kv.set(key, kept, self.retention_seconds)
        if server_state or history:
            self._index(thread)
        holder = self._kv.get(self.keys.lock(thread))
        if holder is not None and holder != owner:
            return False
        self._kv.pop(self.keys.inflight(thread))
        self._kv.pop(self.keys.turn(thread))
        if self._kv.get(self.keys.pending(thread)):
            self._kv.set(self.keys.lock(thread), owner, lease)
            return True
        self._kv.pop(self.keys.lock(thread))
        return False

    async def note_reply(self, thread: ThreadKey, reply: ReplyRef) -> None:
        key = self.keys.turn(thread)
        record = self._kv.get(key) or {}
        self._kv.set(key, {**record, "channel": reply.channel, "ts": reply.ts}, PENDING_TTL)

    async def watch_turn(self, thread: ThreadKey, lease: float) -> None:
        self._turns[thread] = self._clock() + lease

    async def hold_sweeper(self, owner: str, lease: float) -> bool:
        return True  # one process: its own sweeper

    async def stalled_turns(self, limit: int = 100) -> list[ThreadKey]:
        now = self._clock()
        return [thread for thread, until in self._turns.items() if until <= now][:limit]

    async def take_over(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        if self._kv.get(self.keys.lock(thread)) is not None:
            return False
        if not (self._kv.get(self.keys.pending(thread)) or self._kv.get(self.keys.inflight(thread))):
            if self._turns.get(thread, 0) <= self._clock():
                self._turns.pop(thread, None)
            return False
        self._kv.set(self.keys.lock(thread), owner, lease)
        return True

    async def thread_known(self, thread: ThreadKey) -> bool:
        keys = (
            self.keys.known(thread),
            self.keys.conversation(thread),
            self.keys.history(thread),
            self.keys.thread_files(thread),
        )
        return any(self._kv.get(key) for key in keys)

    async def heartbeat(self, owner: str, ttl: float) -> int:
        return 1  # an in-process store is one replica by definition

    def _index(self, thread: ThreadKey) -> None:
        """Renew the thread's entry in its channel's index (thread_ts → when it lapses), as
        the Redis twin's INDEX_THREAD does: lapsed entries go, the index lives as long as its newest."""
        key, now = self.keys.channel_threads(ChannelKey(thread.team, thread.channel)), self._clock()
        lifetime = self.retention_seconds + INDEX_MARGIN
        entries = {ts: until for ts, until in (self._kv.get(key) or {}).items() if until > now}
        self._kv.set(key, {**entries, thread.thread_ts: now + lifetime}, lifetime)

    async def delete_channel_conversations(self, channel: ChannelKey) -> int:
        # The channel's index names its threads (no keys predate it: this store starts empty).
        # Its entries stay, to lapse with the retention, as on Redis.
        forgotten = 0
        for thread_ts in self._kv.get(self.keys.channel_threads(channel)) or {}:
            thread = ThreadKey(channel.team, channel.channel, thread_ts)
            forgotten += self._kv.pop(self.keys.conversation(thread)) is not None
            self._kv.pop(self.keys.known(thread))
            self._kv.pop(self.keys.history(thread))
        return forgotten

    async def claim(self, team: str, token: str, ttl: int = SEEN_TTL) -> bool:
        return self._claim(self.keys.seen(team, token), ttl)

    def _claim(self, key: str, ttl: float) -> bool:
        self._tick()
        if self._kv.get(key) is not None:
            return False
        self._kv.set(key, True, ttl)
        return True

    def _acquire_lock(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        key = self.keys.lock(thread)
        if self._kv.get(key) is not None:
            return False
        self._kv.set(key, owner, lease)
        return True

    async def refresh_lock(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        key = self.keys.lock(thread)
        if self._kv.get(key) != owner:
            return False
        self._kv.set(key, owner, lease)
        return True

    async def release_lock(self, thread: ThreadKey, owner: str) -> None:
        key = self.keys.lock(thread)
        if self._kv.get(key) == owner:
            self._kv.pop(key)

    def _push_pending(self, thread: ThreadKey, item: dict[str, Any]) -> None:
        key = self.keys.pending(thread)
        items = self._kv.get(key) or []
        self._kv.set(key, [*items, dict(item)], PENDING_TTL)

    def _take_pending(self, thread: ThreadKey) -> list[dict[str, Any]]:
        return self._kv.pop(self.keys.pending(thread)) or []

    async def _pending_count(self, thread: ThreadKey) -> int:
        """How many messages wait (for tests; production asks end_turn)."""
        return len(self._kv.get(self.keys.pending(thread)) or [])

    async def put_approval(self, team: str, approval_id: str, record: dict[str, Any]) -> None:
        key = self.keys.approval(team, approval_id)
        decided = (self._kv.get(key) or {}).get("decision")  # an update keeps a decision already made
        self._kv.set(key, {**record, "decision": decided} if decided else dict(record), APPROVAL_TTL)

    async def get_approval(self, team: str, approval_id: str) -> dict[str, Any] | None:
        record = self._kv.get(self.keys.approval(team, approval_id))
        return dict(record) if record is not None else None

    async def decide_approval(self, team: str, approval_id: str, decision: dict[str, Any]) -> bool:
        key = self.keys.approval(team, approval_id)
        record = self._kv.get(key)
        if record is None or "decision" in record:
            return False
        self._kv.set(key, {**record, "decision": dict(decision)}, APPROVAL_TTL)
        waiting = self._decided.pop(key, None)
        if waiting is not None:
            waiting.set()
        return True

    async def wait_for_decision(self, team: str, approval_id: str) -> dict[str, Any] | None:
        key = self.keys.approval(team, approval_id)
        while True:
            record = self._kv.get(key)
            if record is None:
                return None
            if "decision" in record:
                return dict(record["decision"])
            await self._decided.setdefault(key, asyncio.Event()).wait()

    async def put_running(self, thread: ThreadKey, turn: str, askers: list[str]) -> None:
        self._kv.set(self.keys.running(thread), {"turn": turn, "askers": list(askers)}, RUNNING_TTL)

    async def get_running(self, thread: ThreadKey) -> dict[str, Any] | None:
        record = self._kv.get(self.keys.running(thread))
        return dict(record) if record is not None else None

    async def clear_running(self, thread: ThreadKey, turn: str) -> None:
        key = self.keys.running(thread)
        record = self._kv.get(key)
        if record is not None and record["turn"] == turn:
            self._kv.pop(key)
            self._wake_stop(key)

    async def request_stop(self, thread: ThreadKey, turn: str, by: str) -> bool:
        key = self.keys.running(thread)
        record = self._kv.get(key)
        if record is None or record["turn"] != turn or "stopped_by" in record:
            return False
        self._kv.set(key, {**record, "stopped_by": by}, RUNNING_TTL)
        self._wake_stop(key)
        return True

    async def wait_for_stop(self, thread: ThreadKey, turn: str) -> str | None:
        key = self.keys.running(thread)
        while True:
            record = self._kv.get(key)
            if record is None or record["turn"] != turn:
                return None
            if "stopped_by" in record:
                return str(record["stopped_by"])
            await self._stops.setdefault(key, asyncio.Event()).wait()

    def _wake_stop(self, key: str) -> None:
        waiting = self._stops.pop(key, None)
        if waiting is not None:
            waiting.set()

    async def add_thread_file(self, thread: ThreadKey, file_id: str) -> None:
        key = self.keys.thread_files(thread)
        files = self._kv.get(key) or []
        if file_id not in files:
            files = [*files, file_id]
        self._kv.set(key, files, self.retention_seconds)

    def _thread_files(self, thread: ThreadKey) -> list[str]:
        return list(self._kv.get(self.keys.thread_files(thread)) or [])

    async def put_knowledge_file(self, channel: ChannelKey, slack_file_id: str, record: dict[str, Any]) -> None:
        key = self.keys.knowledge(channel)
        index = dict(self._kv.get(key) or {})
        index[slack_file_id] = dict(record)
        self._kv.set(key, index, None)
        holders = self.keys.knowledge_holders(channel.team, slack_file_id)
        self._kv.set(holders, {*(self._kv.get(holders) or ()), channel.channel}, None)

    async def knowledge_files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in (self._kv.get(self.keys.knowledge(channel)) or {}).items()}

    async def knowledge_channels_of(self, team: str, slack_file_id: str) -> list[str]:
        return sorted(self._kv.get(self.keys.knowledge_holders(team, slack_file_id)) or ())

    async def remove_knowledge_file(self, channel: ChannelKey, slack_file_id: str) -> dict[str, Any] | None:
        key = self.keys.knowledge(channel)
        index = dict(self._kv.get(key) or {})
        record = index.pop(slack_file_id, None)
        self._kv.set(key, index, None)
        holders = self.keys.knowledge_holders(channel.team, slack_file_id)
        rest = set(self._kv.get(holders) or ()) - {channel.channel}
        if rest:
            self._kv.set(holders, rest, None)
        else:
            self._kv.pop(holders)
        return record

    async def get_channel_settings(self, channel: ChannelKey) -> dict[str, str]:
        return dict(self._kv.get(self.keys.channel(channel)) or {})

    async def set_channel_setting(self, channel: ChannelKey, name: str, value: str | None) -> None:
        key = self.keys.channel(channel)
        settings = dict(self._kv.get(key) or {})
        if value is None:
            settings.pop(name, None)
        else:
            settings[name] = value
        self._kv.set(key, settings, None)

    async def put_feedback(self, team: str, record: dict[str, Any]) -> None:
        key = self.keys.feedback(team)
        records = dict(self._kv.get(key) or {})
        records[feedback_field(record)] = dict(record)
        self._kv.set(key, records, self.retention_seconds)

    async def feedback(self, team: str) -> list[dict[str, Any]]:
        return [dict(r) for r in (self._kv.get(self.keys.feedback(team)) or {}).values()]

    async def pause_slack_method(
        self, team: str, method: str, seconds: float, *, lesson: SlackLesson | None = None
    ) -> None:
        self._slack_limits.pause(team, method, seconds, lesson)

    async def slack_method_limits(self, team: str, method: str) -> SlackLimits:
        return self._slack_limits.limits(team, method)

    async def reserve_post(self, channel: ChannelKey, *, interval: float, burst: int) -> float:
        return self._slack_limits.reserve_post(channel, interval=interval, burst=burst)
