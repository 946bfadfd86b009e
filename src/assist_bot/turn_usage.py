"""A turn's usage, for the dispatcher: its budgets checked before any model call, what
it used recorded once its reply has ended (the meter and the ledger: usage.py).

Neither may break a thread: a ledger that is down lets the turn answer, and a record
that fails loses that turn's figures only. Without a meter (None), neither happens.
"""

from __future__ import annotations

import logging

from assist_bot.assistants import Assistant
from assist_bot.dispatch_ports import ReplySink
from assist_bot.events import StateChange, UsageReport
from assist_bot.store import ThreadKey
from assist_bot.store.base import TurnSnapshot
from assist_bot.store.ledger import Owner
from assist_bot.usage import Meter

log = logging.getLogger(__name__)


async def refused_over_budget(meter: Meter | None, thread: ThreadKey, *, user: str, sink: ReplySink) -> bool:
    """Checked before any model call: a used-up budget ends the turn with a note (True)."""
    if meter is None:
        return False
    scope = await meter.over_budget(team=thread.team, channel=thread.channel, user=user)
    if scope is None:
        return False
    log.info("turn in %s/%s refused: %s budget used up", thread.channel, thread.thread_ts, scope)
    await sink.fail(f"budget_{scope}")
    return True


async def record_usage(
    meter: Meter | None,
    thread: ThreadKey,
    *,
    user: str,
    assistant: Assistant,
    reports: list[UsageReport],
    state: TurnSnapshot,
    change: StateChange,
) -> None:
    if meter is None:
        return
    # The thread's server state is a conversation (conv_…), or in response_chain mode a
    # response id: only a conversation is something to delete later.
    server_state = change.server_state or state.server_state or ""
    try:
        await meter.record(
            thread=Owner(thread.team, thread.channel, thread.thread_ts),
            user=user,
            assistant=assistant.name,
            reports=reports,
            conversation=server_state if server_state.startswith("conv") else None,
            server=assistant.backend.server,  # where clean-up deletes them
        )
    except Exception:  # figures lost for one turn must not break the thread
        log.warning("recording usage of %s/%s failed", thread.channel, thread.thread_ts, exc_info=True)
