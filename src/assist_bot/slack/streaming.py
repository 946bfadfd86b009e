"""A reply streamed with Slack's native streaming: chat.startStream / appendStream / stopStream.

Text is buffered and sent at most once per `interval` (one append per flush, not one per token);
tool steps show as `task_update` chunks (pending → in_progress → complete / error; kept by
slack/stream_tasks.py) instead of text; the final stop carries the sources and the feedback
buttons. The status ("is thinking…") shows until the first text.

What Slack may do mid-answer, and what the reply does then:
- refuses streaming (`not_allowed`, `unknown_method`, …) → this reply, and every later one in
  that workspace, continues with edits (`EditReply`) from the text not yet shown;
- ends the stream (`message_not_in_streaming_state`, streams expire after a few minutes) → the
  text that was not accepted opens a new stream: nothing is lost and nothing repeated;
- a message grows past `limit` → it is stopped and the answer continues in a new one;
- 429 → that method pauses for the workspace (slack/calls.py); the text keeps coalescing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.models.messages.chunk import BlocksChunk, Chunk, MarkdownTextChunk
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision, Done, FileOutput, TextDelta, ToolActivity, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.slack import feedback, stop, stream_tasks
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.calls import Outcome, SlackCalls
from assist_bot.slack.file_outputs import upload
from assist_bot.slack.mrkdwn import MESSAGE_LIMIT, neutralise_markdown, safe_cut, split, to_mrkdwn
from assist_bot.slack.pacing import Pacer
from assist_bot.slack.render import footnotes, link_sandbox
from assist_bot.slack.reply import EditReply, stop_between_calls, with_blocks
from assist_bot.slack.status import ThreadStatus
from assist_bot.slack.stream_tasks import StreamTasks

log = logging.getLogger(__name__)

# markdown_text takes 12,000 characters per call; a streamed message stays under that too, so
# a long answer continues in a new message (with room for the zero-width spaces we add).
STREAM_LIMIT = 11_000
# Errors that mean "no streaming here" (an older or restricted workspace, a missing scope).
REFUSED = frozenset(
    {"not_allowed", "unknown_method", "missing_scope", "not_allowed_token_type", "feature_not_enabled", "not_enabled"}
)
EXPIRED = "message_not_in_streaming_state"
# A workspace whose streaming takes no `blocks` chunk yet: the answer streams without its Stop button.
BLOCKS_REFUSED = frozenset({"invalid_chunks", "invalid_blocks"})
_FENCE = "```"


class StreamReply:
    def __init__(
        self,
        client: AsyncWebClient,
        calls: SlackCalls,
        first: Inbound,
        *,
        status: ThreadStatus,
        interval: float,
        approvals: Approvals,
        pacer: Pacer,
        fallback: Callable[[AsyncWebClient, Inbound, ThreadStatus, bool], EditReply],
        limit: int = STREAM_LIMIT,
    ) -> None:
        self._client, self._calls, self._first = client, calls, first
        self._team, self._channel, self._thread_ts = first.team, first.channel, first.thread_ts
        self._status, self._interval, self._approvals = status, interval, approvals
        self._fallback, self._limit = fallback, limit
        # The workspace's chat.appendStream budget. Nothing is reserved per stream: the final
        # text goes with chat.stopStream, and an overflowing final append waits for its token.
        self._pacer = pacer
        self._fed = ""  # every delta, for reconciling with Done.text
        self._pending = ""  # text not yet accepted by Slack
        self._accepted = ""  # text Slack took, in every message of this reply
        self._ts: str | None = None  # the message streaming now
        self._first_ts: str | None = None  # the reply's first message (recorded for crash recovery)
        self.message_shown = asyncio.Event()  # set once it exists
        self._stream_text = ""  # what that message holds
        self._tasks = StreamTasks()  # tool and approval steps, as task_update chunks
        self._edit: EditReply | None = None
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._uploads: list[asyncio.Task[None]] = []
        self._links: dict[str, str] = {}  # sandbox path → permalink of the uploaded file
        self._stop_button = False  # shown once, with the first chunk of a streaming answer

    async def start(self) -> None:
        # No placeholder message: the status shows until there is something to stream.
        self._status.thinking()
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"stream {self._thread_ts}")

    # -- the sink protocol ------------------------------------------------------------
    @property
    def message_ts(self) -> str | None:
        """The reply's first message, once its stream started (none before the first text)."""
        return self._first_ts

    def feed(self, event: TurnEvent) -> None:
        if self._edit is not None:
            self._edit.feed(event)
            return
        if isinstance(event, TextDelta):
            self._fed += event.text
            self._pending += event.text
            self._tasks.complete_open()
            self._status.hide()
        elif isinstance(event, FileOutput):
            self._uploads.append(asyncio.create_task(self._upload(event)))
            return
        elif isinstance(event, ToolActivity):
            self._tool(event)
        self._dirty.set()

    def _tool(self, event: ToolActivity) -> None:
        self._tasks.tool(event)
        if event.active:
            self._status.show(texts.tool_activity(event.kind, event.name))

    async def ask(self, request: ApprovalRequest) -> Decision:
        task_id = self._tasks.pending(f"{request.tool}: {texts.WAITING_FOR_APPROVAL}")
        self._dirty.set()
        decision = await self._approvals.ask(request, team=self._team, channel=self._channel, thread_ts=self._thread_ts)
        self._tasks.decided(task_id, request.tool, ok=decision.approved)
        self._dirty.set()
        return decision

    async def finish(self, done: Done) -> None:
        try:
            await self._stop_flusher()
            await self._wait_uploads()  # first: the rest of the text links to the uploaded files
            if self._edit is None:
                self._tasks.complete_open()
                if done.text.startswith(self._fed):
                    self._pending += done.text[len(self._fed) :]  # deltas we never saw
                if not self._fed.strip() and not done.text.strip():
                    self._pending += texts.EMPTY_ANSWER
                blocks = _sources_blocks(done) + [feedback.block(done.response_id)]
                await self._end(blocks=blocks, note="")
            if self._edit is not None:  # edits took over, before or during the end
                await self._edit.finish(done)
        finally:
            self._pacer.forget(self._team, self)
            await self._status.clear()

    async def fail(self, kind: str) -> None:
        try:
            await self._stop_flusher()
            if self._edit is None:
                self._tasks.complete_open(status="error")  # a step that never finished failed with the answer
                await self._wait_uploads()
                if await self._flush(final=True) and self._edit is None:
                    await self._end(blocks=[], note=texts.failure(kind))
            if self._edit is not None:
                await self._edit.fail(kind)
        finally:
            self._pacer.forget(self._team, self)
            await self._status.clear()

    # -- streaming ----------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._flush(final=False)
            except Exception:  # a progress append must never take the reply down with it
                log.exception("streaming in %s failed", self._channel)
            await asyncio.sleep(self._interval)  # appends coalesce meanwhile

    async def _stop_flusher(self) -> None:
        await stop_between_calls(self._flusher, self._lock)
        self._flusher = None

    async def _flush(self, *, final: bool) -> bool:
        """Send what is pending: one call while streaming; everything (in as many calls and
        messages as it takes) when `final`. False when Slack would not take it."""
        async with self._lock:
            for _ in range(50 if final else 1):
                if self._edit is not None:
                    return True
                text, full = self._next_piece(final=final)
                if full:
                    await self._roll_over()
                    continue
                if not text and not self._tasks:
                    return True
                if not await self._send(text, final=final):
                    return False
                if not self._pending and not self._tasks:
                    return True
            return not final

    def _next_piece(self, *, final: bool) -> tuple[str, bool]:
        """The next text to send, and whether the message is full first. Text is held back at
        a `<` or `]` that the next delta completes, and cut at a line end where the message
        fills up (the rest opens the next message)."""
        text = self._pending[: len(self._pending) if final else safe_cut(self._pending)]
        opening = len(_FENCE) + 1 if self._ts is None and self._continues_code() else 0
        room = self._limit - (len(self._stream_text) if self._ts else opening)
        if len(text) <= room:
            return text, False
        cut = text.rfind("\n", 0, room)
        if cut > 0:
            return text[:cut], False
        if self._ts is not None:
            return "", True  # no line end fits: the next line starts the next message
        return text[:room], False  # one huge line in a fresh message: cut it

    async def _send(self, text: str, *, final: bool) -> bool:
        tasks = self._tasks.unsent()
        chunks = stream_tasks.chunks(tasks)
        opening = _FENCE + "\n" if self._ts is None and self._continues_code() else ""
        shown = opening + (text.lstrip("\n") if self._ts is None else text)
        if shown:
            chunks.insert(0, MarkdownTextChunk(text=self._markdown(shown)))
        outcome = await (self._append(chunks, final) if self._ts else self._start(chunks, final))
        if outcome.ok:
            self._pacer.shown(self._team, self)  # the next optional append waits its turn from now
            self._accepted += text
            self._pending = self._pending[len(text) :]
            self._stream_text += shown
            self._tasks.sent(tasks)
            return True
        if outcome.error == EXPIRED:
            self._ts = None  # not accepted: the next stream carries it (reopening code if need be)
            return True
        if self._ts is None and outcome.error not in ("ratelimited", "connection"):
            await self._switch_to_edits(refused=outcome.error in REFUSED)
            return True
        return False

    async def _start(self, chunks: list[Chunk], must: bool) -> Outcome:
        button = not self._stop_button and not must  # an answer that arrives whole has nothing to stop
        if button:  # the Stop button heads the answer's first message; its value names this answer
            outcome = await self._start_call([BlocksChunk(blocks=[stop.block(self._first.ts)]), *chunks], must)
            if outcome.ok or outcome.error in BLOCKS_REFUSED:
                self._stop_button = True  # shown, or refused: either way never sent again
            if outcome.error not in BLOCKS_REFUSED:
                return self._started(outcome)
            log.warning("Slack refused the Stop button in %s (%s): streaming without it", self._team, outcome.error)
        return self._started(await self._start_call(chunks, must))

    async def _start_call(self, chunks: list[Chunk], must: bool) -> Outcome:
        return await self._calls.run(
            self._team,
            "chat.startStream",
            lambda: self._client.chat_startStream(
                channel=self._channel,
                thread_ts=self._thread_ts,
                recipient_team_id=self._team,
                recipient_user_id=self._first.user,
                chunks=chunks,
                task_display_mode="timeline",
            ),
            must=must,
        )

    def _started(self, outcome: Outcome) -> Outcome:
        if outcome.ok:
            self._ts = str((outcome.response or {}).get("ts") or "") or None
            self._first_ts = self._first_ts or self._ts
            if self._first_ts:
                self.message_shown.set()
            self._stream_text = ""
        return outcome

    async def _append(self, chunks: list[Chunk], must: bool) -> Outcome:
        ts = self._ts or ""
        if must:
            await self._pacer.take(self._team)
        elif not self._pacer.try_take(self._team, self):
            # The workspace's append budget is spent, or another answer has waited longer for its
            # next visible update: the text coalesces into a later append.
            self._dirty.set()
            return Outcome(error="paced")
        return await self._calls.run(
            self._team,
            "chat.appendStream",
            lambda: self._client.chat_appendStream(channel=self._channel, ts=ts, chunks=chunks),
            must=must,
        )

    def _markdown(self, text: str) -> str:
        """Model text as streamed: `sandbox:` links pointed at uploaded files, then neutralised."""
        return neutralise_markdown(link_sandbox(text, self._links) if "sandbox:" in text else text)

    def _continues_code(self) -> bool:
        return bool(self._stream_text) and self._stream_text.count(_FENCE) % 2 == 1

    async def _roll_over(self) -> None:
        """The message is full: close it (and an open code block) so the rest opens a new one."""
        close = "\n" + _FENCE if self._continues_code() else ""
        await self._stop(markdown=close, blocks=[])
        self._ts = None  # _stream_text stays until the next start, to know whether code continues

    async def _stop(self, *, markdown: str, blocks: list[dict[str, Any]], chunks: list[Chunk] | None = None) -> bool:
        ts = self._ts or ""
        outcome = await self._calls.run(
            self._team,
            "chat.stopStream",
            lambda: self._client.chat_stopStream(
                channel=self._channel, ts=ts, markdown_text=markdown or None, blocks=blocks or None, chunks=chunks
            ),
            must=True,
        )
        if outcome.error == EXPIRED:
            self._ts = None  # nothing of this call was taken: the rest goes to a new stream
        return outcome.ok

    async def _stop_with_rest(self, *, closing: str, blocks: list[dict[str, Any]]) -> bool:
        """End the stream in one call that also carries the rest of the text and the last task
        updates: the stop is not an append, so the final text does not wait for the
        workspace's append budget."""
        if self._ts is None or len(self._stream_text) + len(self._pending) + len(closing) > self._limit:
            return False
        rest, chunks = self._pending, stream_tasks.chunks(self._tasks.unsent())
        if not await self._stop(markdown=self._markdown(rest) + closing, blocks=blocks, chunks=chunks or None):
            return False
        self._accepted += rest
        self._stream_text += rest
        self._pending = ""
        self._tasks.drop_unsent()
        return True

    async def _end(self, *, blocks: list[dict[str, Any]], note: str) -> None:
        """Send the rest, then stop the stream with the closing blocks and our note (our own
        text: not neutralised, so a mention in it works). Whatever Slack refuses on the way
        still reaches the thread, as a new message."""
        closing = ("\n\n" if self._accepted.strip() or self._pending.strip() else "") + note if note else ""
        if await self._stop_with_rest(closing=closing, blocks=blocks):
            return
        sent = await self._flush(final=True)
        if self._edit is not None:
            return
        closing = ("\n\n" if self._accepted.strip() else "") + note if note else ""
        if sent and self._ts is not None and await self._stop(markdown=closing, blocks=blocks):
            return
        # The stream could not be ended with what it still needs: messages in the thread carry it.
        body = to_mrkdwn(self._pending) if self._pending.strip() else ""
        body = f"{body}\n\n{note}" if body and note else body or note or feedback.PROMPT
        pieces = split(body, MESSAGE_LIMIT)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            await self._calls.run(
                self._team,
                "chat.postMessage",
                lambda piece=piece, last=last: self._client.chat_postMessage(  # type: ignore[misc]
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    text=piece,
                    blocks=with_blocks(piece, blocks) if blocks and last else None,
                    unfurl_links=False,
                ),
                must=True,
                channel=self._channel,
            )
        self._pending = ""

    async def _switch_to_edits(self, *, refused: bool) -> None:
        """Continue this reply with edits, from the text Slack has not shown yet."""
        edit = self._fallback(self._client, self._first, self._status, refused)
        edit.already_shown = self._accepted  # an earlier (expired) stream showed this much
        self._edit = edit
        if self._pending:
            edit.feed(TextDelta(self._pending))
        for kind, name in self._tasks.open_tools():
            edit.feed(ToolActivity(kind=kind, name=name))
        self._pending = ""
        self._tasks.drop_unsent()
        await edit.start()

    # -- files ------------------------------------------------------------------------------
    async def _upload(self, output: FileOutput) -> None:
        thread = (self._channel, self._thread_ts)
        self._links.update(await upload(self._client, self._calls, output, team=self._team, thread=thread))

    async def _wait_uploads(self) -> None:
        if self._uploads:
            await asyncio.gather(*self._uploads, return_exceptions=True)
            self._uploads.clear()


def _sources_blocks(done: Done) -> list[dict[str, Any]]:
    footer = footnotes(done.citations)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": footer}}] if footer else []
