"""Stop: cancelling an answer that streams, from whichever replica the stop reaches.

The answer streams on the replica that holds its thread; the `stop` reply or the Stop button
may reach any replica. So the running answer is recorded in the store (which turn, who asked),
the replica that receives a stop checks who may stop it (the askers, or an admin) and records
the stop there, and the store wakes the answer's replica at once (Redis pub/sub, the one
subscription approvals use): no polling. That replica cancels the answer, and its tool loop,
which ends with a note saying who stopped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from assist_bot.store import Store, ThreadKey

log = logging.getLogger(__name__)

# A message that is only one of these asks to stop its thread's answer: it is never queued as a question.
STOP_WORDS = frozenset({"stop", "stop!", "stop.", "⏹", "⏹️"})


def is_stop(text: str) -> bool:
    return text.strip().lower() in STOP_WORDS


@dataclass(frozen=True, slots=True)
class StopResult:
    """What a stop did: `stopped`; `refused` (not the asker nor an admin: `askers` may);
    `finished` (nothing of that answer streams any more)."""

    outcome: Literal["stopped", "refused", "finished"]
    askers: tuple[str, ...] = ()


async def request_stop(
    store: Store, thread: ThreadKey, *, user: str, admins: frozenset[str], turn: str | None = None
) -> StopResult:
    """Stop the answer streaming in `thread` (only answer `turn`, when given: a button stops its
    own answer, never a later one)."""
    running = await store.get_running(thread)
    if running is None or (turn is not None and running["turn"] != turn) or "stopped_by" in running:
        return StopResult("finished")
    askers = tuple(running["askers"])
    if user not in askers and user not in admins:
        return StopResult("refused", askers)
    if not await store.request_stop(thread, running["turn"], user):
        return StopResult("finished")  # it ended (or was stopped) meanwhile
    return StopResult("stopped", askers)


@dataclass
class Watch:
    by: str | None = None  # who stopped the answer, once someone did


@contextlib.asynccontextmanager
async def watching(
    store: Store, thread: ThreadKey, *, turn: str, askers: list[str], answer: asyncio.Task[Any]
) -> AsyncIterator[Watch]:
    """While the answer streams: a stop recorded for it (from any replica) cancels `answer`."""
    watch = Watch()
    try:
        await store.put_running(thread, turn, askers)
    except Exception:  # the store is unreachable: answer anyway, without Stop
        log.warning("could not record the answer in %s/%s: Stop unavailable", thread.channel, thread.thread_ts)
        yield watch
        return

    async def wait() -> None:
        by = await store.wait_for_stop(thread, turn)
        if by is not None:
            log.info("answer in %s/%s stopped by %s", thread.channel, thread.thread_ts, by)
            watch.by = by
            answer.cancel()

    watcher = asyncio.create_task(wait(), name=f"stop watch {thread.thread_ts}")
    try:
        yield watch
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        with contextlib.suppress(Exception):
            await asyncio.shield(store.clear_running(thread, turn))
