"""A turn's life, observed at the dispatcher's two seams: the `Replies` that opens the
reply (the turn starts) and the `TurnRunner` that streams it (it got a slot). Wrapping
both leaves the dispatcher as it is; what one turn learnt is shared between the two
through a context variable (they run in the same task).

Metrics: turns by outcome, time to first token and to final text, queue depth, active
streams, approvals waiting. Logs: the turn's ids are bound for every line it writes, and
one line when it starts and one when it ends (with content only if allowed)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from assist_bot.assistants import Assistant
from assist_bot.dispatch_ports import Replies, ReplySink, TurnRunner
from assist_bot.events import ApprovalRequest, Decision, Done, Failed, TextDelta, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.logs import bind
from assist_bot.metrics import Metrics
from assist_bot.store import ThreadKey
from assist_bot.store.base import ReplyRef, TurnSnapshot

log = logging.getLogger("assist_bot.turns")


@dataclass
class _Turn:
    started: float
    waiting: bool = True  # for a streaming slot
    streaming: bool = False
    first_token: bool = False
    over: bool = False  # counted once, even if ending the reply fails and the turn then fails


_current: ContextVar[_Turn | None] = ContextVar("assist_bot_turn", default=None)


class TurnObserver:
    def __init__(self, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self._clock = clock

    def replies(self, inner: Replies) -> Replies:
        return _ObservedReplies(self, inner)

    def runner(self, inner: TurnRunner) -> TurnRunner:
        return _ObservedRunner(self, inner)

    # -- the turn's transitions ---------------------------------------------------------
    def opened(self, first: Inbound) -> _Turn:
        bind(team=first.team, channel=first.channel, thread=first.thread_ts, turn=uuid.uuid4().hex[:12])
        turn = _Turn(started=self._clock())
        _current.set(turn)
        self.metrics.queue_depth.inc()
        log.info("turn started", extra={"content": first.text})
        return turn

    def leave_queue(self, turn: _Turn) -> None:
        if turn.waiting:
            turn.waiting = False
            self.metrics.queue_depth.dec()

    def stream(self, turn: _Turn, on: bool) -> None:
        if turn.streaming != on:
            turn.streaming = on
            self.metrics.active_streams.inc() if on else self.metrics.active_streams.dec()

    def event(self, turn: _Turn, event: TurnEvent) -> None:
        if isinstance(event, TextDelta) and not turn.first_token and event.text.strip():
            turn.first_token = True
            self.metrics.first_token.observe(self._clock() - turn.started)
        elif isinstance(event, Done):
            self.metrics.final_text.observe(self._clock() - turn.started)
        if isinstance(event, (Done, Failed)):
            self.stream(turn, False)

    def ended(self, turn: _Turn, outcome: str, text: str | None = None) -> None:
        if turn.over:
            return
        turn.over = True
        self.leave_queue(turn)
        self.stream(turn, False)
        self.metrics.turns.labels(outcome).inc()
        took = self._clock() - turn.started
        log.info("turn ended: %s after %.2fs", outcome, took, extra={"content": text})


class _ObservedReplies:
    def __init__(self, observer: TurnObserver, inner: Replies) -> None:
        self._observer = observer
        self._inner = inner

    async def open(self, first: Inbound) -> ReplySink:
        turn = self._observer.opened(first)
        try:
            sink = await self._inner.open(first)
        except BaseException:
            self._observer.ended(turn, "unexpected")
            raise
        return _ObservedSink(self._observer, turn, sink)

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        await self._inner.close_interrupted(reply, again=again)


class _ObservedSink:
    def __init__(self, observer: TurnObserver, turn: _Turn, inner: ReplySink) -> None:
        self._observer = observer
        self._turn = turn
        self._inner = inner

    def feed(self, event: TurnEvent) -> None:
        self._inner.feed(event)

    async def finish(self, done: Done) -> None:
        self._observer.ended(self._turn, "done", done.text)
        await self._inner.finish(done)

    async def fail(self, kind: str) -> None:
        self._observer.ended(self._turn, kind)
        await self._inner.fail(kind)

    async def ask(self, request: ApprovalRequest) -> Decision:
        return await self._inner.ask(request)

    def __getattr__(self, name: str) -> Any:  # anything else a sink offers
        return getattr(self._inner, name)


class _ObservedRunner:
    def __init__(self, observer: TurnObserver, inner: TurnRunner) -> None:
        self._observer = observer
        self._inner = inner

    async def run(
        self,
        *,
        thread: ThreadKey,
        messages: Sequence[Inbound],
        assistant: Assistant,
        approve: Callable[[ApprovalRequest], Awaitable[Decision]],
        state: TurnSnapshot,
    ) -> AsyncGenerator[TurnEvent, None]:
        observer, metrics = self._observer, self._observer.metrics
        turn = _current.get() or observer.opened(messages[-1])
        observer.leave_queue(turn)
        observer.stream(turn, True)

        async def approve_observed(request: ApprovalRequest) -> Decision:
            observer.stream(turn, False)  # waiting for a person is not streaming
            metrics.approvals_waiting.inc()
            try:
                return await approve(request)
            finally:
                metrics.approvals_waiting.dec()
                observer.stream(turn, True)

        try:
            events = self._inner.run(
                thread=thread, messages=messages, assistant=assistant, approve=approve_observed, state=state
            )
            async for event in events:
                observer.event(turn, event)
                yield event
        finally:
            observer.stream(turn, False)

    def __getattr__(self, name: str) -> Any:  # the engine's other methods (tool_context…) stay reachable
        return getattr(self._inner, name)
