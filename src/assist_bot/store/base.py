"""The store interface: every piece of state that must survive a restart or be
shared between replicas goes through here.

Two twins implement it: `RedisStore` (production, many replicas) and
`MemoryStore` (embedded default, one process). One contract test suite runs
against both (tests/store/test_contract.py).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assist_bot.store.keys import Keys


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """One Slack thread = one conversation. The team id keeps workspaces apart."""

    team: str
    channel: str
    thread_ts: str


@dataclass(frozen=True, slots=True)
class ChannelKey:
    team: str
    channel: str


# How long each kind of data lives when nothing refreshes it (seconds).
SEEN_TTL = 60 * 60  # Slack retries for minutes, not hours.
PENDING_TTL = 24 * 60 * 60  # Messages nobody picked up (a replica died) go stale.
RETRIES_AFTER_INTERRUPTION = 1  # a message whose turn was interrupted is answered again once
# How long a running answer's record outlives a replica that died without clearing it.
RUNNING_TTL = 3600
APPROVAL_TTL = 24 * 60 * 60  # An approval outlives its time-out, so late clicks get a clear answer.
# How much longer than the retention a channel's index of threads keeps a thread's entry (and
# itself): the index may be written a moment before the keys it names (on a cluster, in another
# slot), and replicas' clocks differ a little. Never long enough to matter next to the retention.
INDEX_MARGIN = 60


@dataclass(frozen=True, slots=True)
class QueueCaps:
    """How much may wait in one thread's queue for its next turn (0: no cap). A message
    that arrives at an empty queue is always taken: its own size is capped before the store."""

    messages: int = 0
    bytes: int = 0  # of the queued items as stored (UTF-8 JSON), the new one included


@dataclass(frozen=True, slots=True)
class Enqueued:
    accepted: bool  # False: not queued — a duplicate delivery, or refused (below)
    locked: bool  # True: we took the thread's lock, so the turn is ours to run
    # "messages" / "bytes": the thread's queue is full, so the message was not queued (nothing
    # of it stored but its dedupe token: a redelivery is not refused twice). The lock may still
    # be taken: a queue whose turn died must be drained by someone.
    refused: Literal["", "messages", "bytes"] = ""


NO_CAPS = QueueCaps()


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """Where a turn's reply shows: its first message, in its thread (of its workspace)."""

    team: str
    channel: str
    thread_ts: str
    ts: str

    @classmethod
    def in_thread(cls, thread: ThreadKey, ts: str) -> ReplyRef:
        return cls(thread.team, thread.channel, thread.thread_ts, ts)


@dataclass(frozen=True, slots=True)
class TurnSnapshot:
    """Everything a turn reads from the store, fetched in one round trip. What the turn
    changes comes back as a StateChange event, which end_turn saves."""

    items: list[dict[str, Any]]
    server_state: str | None  # the conversation id, or (response_chain) the last response id
    channel_settings: dict[str, str]
    thread_files: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)  # ASSIST_BOT_STATE=local
    # A turn whose owner died before it ended: its reply, to close with a note. Its
    # messages are at the head of `items` (answered again), unless they were already
    # interrupted once before (then they are not tried a third time: `given_up`).
    interrupted: ReplyRef | None = None
    given_up: int = 0


@dataclass(frozen=True, slots=True)
class SlackLesson:
    """What a 429 taught one replica about a Slack method's limit in a workspace, for every
    replica: `per_minute` is the limit of the whole workspace (all replicas together), learned
    `age` seconds ago and holding until `lasts` seconds after it was learned. `id` names the
    lesson, so that a replica takes each one once (and its own not back)."""

    id: str
    per_minute: float
    lasts: float
    age: float = 0.0


@dataclass(frozen=True, slots=True)
class SlackLimits:
    """What holds for a Slack method in a workspace now: read before every call of it."""

    pause: float = 0.0  # seconds left of Slack's pause (0: none)
    lesson: SlackLesson | None = None


NO_SLACK_LIMITS = SlackLimits()


def encode(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes) -> dict[str, Any]:
    return json.loads(raw)


def feedback_field(record: dict[str, Any]) -> str:
    """One person's feedback on one answer: a later click replaces an earlier one."""
    return f"{record['channel']}:{record['response']}:{record['user']}"


class Store(abc.ABC):
    """Small, explicit operations; each is atomic on its own. This is what production
    calls, nothing more: the twins keep their single steps to themselves."""

    def __init__(self, *, retention_seconds: int, keys: Keys | None = None) -> None:
        self.retention_seconds = retention_seconds
        self.keys = keys or Keys()

    # -- health ---------------------------------------------------------------
    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the store answers."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- thread → conversation (saved by end_turn, read by begin_turn) -------------------
    @abc.abstractmethod
    async def delete_channel_conversations(self, channel: ChannelKey) -> int:
        """Forget every thread's conversation and history in a channel (and that the bot
        was part of those threads); returns how many threads had a conversation. The twins
        find the threads through the channel's index (`Keys.channel_threads`), which every
        write of those keys renews, not by scanning all keys."""

    # -- a turn's round trips: enqueue, begin, end (one each) ------------------------------
    @abc.abstractmethod
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
        """Atomically: claim the token (else drop), queue the item unless the thread's
        queue is at its caps, try to take the lock."""

    @abc.abstractmethod
    async def begin_turn(self, thread: ThreadKey) -> TurnSnapshot:
        """Take the queue, and read the server state and the history (extending their
        retention), the channel settings and the thread's files."""

    @abc.abstractmethod
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
        """Atomically: save what the turn changed (a new server state; history items
        appended after dropping the `history_drop` oldest) and let go of the turn's messages
        and reply; then, if more is queued, keep the lock and return True; otherwise release
        it and return False. False, and nothing let go, when another holder has the lock (a
        lock that lapsed but nobody took is still ours)."""

    @abc.abstractmethod
    async def note_reply(self, thread: ThreadKey, reply: ReplyRef) -> None:
        """Record the running turn's reply, so that a replica taking over can close it."""

    @abc.abstractmethod
    async def thread_known(self, thread: ThreadKey) -> bool:
        """Is the bot part of the thread: a message of it was accepted, it has a
        conversation, or it has files?"""

    # -- replicas ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def heartbeat(self, owner: str, ttl: float) -> int:
        """Say this replica is alive (for `ttl` seconds); returns how many replicas are."""

    # -- crash recovery: running turns, watched by one sweeper at a time ------------------
    @abc.abstractmethod
    async def watch_turn(self, thread: ThreadKey, lease: float) -> None:
        """List the thread among those with a running turn, until its lease ends (refreshed with it)."""

    @abc.abstractmethod
    async def hold_sweeper(self, owner: str, lease: float) -> bool:
        """Take or keep the sweeper's lease: True while `owner` is the one replica sweeping."""

    @abc.abstractmethod
    async def stalled_turns(self, limit: int = 100) -> list[ThreadKey]:
        """Threads whose listed lease has ended: their owner may be gone."""

    @abc.abstractmethod
    async def take_over(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        """Atomically: when the thread's lock is free and it has work (queued messages or
        an interrupted turn), take the lock for `owner` and return True. A thread with
        nothing left is no longer listed."""

    # -- dedupe -----------------------------------------------------------------
    @abc.abstractmethod
    async def claim(self, team: str, token: str, ttl: int = SEEN_TTL) -> bool:
        """True for the first caller with this token (any replica); False after."""

    # -- per-thread lock with a lease (taken by enqueue, kept or released by end_turn) ---
    @abc.abstractmethod
    async def refresh_lock(self, thread: ThreadKey, owner: str, lease: float) -> bool:
        """Extend our lease; False when we no longer hold the lock."""

    @abc.abstractmethod
    async def release_lock(self, thread: ThreadKey, owner: str) -> None:
        """Release the lock if (and only if) `owner` still holds it."""

    # -- approvals of side-effect tool calls --------------------------------------------
    # The click may reach any replica; the turn waiting for it may run on another.
    @abc.abstractmethod
    async def put_approval(self, team: str, approval_id: str, record: dict[str, Any]) -> None:
        """Store a pending approval, or update its record (`record` must not contain
        "decision"; a decision already made is kept)."""

    @abc.abstractmethod
    async def get_approval(self, team: str, approval_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def decide_approval(self, team: str, approval_id: str, decision: dict[str, Any]) -> bool:
        """Record the decision once: True for the first decider, False if already
        decided (or unknown). The decision is merged into the record under "decision",
        and every `wait_for_decision` of it, on any replica, wakes at once."""

    @abc.abstractmethod
    async def wait_for_decision(self, team: str, approval_id: str) -> dict[str, Any] | None:
        """Wait, without polling, until the approval is decided: its decision (at once
        when it was decided already), or None for an unknown or expired approval. No
        time-out of its own: the caller bounds the wait (and may cancel it)."""

    # -- Stop: the answer may stream on another replica than the one the stop reaches ---------
    @abc.abstractmethod
    async def put_running(self, thread: ThreadKey, turn: str, askers: list[str]) -> None:
        """An answer (`turn`, the ts of the message it answers) streams in the thread; these may stop it."""

    @abc.abstractmethod
    async def get_running(self, thread: ThreadKey) -> dict[str, Any] | None:
        """The answer streaming in the thread: {"turn", "askers"} (+ "stopped_by"), or None."""

    @abc.abstractmethod
    async def clear_running(self, thread: ThreadKey, turn: str) -> None:
        """That answer ended (only its own record goes: a later turn's stays)."""

    @abc.abstractmethod
    async def request_stop(self, thread: ThreadKey, turn: str, by: str) -> bool:
        """Stop that answer, once: True when it was still streaming and not stopped yet. Every
        `wait_for_stop` of it, on any replica, wakes at once."""

    @abc.abstractmethod
    async def wait_for_stop(self, thread: ThreadKey, turn: str) -> str | None:
        """Wait, without polling, until the answer is stopped: who stopped it; None once its record
        is gone. No time-out: the turn cancels the wait when it ends."""

    # -- files: a thread's code-interpreter files, a channel's knowledge --------------------
    @abc.abstractmethod
    async def add_thread_file(self, thread: ThreadKey, file_id: str) -> None:
        """Remember an OpenAI file for the thread's code interpreter (kept as long as the conversation)."""

    @abc.abstractmethod
    async def put_knowledge_file(self, channel: ChannelKey, slack_file_id: str, record: dict[str, Any]) -> None:
        """Index a file of the channel's knowledge base, by its Slack file id."""

    @abc.abstractmethod
    async def knowledge_files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]: ...

    @abc.abstractmethod
    async def knowledge_channels_of(self, team: str, slack_file_id: str) -> list[str]:
        """Every channel whose knowledge holds this Slack file, sorted (file_deleted names no channel)."""

    @abc.abstractmethod
    async def remove_knowledge_file(self, channel: ChannelKey, slack_file_id: str) -> dict[str, Any] | None: ...

    # -- channel settings ----------------------------------------------------------
    @abc.abstractmethod
    async def get_channel_settings(self, channel: ChannelKey) -> dict[str, str]: ...

    @abc.abstractmethod
    async def set_channel_setting(self, channel: ChannelKey, name: str, value: str | None) -> None:
        """Set one setting; None removes it."""

    # -- feedback on answers (👍/👎) ------------------------------------------------------
    @abc.abstractmethod
    async def put_feedback(self, team: str, record: dict[str, Any]) -> None:
        """Store one person's feedback on one answer (`channel`, `response`, `user` identify it;
        a second click by the same person on the same answer replaces the first)."""

    @abc.abstractmethod
    async def feedback(self, team: str) -> list[dict[str, Any]]:
        """Every feedback record of the workspace (kept for the retention period)."""

    # -- Slack's rate limits, shared by every replica (store/slack_limits.py) -------------------
    @abc.abstractmethod
    async def pause_slack_method(
        self, team: str, method: str, seconds: float, *, lesson: SlackLesson | None = None
    ) -> None:
        """Slack answered 429: no replica calls `method` for the workspace for `seconds`
        (a longer pause already recorded stays). With a `lesson` (what this replica learned from
        the 429), it replaces the method's last one, for what is left of its `lasts`."""

    @abc.abstractmethod
    async def slack_method_limits(self, team: str, method: str) -> SlackLimits:
        """The method's pause in the workspace and its last lesson still holding (with its
        age), in one round trip."""

    @abc.abstractmethod
    async def reserve_post(self, channel: ChannelKey, *, interval: float, burst: int) -> float:
        """Take the channel's next slot for a new message: `burst` at once, then one per
        `interval` seconds. Returns how long to wait before posting (0: now); the slot is
        taken either way, so concurrent posters, on any replica, queue up."""
