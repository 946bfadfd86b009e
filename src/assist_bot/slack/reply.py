"""Streaming a reply into Slack by editing messages.

A placeholder is posted at once; then a flusher task edits it with what the
model has written so far, at most once per message per `interval` seconds.
`feed()` never awaits, so the model's stream never waits on Slack: deltas that
arrive during an edit are coalesced into the next one. A reply longer than one
message continues in further messages in the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision, Done, FileOutput, TextDelta, ToolActivity, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.slack import escape, recovery
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.clients import SlackClients
from assist_bot.slack.mrkdwn import MESSAGE_LIMIT, split, to_mrkdwn
from assist_bot.slack.pacing import Pacer
from assist_bot.slack.render import close_unfinished, footnotes, for_display
from assist_bot.store.base import ReplyRef

log = logging.getLogger(__name__)


class SlackReplies:
    """Opens one SlackReply per turn (the `Replies` protocol of the dispatcher)."""

    def __init__(
        self, clients: SlackClients, *, interval: float, pacer: Pacer, approvals: Approvals, limit: int = MESSAGE_LIMIT
    ) -> None:
        self._clients = clients
        self._interval = interval
        self._pacer = pacer
        self._approvals = approvals
        self._limit = limit

    async def open(self, first: Inbound) -> SlackReply:
        reply = SlackReply(
            await self._clients.for_team(first.team),  # the reply speaks with its workspace's own token
            first,
            interval=self._interval,
            pacer=self._pacer,
            approvals=self._approvals,
            limit=self._limit,
        )
        await reply.start()
        return reply

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        await recovery.close_interrupted(await self._clients.for_team(reply.team), reply, again=again)


class SlackReply:
    def __init__(
        self, client: AsyncWebClient, first: Inbound, *, interval: float, pacer: Pacer, approvals: Approvals, limit: int
    ) -> None:
        self._client = client
        self._pacer = pacer
        self._approvals = approvals
        self._team = first.team
        self._channel = first.channel
        self._thread_ts = first.thread_ts
        self._is_dm = first.is_dm
        self._interval = interval
        self._limit = limit
        self._markdown = ""
        self._status = ""
        self._shown: list[tuple[str, str]] = []  # (ts, text) of each message we posted
        self._dirty = asyncio.Event()
        self._render_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._uploads: list[asyncio.Task[None]] = []
        self._footer = ""
        self._links: dict[str, str] = {}  # sandbox path → permalink of the uploaded file

    async def start(self) -> None:
        self._pacer.opened(self._team)
        await self._set_status(texts.THINKING_STATUS)
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
            self._status = ""
        elif isinstance(event, FileOutput):
            # Uploading must not hold up the stream: it runs alongside, and finish() waits for it.
            self._uploads.append(asyncio.create_task(self._upload(event)))
            return
        elif isinstance(event, ToolActivity) and event.active:
            # Kept until text arrives: a quick tool would otherwise flash by unseen
            # between two edits.
            self._status = texts.tool_activity(event.kind, event.name)
        self._dirty.set()

    async def finish(self, done: Done) -> None:
        await self._stop_flusher()
        # The completed text is authoritative (deltas could, in theory, be lost).
        self._markdown = done.text or self._markdown
        self._footer = footnotes(done.citations)
        await self._wait_uploads()  # first: the final text links to the uploaded files
        await self._render(final_note=None if self._markdown.strip() else texts.EMPTY_ANSWER)
        self._pacer.closed(self._team)
        await self._set_status("")

    async def fail(self, kind: str) -> None:
        await self._stop_flusher()
        await self._wait_uploads()
        self._markdown = close_unfinished(self._markdown)  # the answer stopped mid-way
        await self._render(final_note=texts.failure(kind))
        self._pacer.closed(self._team)
        await self._set_status("")

    async def ask(self, request: ApprovalRequest) -> Decision:
        self._status = texts.WAITING_FOR_APPROVAL
        self._dirty.set()
        return await self._approvals.ask(request, team=self._team, channel=self._channel, thread_ts=self._thread_ts)

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
            await self._render(final_note=None, streaming=True)
            # At most one edit per message per interval; deltas meanwhile coalesce.
            await asyncio.sleep(self._interval)

    async def _stop_flusher(self) -> None:
        if self._flusher is None:
            return
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        self._flusher = None

    def _compose(self, *, final_note: str | None, streaming: bool) -> list[str]:
        body = to_mrkdwn(for_display(self._markdown, links=self._links, streaming=streaming))
        if self._footer:
            body = f"{body}\n\n{self._footer}"
        if streaming and self._status:
            body = f"{body}\n\n_{self._status}_" if body else f"_{self._status}_"
        elif streaming and not body:
            body = texts.THINKING
        if final_note:
            body = f"{body}\n\n{final_note}" if body.strip() else final_note
        return split(body, self._limit)

    async def _render(self, *, final_note: str | None, streaming: bool = False) -> None:
        async with self._render_lock:
            for index, chunk in enumerate(self._compose(final_note=final_note, streaming=streaming)):
                if index < len(self._shown):
                    ts, shown = self._shown[index]
                    if chunk == shown:
                        continue
                    if streaming and not self._pacer.try_take(self._team):
                        self._dirty.set()  # the workspace's edit budget is spent: try again later
                        continue
                    if not streaming:
                        await self._pacer.take(self._team)
                    if await self._update(ts, chunk):
                        self._shown[index] = (ts, chunk)
                else:
                    posted = await self._post(chunk)
                    if posted:
                        self._shown.append((posted, chunk))

    async def _upload(self, output: FileOutput) -> None:
        try:
            uploaded = await self._client.files_upload_v2(
                channel=self._channel,
                thread_ts=self._thread_ts,
                filename=output.name,
                title=escape.escape(output.name),
                content=output.content,
            )
        except SlackApiError as exc:
            log.warning("uploading %s failed: %s", output.name, exc.response.get("error"))
            await self._post(texts.upload_failed(escape.escape(output.name)))
            return
        if output.sandbox_path:  # the answer links to it: point the link at the file in Slack
            await self._link_upload(output.sandbox_path, (uploaded.get("file") or {}).get("id", ""))

    async def _link_upload(self, sandbox_path: str, file_id: str) -> None:
        # files.completeUploadExternal answers with id and title only; files.info has the permalink.
        try:
            info = await self._client.files_info(file=file_id)
            self._links[sandbox_path] = info["file"]["permalink"]
        except (SlackApiError, KeyError) as exc:
            log.warning("no permalink for uploaded file %s: %s", file_id, exc)

    async def _wait_uploads(self) -> None:
        if self._uploads:
            await asyncio.gather(*self._uploads, return_exceptions=True)
            self._uploads.clear()

    # -- Slack calls: a failed edit is logged, never fatal to the turn --------------
    async def _post(self, text: str) -> str | None:
        try:
            response = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=text, unfurl_links=False, unfurl_media=False
            )
            return response.get("ts")
        except SlackApiError as exc:
            log.warning("chat.postMessage in %s failed: %s", self._channel, exc.response.get("error"))
            return None

    async def _update(self, ts: str, text: str) -> bool:
        try:
            await self._client.chat_update(channel=self._channel, ts=ts, text=text)
            return True
        except SlackApiError as exc:
            log.warning("chat.update in %s failed: %s", self._channel, exc.response.get("error"))
            return False

    async def _set_status(self, status: str) -> None:
        # Slack shows an assistant status only in assistant (DM) threads.
        if not self._is_dm:
            return
        try:
            await self._client.api_call(
                "assistant.threads.setStatus",
                json={"channel_id": self._channel, "thread_ts": self._thread_ts, "status": status},
            )
        except SlackApiError as exc:
            log.debug("assistant.threads.setStatus failed: %s", exc.response.get("error"))
