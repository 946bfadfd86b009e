"""Crash recovery: a turn whose replica died is taken over, its reply closed, its messages answered.

A running turn holds its thread's lock with a lease, refreshed at half-time, and lists the
thread among those with a running turn (`leased`). When its replica dies, the lease runs
out; the sweeper (one replica at a time, by a lease of its own in the store) finds such
threads and takes them over (`sweep`), and the new holder closes the dead turn's reply with
a note (`close_interrupted`) before answering its messages again. The dispatcher calls
these at the right moments; what survives a crash is decided here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from assist_bot.dispatch_ports import Replies
from assist_bot.store import Store, ThreadKey
from assist_bot.store.base import TurnSnapshot

log = logging.getLogger(__name__)

# Seconds a thread's lock outlives its holder: refreshed at half-time while a turn runs
# (or waits for a slot), so a dead replica's threads are taken over within a minute
# (ASSIST_BOT_LOCK_LEASE). The sweeper looks for them every half lease.
LOCK_LEASE = 60.0


@contextlib.asynccontextmanager
async def leased(store: Store, thread: ThreadKey, holder: str, *, lease: float) -> AsyncIterator[None]:
    """Keep `holder`'s lock of the thread for as long as the block runs, and the thread
    listed for the sweeper: once the process dies, neither is refreshed any more."""

    async def keep() -> None:
        # Listed for the sweeper at once (if this process dies now, it finds the thread),
        # then again with each refresh of the lease.
        with contextlib.suppress(Exception):
            await store.watch_turn(thread, lease)
        while True:
            await asyncio.sleep(lease / 2)
            try:
                if not await store.refresh_lock(thread, holder, lease):
                    log.warning("lost the lock of %s/%s", thread.channel, thread.thread_ts)
                    return
                await store.watch_turn(thread, lease)
            except Exception:  # the store is unreachable: the turn goes on, we try again
                log.warning("could not refresh the lock of %s/%s", thread.channel, thread.thread_ts)

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def sweep(
    store: Store,
    *,
    owner: str,
    lease: float,
    new_holder: Callable[[], str],
    drain: Callable[[ThreadKey, str], None],
) -> int:
    """If `owner` is the sweeper (one replica at a time, by a lease in the store): take
    over the threads whose turn's owner is gone — their lease ran out — each for a
    `new_holder()`, and hand them to `drain` to answer. Returns how many were taken over."""
    if not await store.hold_sweeper(owner, lease):
        return 0
    taken = 0
    for thread in await store.stalled_turns():
        holder = new_holder()
        if await store.take_over(thread, holder, lease):
            log.warning("thread %s/%s: its turn's owner is gone; taking over", thread.channel, thread.thread_ts)
            drain(thread, holder)
            taken += 1
    return taken


async def keep_sweeping(sweep: Callable[[], Awaitable[int]], *, every: float) -> None:
    """Sweep every `every` seconds, for the life of the process (the caller owns the task)."""
    while True:
        await asyncio.sleep(every)
        try:
            await sweep()
        except Exception as exc:  # the store is down, say: the next sweep tries again
            log.warning("sweeping for interrupted turns failed (%s)", type(exc).__name__)


async def close_interrupted(replies: Replies, start: TurnSnapshot) -> None:
    """A turn of this thread died with its process: close its reply with a note."""
    log.warning("closing a reply interrupted by a crash (%d message(s) given up)", start.given_up)
    if start.interrupted is None:
        return
    try:
        await replies.close_interrupted(start.interrupted, again=not start.given_up)
    except Exception:  # a note we cannot write must not keep the thread from its answer
        log.warning("could not close the interrupted reply %s", start.interrupted.ts, exc_info=True)
