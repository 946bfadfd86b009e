"""Replies: Slack's native stream by default, edited messages as the fallback.

`SlackReplies.open()` picks the way for each reply: `ASSIST_BOT_STREAM_MODE=native` streams
with chat.startStream/appendStream/stopStream (slack/streaming.py) unless the workspace refused
streaming before; `edit` (and the fallback) posts a placeholder and edits it (`EditReply`).

The edit path: a flusher task edits the placeholder with what the model has written so far, at
most once per message per `interval` seconds. `feed()` never awaits, so the model's stream never
waits on Slack: deltas that arrive during an edit coalesce into the next one. A reply longer than
one message continues in further messages in the same thread. Every Slack call goes through
`SlackCalls`, so no failure escapes: the reply always ends with its final text or a note, and
the pacing token it reserved is always returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision, Done, FileOutput, TextDelta, ToolActivity, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.slack import feedback, recovery
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.calls import RateGate, SlackCalls, without_retries
from assist_bot.slack.clients import SlackClients
from assist_bot.slack.file_outputs import upload
from assist_bot.slack.mrkdwn import MESSAGE_LIMIT, split, to_mrkdwn
from assist_bot.slack.pacing import Pacer
from assist_bot.slack.render import close_unfinished, footnotes, for_display
from assist_bot.slack.status import ThreadStatus
from assist_bot.store.base import ReplyRef

log = logging.getLogger(__name__)

StreamMode = Literal["native", "edit"]
SECTION_LIMIT = 3000  # a section block's text


class SlackReplies:
    """Opens one reply per turn (the `Replies` protocol of the dispatcher)."""

    def __init__(
        self,
        clients: SlackClients,
        *,
        interval: float,
        pacer: Pacer,
        approvals: Approvals,
        mode: StreamMode = "native",
        gate: RateGate | None = None,
        append_pacer: Pacer | None = None,
        limit: int = MESSAGE_LIMIT,
    ) -> None:
        self._append_pacer = append_pacer or Pacer(per_minute=None, floor=100, method="chat.appendStream")
        self._clients = clients
        self._interval = interval
        self._pacer = pacer
        self._approvals = approvals
        self._mode = mode
        # A 429 of a paced method teaches its pacer the workspace's real limit.
        pacers = {"chat.update": pacer, "chat.appendStream": self._append_pacer}
        self._calls = SlackCalls(gate or RateGate(), pacers=pacers)
        self._limit = limit
        self._edit_only: set[str] = set()  # workspaces that refused native streaming

    async def open(self, first: Inbound) -> Any:
        # The reply speaks with its workspace's own token, and handles failures itself.
        client = without_retries(await self._clients.for_team(first.team))
        status = ThreadStatus(client, self._calls, team=first.team, channel=first.channel, thread_ts=first.thread_ts)
        reply: Any
        if self._mode == "native" and first.team not in self._edit_only:
            from assist_bot.slack.streaming import StreamReply  # streaming builds on this module

            reply = StreamReply(
                client,
                self._calls,
                first,
                status=status,
                interval=self._interval,
                approvals=self._approvals,
                pacer=self._append_pacer,
                fallback=self._fall_back,
            )
        else:
            reply = self.edit_reply(client, first, status)
        await reply.start()
        return reply

    def edit_reply(self, client: AsyncWebClient, first: Inbound, status: ThreadStatus) -> EditReply:
        return EditReply(
            client,
            self._calls,
            first,
            status=status,
            interval=self._interval,
            pacer=self._pacer,
            approvals=self._approvals,
            limit=self._limit,
        )

    def _fall_back(self, client: AsyncWebClient, first: Inbound, status: ThreadStatus, refused: bool) -> EditReply:
        """Continue a reply with edits. When Slack refused streaming as such (not merely this
        call), every later reply in that workspace uses edits too."""
        if refused:
            log.warning("native streaming refused in %s: replying with edits there", first.team)
            self._edit_only.add(first.team)
        return self.edit_reply(client, first, status)

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        await recovery.close_interrupted(await self._clients.for_team(reply.team), reply, again=again)


async def stop_between_calls(task: asyncio.Task[None] | None, lock: asyncio.Lock) -> None:
    """Stop a reply's background sender between two Slack calls, never during one: Slack may
    have taken a call in flight, and cancelling it would make us send it again."""
    if task is None:
        return
    async with lock:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class EditReply:
    def __init__(
        self,
        client: AsyncWebClient,
        calls: SlackCalls,
        first: Inbound,
        *,
        status: ThreadStatus,
        interval: float,
        pacer: Pacer,
        approvals: Approvals,
        limit: int,
    ) -> None:
        self._client = client
        self._calls = calls
        self._pacer = pacer
        self._approvals = approvals
        self._status = status
        self._team = first.team
        self._channel = first.channel
        self._thread_ts = first.thread_ts
        self._thread = (first.channel, first.thread_ts)
        self._interval = interval
        self._limit = limit
        self._markdown = ""
        self._activity = ""
        self._shown: list[tuple[str, str]] = []  # (ts, text) of each message we posted
        self._dirty = asyncio.Event()
        self._render_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._uploads: list[asyncio.Task[None]] = []
        self._footer = ""
        self._links: dict[str, str] = {}  # sandbox path → permalink of the uploaded file
        self._opened = False
        self.already_shown = ""  # answer text a native stream showed before edits took over

    async def start(self, *, placeholder: bool = True) -> None:
        self._pacer.opened(self._team)
        self._opened = True
        self._status.thinking()
        if placeholder:
            ts = await self._post(texts.THINKING)
            if ts:
                self._shown.append((ts, texts.THINKING))
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"reply {self._thread_ts}")

    # -- the sink protocol ------------------------------------------------------
    @property
    def message_ts(self) -> str | None:
        return self._shown[0][0] if self._shown else None

    def feed(self, event: TurnEvent) -> None:
        if isinstance(event, TextDelta):
            self._markdown += event.text
            self._activity = ""
            self._status.hide()
        elif isinstance(event, FileOutput):
            # Uploading must not hold up the stream: it runs alongside, and finish() waits for it.
            self._uploads.append(asyncio.create_task(self._upload(event)))
            return
        elif isinstance(event, ToolActivity) and event.active:
            # Kept until text arrives: a quick tool would otherwise flash by unseen
            # between two edits.
            self._activity = texts.tool_activity(event.kind, event.name)
            self._status.show(self._activity)
        self._dirty.set()

    async def finish(self, done: Done) -> None:
        try:
            await self._stop_flusher()
            # The completed text is authoritative (deltas could, in theory, be lost).
            text = done.text or self._markdown
            if self.already_shown and text.startswith(self.already_shown):
                text = text[len(self.already_shown) :]
            self._markdown = text
            self._footer = footnotes(done.citations)
            await self._wait_uploads()  # first: the final text links to the uploaded files
            note = None if self._markdown.strip() else texts.EMPTY_ANSWER
            await self._render(final_note=note, final_blocks=[feedback.block(done.response_id)])
        finally:
            await self._close()

    async def fail(self, kind: str) -> None:
        try:
            await self._stop_flusher()
            await self._wait_uploads()
            self._markdown = close_unfinished(self._markdown)  # the answer stopped mid-way
            await self._render(final_note=texts.failure(kind))
        finally:
            await self._close()

    async def ask(self, request: ApprovalRequest) -> Decision:
        self._activity = texts.WAITING_FOR_APPROVAL
        self._dirty.set()
        return await self._approvals.ask(request, team=self._team, channel=self._channel, thread_ts=self._thread_ts)

    async def _close(self) -> None:
        if self._opened:
            self._opened = False
            self._pacer.closed(self._team)
        await self._status.clear()

    # -- rendering ----------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            if self._shown and not self._pacer.can_take(self._team):
                # The workspace's edit budget is spent: skip rendering (it is not free) and
                # let the text coalesce into a later edit.
                await asyncio.sleep(self._interval)
                continue
            self._dirty.clear()
            try:
                await self._render(final_note=None, streaming=True)
            except Exception:  # a progress edit must never take the reply down with it
                log.exception("progress edit in %s failed", self._channel)
            # At most one edit per message per interval; deltas meanwhile coalesce.
            await asyncio.sleep(self._interval)

    async def _stop_flusher(self) -> None:
        await stop_between_calls(self._flusher, self._render_lock)
        self._flusher = None

    def _compose(self, *, final_note: str | None, streaming: bool) -> list[str]:
        shown = for_display(self._markdown, links=self._links, streaming=streaming)
        body = to_mrkdwn(shown, trusted=set(self._links.values()))
        if self._footer:
            body = f"{body}\n\n{self._footer}"
        if streaming and self._activity:
            body = f"{body}\n\n_{self._activity}_" if body else f"_{self._activity}_"
        elif streaming and not body:
            body = texts.THINKING
        if final_note:
            body = f"{body}\n\n{final_note}" if body.strip() else final_note
        return split(body, self._limit)

    async def _render(
        self, *, final_note: str | None, streaming: bool = False, final_blocks: list[dict[str, Any]] | None = None
    ) -> None:
        async with self._render_lock:
            chunks = self._compose(final_note=final_note, streaming=streaming)
            for index, chunk in enumerate(chunks):
                blocks = with_blocks(chunk, final_blocks) if final_blocks and index == len(chunks) - 1 else None
                if index < len(self._shown):
                    ts, shown = self._shown[index]
                    if chunk == shown and blocks is None:
                        continue
                    if streaming:
                        if not self._pacer.try_take(self._team):
                            self._dirty.set()  # the workspace's edit budget is spent: try again later
                            continue
                        if await self._update(ts, chunk, must=False):
                            self._shown[index] = (ts, chunk)
                        continue
                    await self._pacer.take(self._team)
                    if await self._update(ts, chunk, blocks=blocks, must=True):
                        self._shown[index] = (ts, chunk)
                        continue
                # No message yet, or the final edit could not be made: a new message carries it.
                posted = await self._post(chunk, blocks=blocks, must=not streaming)
                if posted and index < len(self._shown):
                    self._shown[index] = (posted, chunk)
                elif posted:
                    self._shown.append((posted, chunk))

    async def _upload(self, output: FileOutput) -> None:
        self._links.update(await upload(self._client, self._calls, output, team=self._team, thread=self._thread))

    async def _wait_uploads(self) -> None:
        if self._uploads:
            await asyncio.gather(*self._uploads, return_exceptions=True)
            self._uploads.clear()

    # -- Slack calls: contained; a final one is retried, then replaced by a new message ------
    async def _post(self, text: str, *, blocks: list[dict[str, Any]] | None = None, must: bool = False) -> str | None:
        outcome = await self._calls.run(
            self._team,
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread_ts,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            ),
            must=must,
            channel=self._channel,
        )
        return (outcome.response or {}).get("ts") if outcome.ok else None

    async def _update(
        self, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None, must: bool = False
    ) -> bool:
        outcome = await self._calls.run(
            self._team,
            "chat.update",
            lambda: self._client.chat_update(channel=self._channel, ts=ts, text=text, blocks=blocks),
            must=must,
        )
        return outcome.ok


def with_blocks(text: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The message's text as section blocks, then `extra` (feedback buttons): once a message has
    blocks, Slack shows them instead of `text`."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in split(text, SECTION_LIMIT)]
    return [*sections, *extra]
