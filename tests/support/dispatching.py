"""The dispatcher alone: a scripted turn runner (stands in for the engine) and a
recording reply sink (stands in for Slack), over a real store twin."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from assist_bot.assistants import Assistant, Assistants
from assist_bot.dispatch import Dispatcher
from assist_bot.events import ApprovalRequest, Decision, Done, TextDelta, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.store import Store, ThreadKey
from assist_bot.store.base import ReplyRef, TurnSnapshot
from tests.fakes.slack import wait_for

Approve = Callable[[ApprovalRequest], Awaitable[Decision]]
Script = Callable[["Turn"], AsyncGenerator[TurnEvent, None]]

BOUND = 5.0  # seconds: every wait in these tests is bounded


_ts = itertools.count(1)


def inbound(text: str, *, thread: str = "100.1", user: str = "U1", team: str = "T1", channel: str = "C1") -> Inbound:
    ts = f"{200 + next(_ts)}.000100"  # each message its own ts, so none is taken for a duplicate
    return Inbound(team=team, channel=channel, thread_ts=thread, ts=ts, user=user, user_name=user, text=text)


@dataclass
class Turn:
    """One call of the runner: what it was given, and a gate the test opens."""

    thread: ThreadKey
    messages: list[Inbound]
    approve: Approve
    state: TurnSnapshot
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


async def answer_when_opened(turn: Turn) -> AsyncIterator[TurnEvent]:
    """The default script: stream a word, wait for the gate, answer with the texts."""
    yield TextDelta("thinking")
    await turn.gate.wait()
    yield Done(" + ".join(turn.texts))


class ScriptedRunner:
    def __init__(self, script: Script = answer_when_opened) -> None:
        self.script = script
        self.turns: list[Turn] = []
        self.started: asyncio.Queue[Turn] = asyncio.Queue()

    def run(
        self,
        *,
        thread: ThreadKey,
        messages: Sequence[Inbound],
        assistant: Assistant,
        approve: Approve,
        state: TurnSnapshot,
    ) -> AsyncGenerator[TurnEvent, None]:
        return self._run(Turn(thread, list(messages), approve, state))

    async def _run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        # Like the engine's: nothing happens until the dispatcher iterates.
        self.turns.append(turn)
        self.started.put_nowait(turn)
        async with contextlib.aclosing(self.script(turn)) as events:
            async for event in events:
                yield event

    async def next_turn(self) -> Turn:
        return await asyncio.wait_for(self.started.get(), BOUND)


class RecordingSink:
    def __init__(self, first: Inbound) -> None:
        self.first = first
        self.fed: list[TurnEvent] = []
        self.finished: Done | None = None
        self.failed: str | None = None
        self.asked: list[ApprovalRequest] = []
        self.decision: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.message_ts: str | None = f"{first.ts}9"  # the reply's placeholder, as Slack would name it

    def feed(self, event: TurnEvent) -> None:
        self.fed.append(event)

    async def finish(self, done: Done) -> None:
        self.finished = done
        self.ended.set()

    async def fail(self, kind: str) -> None:
        self.failed = kind
        self.ended.set()

    async def ask(self, request: ApprovalRequest) -> Decision:
        self.asked.append(request)
        return await self.decision


class RecordingReplies:
    def __init__(self) -> None:
        self.sinks: list[RecordingSink] = []
        self.opened: asyncio.Queue[RecordingSink] = asyncio.Queue()
        self.fail_next_open: Exception | None = None
        self.closed_interrupted: list[tuple[ReplyRef, bool]] = []

    async def open(self, first: Inbound) -> RecordingSink:
        if self.fail_next_open is not None:
            exc, self.fail_next_open = self.fail_next_open, None
            raise exc
        sink = RecordingSink(first)
        self.sinks.append(sink)
        self.opened.put_nowait(sink)
        return sink

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        self.closed_interrupted.append((reply, again))

    async def next_sink(self) -> RecordingSink:
        return await asyncio.wait_for(self.opened.get(), BOUND)


def dispatcher(store: Store, runner: ScriptedRunner, replies: RecordingReplies, **kwargs: int) -> Dispatcher:
    assistants = Assistants({"default": Assistant(name="default", model="gpt-test")}, "default")
    return Dispatcher(store=store, engine=runner, replies=replies, assistants=assistants, **kwargs)


async def ended(sink: RecordingSink) -> RecordingSink:
    await asyncio.wait_for(sink.ended.wait(), BOUND)
    return sink


async def idle(d: Dispatcher) -> None:
    """Wait until the dispatcher owns no task any more."""
    await wait_for(lambda: d.in_flight == 0, BOUND)
