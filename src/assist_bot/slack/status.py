"""The assistant status under a thread ("is thinking…", "is searching files…").

`assistant.threads.setStatus` with `loading_messages` shows while the bot waits for the first
token and while tools work, in DMs and channels. Slack clears a status by itself two minutes
after it was set, so a long wait re-sends it before then; the reply clears it at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack.calls import SlackCalls

log = logging.getLogger(__name__)

# Slack drops a status two minutes after it was set; refresh well before.
REFRESH_SECONDS = 90.0
# How long the end of a reply waits for the refresher to stop once told to. It stops at once
# unless something under it ignores cancellation; the reply must end even then.
STOP_GRACE = 2.0

THINKING_MESSAGES = ["Thinking…", "Reading your message…", "Putting an answer together…"]


class ThreadStatus:
    def __init__(
        self,
        client: AsyncWebClient,
        calls: SlackCalls,
        *,
        team: str,
        channel: str,
        thread_ts: str,
        refresh: float = REFRESH_SECONDS,
        deadline: Callable[[float | None], asyncio.Timeout] = asyncio.timeout,
    ) -> None:
        """`deadline` times the refresh: asyncio's own unless a test passes one it controls."""
        self._client = client
        self._calls = calls
        self._team, self._channel, self._thread_ts = team, channel, thread_ts
        self._refresh = refresh
        self._deadline = deadline
        self._wanted: tuple[str, tuple[str, ...]] = ("", ())
        self._changed = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    def thinking(self) -> None:
        self.show(texts.THINKING_STATUS, THINKING_MESSAGES)

    def show(self, status: str, loading: list[str] | None = None) -> None:
        """Show `status` (with Slack's rotating loading messages) until changed or cleared."""
        wanted = (status, tuple(loading or [status]))
        if wanted == self._wanted:
            return
        self._wanted = wanted
        self._changed.set()
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep(), name=f"status {self._thread_ts}")

    def hide(self) -> None:
        """Text is showing: stop refreshing the status. No call: a reply in the thread clears
        it on Slack's side, and under load every setStatus call counts against the workspace."""
        if self._wanted[0]:
            self._wanted = ("", ())
            self._changed.set()

    async def clear(self) -> None:
        """The reply ended: stop refreshing and clear the status."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            # Not `await keeper`: that would also swallow a cancellation of the reply itself.
            done, _ = await asyncio.wait({keeper}, timeout=STOP_GRACE)
            if not done:
                log.warning(
                    "the status refresher of %s did not stop within %.0fs; not waiting for it",
                    self._thread_ts,
                    STOP_GRACE,
                )
        self._wanted = ("", ())
        await self._send("", [])

    async def _keep(self) -> None:
        sent: tuple[str, tuple[str, ...]] | None = None
        while True:
            wanted = self._wanted
            self._changed.clear()
            if wanted != sent and wanted[0]:
                await self._send(wanted[0], list(wanted[1]))
                sent = wanted
            elif not wanted[0]:
                sent = None  # hidden: the next status is sent afresh
            try:
                async with self._deadline(self._refresh if wanted[0] else None):
                    await self._changed.wait()
            except TimeoutError:
                sent = None  # Slack is about to drop it: send it again

    async def _send(self, status: str, loading: list[str]) -> None:
        args: dict[str, object] = {"channel_id": self._channel, "thread_ts": self._thread_ts, "status": status}
        if loading:
            args["loading_messages"] = loading[:10]
        await self._calls.run(
            self._team,
            "assistant.threads.setStatus",
            lambda: self._client.api_call("assistant.threads.setStatus", json=args),
        )
