"""Between the surfaces and the engine: dedupe → per-thread lock and queue → turn.

Knows neither Slack nor OpenAI: it talks to a `Replies` factory (the Slack side)
and a `TurnRunner` (the engine) through its ports (dispatch_ports.py), and to the
store. A turn whose replica died is taken over by crash_recovery.py's sweeper.

Why a queue and a lock: one response at a time per thread (OpenAI refuses a
second one on a busy conversation), and messages that arrive meanwhile must be
answered together in the next turn — none dropped, none answered twice, even
with several replicas, because both live in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from assist_bot import crash_recovery
from assist_bot.admission import Admission
from assist_bot.assistants import Assistant, Assistants
from assist_bot.dispatch_ports import (
    NO_LIMITS,
    Limits,
    LogNotices,
    Names,
    Notices,
    Refusal,
    Replies,
    ReplySink,
    TurnRunner,
)
from assist_bot.events import ApprovalRequest, Decision, Done, Failed, StateChange, UsageReport
from assist_bot.inbound import Inbound
from assist_bot.stopping import StopResult, is_stop, request_stop, watching
from assist_bot.store import Store, ThreadKey
from assist_bot.store.base import ReplyRef, TurnSnapshot
from assist_bot.turn_usage import record_usage, refused_over_budget
from assist_bot.usage import Meter

log = logging.getLogger(__name__)

# While the store is unreachable, a turn that has answered keeps trying to record its end
# (so that its messages are not answered again) with these pauses: about two minutes, then
# it gives up and the sweeper treats the turn as interrupted once the store is back.
END_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        engine: TurnRunner,
        replies: Replies,
        assistants: Assistants,
        max_concurrent_turns: int = 100,
        lock_lease: float = crash_recovery.LOCK_LEASE,
        admins: frozenset[str] = frozenset(),
        limits: Limits = NO_LIMITS,
        notices: Notices | None = None,
        names: Names | None = None,
        meter: Meter | None = None,
    ) -> None:
        self._store = store
        self._lease_seconds = lock_lease
        self._limits = limits
        self._notices = notices or LogNotices()
        self._names = names
        self._admins = admins
        self._unnoted: dict[ThreadKey, asyncio.Task[None]] = {}  # records waiting for their reply's message
        self._meter = meter  # usage and budgets (usage.py); None: neither
        # Admission control: past this many streaming turns, further turns wait (their
        # placeholder already shows) instead of slowing every stream in the process;
        # fairly, so one busy user or workspace does not hold the others back.
        self._admission = Admission(max_concurrent_turns)
        self._engine = engine
        self._replies = replies
        self._assistants = assistants
        self._owner = uuid.uuid4().hex  # this replica, as a lock owner
        # Each hold of a lock gets its own token (a fence): a turn that lost its lock to a
        # takeover cannot end, refresh or release the new holder's, even on this replica.
        self._fences = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = True

    # -- intake -------------------------------------------------------------------
    async def knows_thread(self, thread: ThreadKey) -> bool:
        """Is the bot part of this thread (so it listens without a mention)? It is once
        it has a conversation there, or once a data file was given to the thread."""
        return await self._store.thread_known(thread)

    async def submit(self, message: Inbound) -> bool:
        """Queue a message for its thread and make sure a turn will answer it.

        Returns False for a message already taken (a retry, or the `message`
        twin of an `app_mention`), which is then dropped, and for one over a cap,
        whose author is told (once: its twin and retries are duplicates). One store
        round trip: claim, queue (within the thread's caps) and try the lock together.
        """
        if not self._accepting:
            return False
        if is_stop(message.text):
            return await self._stop(message)
        token = f"msg:{message.channel}:{message.ts}"
        if self._limits.message_chars and len(message.text) > self._limits.message_chars:
            if await self._store.claim(message.team, token):
                self._refuse(message, Refusal("too_long", self._limits.message_chars, len(message.text)))
            return False
        holder = self._holder()
        queued = await self._store.enqueue(
            message.thread,
            message.to_dict(),
            dedupe_token=token,
            owner=holder,
            lease=self._lease_seconds,
            caps=self._limits.queue,
        )
        if queued.refused:
            limit = self._limits.queue.messages if queued.refused == "messages" else self._limits.queue.bytes
            self._refuse(message, Refusal(queued.refused, limit))
        elif not queued.accepted:
            log.debug("duplicate delivery of %s/%s ignored", message.channel, message.ts)
            return False
        if queued.locked:  # otherwise the lock's holder answers it in its next turn
            self._start_drain(message.thread, holder)
        return queued.accepted

    def _refuse(self, message: Inbound, refusal: Refusal) -> None:
        # Told in the background: the ack path makes no Slack call.
        log.info("message %s/%s not taken: %s (cap %d)", message.channel, message.ts, refusal.reason, refusal.limit)
        self.spawn(self._notices.refused(message, refusal), name=f"refusal {message.channel}/{message.ts}")

    def _holder(self) -> str:
        return f"{self._owner}:{next(self._fences)}"

    def _start_drain(self, thread: ThreadKey, holder: str) -> None:
        task = asyncio.create_task(self._drain_thread(thread, holder), name=f"thread {thread.thread_ts}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- crash recovery (crash_recovery.py) ---------------------------------------------
    async def sweep(self) -> int:
        """If this replica is the sweeper (one at a time, by a lease in the store): take
        over the threads whose turn's owner is gone — their lease ran out — and answer
        them. Returns how many were taken over."""
        if not self._accepting:
            return 0
        return await crash_recovery.sweep(
            self._store, owner=self._owner, lease=self._lease_seconds, new_holder=self._holder, drain=self._start_drain
        )

    async def keep_sweeping(self) -> None:
        """Sweep every half lease, for the life of the process (the caller owns the task)."""
        await crash_recovery.keep_sweeping(self.sweep, every=self._lease_seconds / 2)

    async def _stop(self, message: Inbound) -> bool:
        """`stop` in a thread whose answer streams (on any replica): the asker (or an admin) cancels
        it. A stop is never queued as a question; a repeat (the mention's `message` twin) is dropped."""
        if not await self._store.claim(message.team, f"stop:{message.channel}:{message.ts}"):
            return False
        result = await self.stop(message.thread, user=message.user)
        log.info("stop in %s/%s by %s: %s", message.channel, message.thread_ts, message.user, result.outcome)
        if result.outcome == "refused":
            self.spawn(self._notices.stop_refused(message, result.askers), name=f"stop refused {message.ts}")
        return result.outcome == "stopped"

    async def stop(self, thread: ThreadKey, *, user: str, turn: str | None = None) -> StopResult:
        """Stop the answer streaming in `thread` (answer `turn` only, when given), wherever it runs."""
        return await request_stop(self._store, thread, user=user, admins=self._admins, turn=turn)

    def spawn(self, work: Awaitable[None], *, name: str) -> None:
        """Own a piece of background work (a slash command waiting for approval, say),
        so that shutdown waits for it like for a turn."""

        async def guarded() -> None:
            try:
                await work
            except Exception:  # the boundary of owned background work
                log.exception("%s failed", name)

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- turns --------------------------------------------------------------------------
    async def _drain_thread(self, thread: ThreadKey, holder: str) -> None:
        """We hold the thread's lock: answer what is queued, turn after turn. Each turn
        costs six round trips: begin, the reply's record, end, and Stop's three (record the
        answer, its first look for a stop, clear it: stopping.watching). end_turn keeps the
        lock atomically while messages wait, so none is stranded between our last look and
        release."""
        answering = False
        try:
            async with crash_recovery.leased(self._store, thread, holder, lease=self._lease_seconds):
                while True:
                    start = await self._store.begin_turn(thread)
                    if start.interrupted is not None or start.given_up:
                        await crash_recovery.close_interrupted(self._replies, start)
                    change = StateChange()
                    if start.items:
                        answering = True
                        change = await self._turn(thread, [Inbound.from_dict(item) for item in start.items], start)
                        answering = False
                    more = await self._end_turn(thread, holder, change)
                    if not more:
                        return
                    if not self._accepting:
                        await self._store.release_lock(thread, holder)
                        return
        except asyncio.CancelledError:
            # Shutting down mid-turn: the reply was closed with a note (its messages count as
            # answered); let another replica take the thread at once.
            await asyncio.shield(self._let_go(thread, holder, answered=answering))
            raise
        except Exception:  # the boundary of owned background work: log, never crash the loop
            log.exception("thread %s/%s: queue handling failed", thread.channel, thread.thread_ts)
            await self._release(thread, holder)

    async def _let_go(self, thread: ThreadKey, holder: str, *, answered: bool) -> None:
        if answered:
            with contextlib.suppress(Exception):  # unreachable store: the sweeper answers it again
                await self._store.end_turn(thread, holder, self._lease_seconds)
        await self._release(thread, holder)

    async def _release(self, thread: ThreadKey, holder: str) -> None:
        try:
            await self._store.release_lock(thread, holder)
        except Exception:  # the store is unreachable: the lease runs out, the sweeper takes over
            log.warning("thread %s/%s: could not release its lock", thread.channel, thread.thread_ts)

    async def _end_turn(self, thread: ThreadKey, holder: str, change: StateChange) -> bool:
        """end_turn, retried with back-off while the store is unreachable (bounded)."""
        delays = iter(END_RETRIES)
        while True:
            try:
                return await self._store.end_turn(
                    thread,
                    holder,
                    self._lease_seconds,
                    server_state=change.server_state or None,
                    history=change.history,
                    history_drop=change.history_drop,
                )
            except Exception:
                delay = next(delays, None)
                if delay is None or not self._accepting:
                    raise
                where = f"{thread.channel}/{thread.thread_ts}"
                log.warning("thread %s: the store is unreachable; ending the turn again in %.1fs", where, delay)
                await asyncio.sleep(delay)

    async def _turn(self, thread: ThreadKey, messages: list[Inbound], state: TurnSnapshot) -> StateChange:
        """Run one turn into its reply; returns what the store must keep of it (saved by end_turn)."""
        assistant = self._assistants.get(state.channel_settings.get("assistant"))
        reports: list[UsageReport] = []  # what each response used, recorded once the reply has ended
        changes: list[StateChange] = []  # what the store must keep, even of a failed turn
        try:
            await self._answer(thread, messages, state, assistant, reports, changes)
        finally:
            if (waiting := self._unnoted.pop(thread, None)) is not None:
                waiting.cancel()  # and done before end_turn, which clears what it may have written
                await asyncio.gather(waiting, return_exceptions=True)
            await record_usage(
                self._meter,
                thread,
                user=messages[-1].user,
                assistant=assistant,
                reports=reports,
                state=state,
                change=_last(changes),
            )
        return _last(changes)

    async def _answer(
        self,
        thread: ThreadKey,
        messages: list[Inbound],
        state: TurnSnapshot,
        assistant: Assistant,
        reports: list[UsageReport],
        changes: list[StateChange],
    ) -> None:
        sink = await self._replies.open(messages[-1])  # at once, even when we must wait for a slot
        if getattr(sink, "message_ts", None) is not None:  # a placeholder: recorded at once
            await self._note_reply(thread, sink)
        elif (shown := getattr(sink, "message_shown", None)) is not None:
            # A native stream has a message once its first text went out: recorded then, in
            # the background (the stream never waits); dropped if the turn ends first.
            self._unnoted[thread] = asyncio.create_task(self._note_reply(thread, sink, when=shown))
        if await refused_over_budget(self._meter, thread, user=messages[-1].user, sink=sink):
            return
        # The turn's place in line: the person whose message waited longest.
        slot = self._admission.slot(thread.team, messages[0].user)

        async def approve(request: ApprovalRequest) -> Decision:
            async with slot.set_aside():  # a person may take minutes: free the slot meanwhile
                return await sink.ask(request)

        try:
            messages = await self._named(messages)
            async with slot:
                end = await self._stoppable(
                    thread, messages, self._stream(thread, messages, assistant, approve, state, sink, changes, reports)
                )
        except asyncio.CancelledError:
            # Shutting down: close the reply with a note before letting go.
            await asyncio.shield(sink.fail("interrupted"))
            raise
        except Exception:  # the crash boundary: a bug, not a failure the engine reported
            log.exception("turn in %s/%s failed unexpectedly", thread.channel, thread.thread_ts)
            end = Failed("unexpected")
        # One way out: the turn's final event — its answer, or its failure.
        try:
            if isinstance(end, Done):
                await sink.finish(end)
                return
            log.warning("turn in %s/%s failed: %s %s", thread.channel, thread.thread_ts, end.kind, end.detail)
            await sink.fail(end.kind)
        except Exception:  # the reply could not end as it should: a note if we can, and the queue goes on
            log.exception("turn in %s/%s: the reply could not be ended", thread.channel, thread.thread_ts)
            with contextlib.suppress(Exception):
                await sink.fail("unexpected")

    async def _stoppable(
        self, thread: ThreadKey, messages: list[Inbound], answer: Coroutine[Any, Any, Done | Failed]
    ) -> Done | Failed:
        """Run the answer as a task of its own, so that `stop` can cancel it (and its tool loop)
        alone; a stopped answer ends as a failure that says who stopped it."""
        streaming = asyncio.create_task(answer, name=f"turn {thread.thread_ts}")
        askers = sorted({m.user for m in messages})
        # The turn is named by the message its reply answers (the Stop button carries it).
        async with watching(self._store, thread, turn=messages[-1].ts, askers=askers, answer=streaming) as watch:
            try:
                return await streaming
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if watch.by is None or (current is not None and current.cancelling()):
                    raise
                return Failed(f"stopped:{watch.by}", "stopped in the thread")

    async def _stream(
        self,
        thread: ThreadKey,
        messages: list[Inbound],
        assistant: Assistant,
        approve: Callable[[ApprovalRequest], Awaitable[Decision]],
        state: TurnSnapshot,
        sink: ReplySink,
        changes: list[StateChange],
        reports: list[UsageReport],
    ) -> Done | Failed:
        """Feed the engine's events to the reply; returns the final one (the engine ends
        every turn with Done or Failed; a runner that does not is a bug, told as such).
        The thread's state changes are collected in `changes`, for end_turn."""
        events = self._engine.run(thread=thread, messages=messages, assistant=assistant, approve=approve, state=state)
        # aclosing: the engine's stream (its HTTP response) is closed when the turn ends
        # here, before we talk to Slack, not whenever the garbage collector gets to it.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, StateChange):
                    changes.append(event)
                elif isinstance(event, UsageReport):
                    reports.append(event)  # for the ledger, not the reply
                elif isinstance(event, (Done, Failed)):
                    return event
                else:
                    sink.feed(event)
        return Failed("unexpected", "the engine ended without a final event")

    async def _note_reply(self, thread: ThreadKey, sink: ReplySink, *, when: asyncio.Event | None = None) -> None:
        """Record the reply's message, so that whoever takes over after a crash can close it."""
        if when is not None:
            await when.wait()
        try:
            # `message_ts`: the reply's first message, when the sink has one (Slack's do)
            await self._store.note_reply(thread, ReplyRef.in_thread(thread, getattr(sink, "message_ts", None) or ""))
        except Exception:  # only a crash's clean-up depends on it: the answer goes on
            log.warning("could not record the reply of %s/%s", thread.channel, thread.thread_ts, exc_info=True)

    async def _named(self, messages: list[Inbound]) -> list[Inbound]:
        """Display names are looked up when the turn starts, never before Slack's ack."""
        if self._names is None:
            return messages
        names = {m.user: m.user_name for m in messages if m.user_name}
        for m in messages:
            if m.user not in names:
                names[m.user] = await self._names.name(m.team, m.user)
        return [m if m.user_name else dataclasses.replace(m, user_name=names[m.user]) for m in messages]

    # -- shutdown -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def shutdown(self, grace: float, *, deadline: Callable[[float], asyncio.Timeout] = asyncio.timeout) -> None:
        """Stop taking messages; let running turns finish for `grace` seconds (timed by
        `deadline`, which tests control), then cancel them (their replies end with a note)."""
        self._accepting = False
        if not self._tasks:
            return
        running = set(self._tasks)
        with contextlib.suppress(TimeoutError):
            async with deadline(grace):
                await asyncio.wait(running)  # cancelling the wait leaves the turns running
        pending = {task for task in running if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


def _last(changes: list[StateChange]) -> StateChange:
    # A later change supersedes an earlier one (a conversation replaced on the way).
    return changes[-1] if changes else StateChange()
