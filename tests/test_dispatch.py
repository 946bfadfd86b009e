"""The dispatcher with a scripted turn runner and a recording reply sink, over the
in-memory store: queue folding, release on shutdown, the crash boundary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from assist_bot.crash_recovery import LOCK_LEASE
from assist_bot.errors import TurnError
from assist_bot.events import Done, Failed, TextDelta, TurnEvent
from assist_bot.store import ThreadKey
from assist_bot.store.memory import MemoryStore
from tests.support.dispatching import (
    RecordingReplies,
    ScriptedRunner,
    Turn,
    dispatcher,
    ended,
    idle,
    inbound,
)

pytestmark = pytest.mark.timeout(20)

THREAD = ThreadKey("T1", "C1", "100.1")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(retention_seconds=60)


async def thread_is_free(store: MemoryStore, thread: ThreadKey = THREAD) -> bool:
    """Another replica could take the thread now (its lock is not held)."""
    probe = await store.enqueue(thread, {"probe": True}, dedupe_token="probe", owner="other", lease=LOCK_LEASE)
    return probe.locked


async def test_messages_that_arrive_during_a_turn_are_answered_together_in_the_next(store):
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies)
    assert await d.submit(inbound("first"))
    first = await runner.next_turn()
    for text in ("second", "third", "fourth"):
        assert await d.submit(inbound(text))
    first.gate.set()
    second = await runner.next_turn()
    second.gate.set()
    await idle(d)
    assert [t.texts for t in runner.turns] == [["first"], ["second", "third", "fourth"]]
    assert [s.finished.text for s in replies.sinks] == ["first", "second + third + fourth"]
    assert replies.sinks[1].first.text == "fourth"  # the reply answers the latest message
    assert await thread_is_free(store)


async def test_a_duplicate_delivery_is_dropped(store):
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies)
    message = inbound("once")
    assert await d.submit(message) is True
    assert await d.submit(message) is False
    (await runner.next_turn()).gate.set()
    await idle(d)
    assert [t.texts for t in runner.turns] == [["once"]]


async def test_shutdown_cancels_a_running_turn_closes_its_reply_and_frees_the_thread(store):
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("long"))
    await runner.next_turn()  # never opened: the turn hangs
    await d.shutdown(grace=0)
    [sink] = replies.sinks
    assert sink.failed == "interrupted" and sink.finished is None
    assert sink.fed == [TextDelta("thinking")]
    assert d.in_flight == 0
    assert await thread_is_free(store)  # another replica may take the thread at once
    assert await d.submit(inbound("after shutdown")) is False
    # The reply was closed with its note: the next holder neither answers it again nor closes it twice.
    start = await store.begin_turn(THREAD)
    assert start.interrupted is None and [i for i in start.items if "text" in i] == []


async def test_a_replica_that_takes_over_closes_the_dead_turns_reply_and_answers_it_again(store):
    """What the sweeper does when a turn's owner died (here: its lease ran out on the store's clock)."""
    clock = [0.0]
    store = MemoryStore(retention_seconds=60, clock=lambda: clock[0])
    dead_runner, dead_replies = ScriptedRunner(), RecordingReplies()
    dead = dispatcher(store, dead_runner, dead_replies, lock_lease=2)
    await dead.submit(inbound("lost"))
    await dead_runner.next_turn()  # hangs: then its process "dies" (its tasks are never resumed)
    await dead.submit(inbound("waiting"))
    clock[0] += 3  # the lease ran out
    runner, replies = ScriptedRunner(), RecordingReplies()
    survivor = dispatcher(store, runner, replies, lock_lease=2)
    assert await survivor.sweep() == 1
    assert await survivor.sweep() == 0  # taken once
    turn = await runner.next_turn()
    assert turn.texts == ["lost", "waiting"]
    [(closed, again)] = replies.closed_interrupted
    assert (closed.ts, again) == (dead_replies.sinks[0].message_ts, True)
    turn.gate.set()
    await ended(replies.sinks[0])
    for task in list(dead._tasks):
        task.cancel()


async def test_shutdown_lets_the_running_turn_end_and_leaves_the_queue_to_another_replica(store):
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("running"))
    running = await runner.next_turn()
    await d.submit(inbound("queued"))
    stopping = asyncio.create_task(d.shutdown(grace=5))
    await asyncio.sleep(0)
    running.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert [t.texts for t in runner.turns] == [["running"]]  # no new turn once shutting down
    assert replies.sinks[0].finished.text == "running"
    # The queued message is still there, and its thread is free for another replica.
    assert await thread_is_free(store)
    assert [item["text"] for item in (await store.begin_turn(THREAD)).items if "text" in item] == ["queued"]


async def crash(turn: Turn) -> AsyncIterator[TurnEvent]:
    yield TextDelta("half an ans")
    raise RuntimeError("a bug")


async def turn_error(turn: Turn) -> AsyncIterator[TurnEvent]:
    # The engine turns a TurnError into Failed at its boundary (tests/engine/test_turn_end.py):
    # a runner that raises one anyway is a bug like any other.
    yield TextDelta("half")
    raise TurnError("timeout", "no complete response in time")


async def fails(turn: Turn) -> AsyncIterator[TurnEvent]:
    yield Failed("openai_unavailable", "503")


async def no_end(turn: Turn) -> AsyncIterator[TurnEvent]:
    yield TextDelta("and then nothing")


@pytest.mark.parametrize(
    ("script", "kind"),
    [(crash, "unexpected"), (turn_error, "unexpected"), (fails, "openai_unavailable"), (no_end, "unexpected")],
)
async def test_every_way_a_turn_can_fail_ends_the_reply_and_the_thread_goes_on(store, script, kind):
    runner, replies = ScriptedRunner(script), RecordingReplies()
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("breaks"))
    sink = await ended(await replies.next_sink())
    assert (sink.failed, sink.finished) == (kind, None)
    await idle(d)
    runner.script = answer_at_once
    await d.submit(inbound("works again"))
    assert (await ended(await replies.next_sink())).finished.text == "works again"
    await idle(d)
    assert await thread_is_free(store)


async def answer_at_once(turn: Turn) -> AsyncIterator[TurnEvent]:
    yield Done(" + ".join(turn.texts))


async def test_a_reply_that_cannot_even_open_frees_the_thread(store):
    runner, replies = ScriptedRunner(answer_at_once), RecordingReplies()
    replies.fail_next_open = ConnectionError("Slack is unreachable")
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("lost"))
    await idle(d)
    assert runner.turns == [] and await thread_is_free(store)


async def test_the_engine_stream_is_closed_before_the_reply_finishes(store):
    """Done ends the turn: the engine's generator is closed (its clean-up runs) before
    the dispatcher talks to Slack, not whenever the garbage collector gets to it."""
    closed_before_finish: list[bool] = []
    cleaned = asyncio.Event()

    async def script(turn: Turn) -> AsyncIterator[TurnEvent]:
        try:
            yield Done("answer")
            yield TextDelta("never read")
        finally:
            cleaned.set()

    class Sink(RecordingReplies):
        async def open(self, first):
            sink = await super().open(first)
            original = sink.finish

            async def finish(done):
                closed_before_finish.append(cleaned.is_set())
                await original(done)

            sink.finish = finish
            return sink

    runner, replies = ScriptedRunner(script), Sink()
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("q"))
    await ended(await replies.next_sink())
    assert closed_before_finish == [True]


async def test_a_reply_that_cannot_finish_does_not_strand_the_queue(store):
    """Slack refuses the final edit: the reply gets a note if it can, and the messages
    queued meanwhile are still answered by the same drain."""
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies)
    await d.submit(inbound("first"))
    first = await runner.next_turn()
    sink = replies.sinks[0]

    async def broken_finish(done):
        raise ConnectionError("chat.update: connection reset")

    sink.finish = broken_finish
    await d.submit(inbound("meanwhile"))
    first.gate.set()
    second = await runner.next_turn()
    assert second.texts == ["meanwhile"]
    second.gate.set()
    await idle(d)
    assert sink.failed == "unexpected"
    assert replies.sinks[1].finished.text == "meanwhile"
    assert await thread_is_free(store)
