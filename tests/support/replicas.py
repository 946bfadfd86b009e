"""Two bot replicas on one Redis (a server or a cluster), as Slack reaches them: a retried
event lands on the other replica, follow-ups on either."""

from __future__ import annotations

import asyncio

from assist_bot.store import ThreadKey
from tests.fakes.openai import FakeOpenAI, Text
from tests.fakes.slack import FakeSlack, mention, message, wait_for
from tests.support.bot import running_bot, wait_pending


async def retry_and_follow_ups_on_two_replicas(slack: FakeSlack, openai: FakeOpenAI, redis_url: str, text: str) -> dict:
    """A mention reaches one replica and, retried (same event_id, X-Slack-Retry-Num 1), the
    other; while its answer streams, U2's follow-up lands on the first and U3's on the second.
    Returns the mention once both answers are in the thread and both replicas are idle."""
    gate = asyncio.Event()
    openai.enqueue(Text([f"w{n} " for n in range(15)], delay=0.02, gate=gate))
    async with (
        running_bot(slack, openai, REDIS_URL=redis_url) as one,
        running_bot(slack, openai, REDIS_URL=redis_url) as two,
    ):
        first = mention("C1", "U1", text)
        await asyncio.gather(one.send(first, event_id="EvR"), two.send(first, event_id="EvR", retry_num=1))
        await wait_for(lambda: openai.busy_conversations)
        await one.send(message("C1", "U2", "queued on one", thread_ts=first["ts"]))
        await two.send(message("C1", "U3", "queued on two", thread_ts=first["ts"]))
        await wait_pending(one.bot.store, ThreadKey("T1", "C1", first["ts"]), 2)
        gate.set()
        await wait_for(
            lambda: (
                len(slack.thread_replies("C1", first["ts"])) == 2
                and "queued on two" in slack.thread_replies("C1", first["ts"])[1].text
            )
        )
        # A retry answered twice would show as a third turn, still running here.
        await one.settled()
        await two.settled()
    return first
