"""Files in: a channel's knowledge base (one vector store per channel, for
file search), a thread's code-interpreter files, images for the model's eyes.
Files out: what the code interpreter wrote, fetched from its container.

Knows nothing of Slack: the Slack side downloads the bytes and hands over an `Upload`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import openai
from openai.types import FilePurpose

from assist_bot.engine.openai_errors import to_turn_error
from assist_bot.settings import Settings
from assist_bot.store import ChannelKey, Store, ThreadKey
from assist_bot.store.ledger import Owner, Resource
from assist_bot.uploads import IntakeError, Upload
from assist_bot.usage import Meter

log = logging.getLogger(__name__)

VECTOR_STORE_SETTING = "vector_store_id"
POLL_MS = 500
INDEXING_TIMEOUT = 300.0
# The Files API lets a file expire at most 30 days after its creation (anchor created_at).
MAX_FILE_EXPIRY = 30 * 86400
# A vector store file's `last_error.code`, in our words (its message is the service's, not shown).
INDEXING_FAILURES = {
    "unsupported_file": "the AI service cannot read this file (is it encrypted, a scan, or empty of text?)",
    "invalid_file": "the file looks damaged, or is not what its name says",
    "server_error": "the AI service failed while indexing it; please share it again later",
}


class Knowledge:
    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI,
        store: Store,
        settings: Settings,
        hosted_tools: Callable[[str | None], bool] = lambda assistant: True,
        meter: Meter | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._settings = settings
        self._meter = meter  # records what is stored at OpenAI, by owner, for costs and clean-up
        self._hosted_tools = hosted_tools  # by assistant name: does its model server run hosted tools?

    async def _require_hosted(self, channel: ChannelKey, lacking: str) -> None:
        """A file for a tool the channel's model server lacks gets a clear note, not an error,
        and never goes to another server (a channel on a model of its own keeps its files)."""
        if not self._hosted_tools((await self._store.get_channel_settings(channel)).get("assistant")):
            raise IntakeError(f"this model server has no {lacking}")

    # -- a channel's knowledge base -------------------------------------------------------
    async def vector_store_id(self, channel: ChannelKey) -> str | None:
        return (await self._store.get_channel_settings(channel)).get(VECTOR_STORE_SETTING)

    async def reset(self, channel: ChannelKey) -> None:
        """The channel's vector store is gone at OpenAI (it expires after days unused):
        forget it and its index, so the next document starts a new one."""
        log.warning("vector store of %s/%s is gone; starting afresh", channel.team, channel.channel)
        await self._store.set_channel_setting(channel, VECTOR_STORE_SETTING, None)
        for slack_file_id in await self._store.knowledge_files(channel):
            await self._store.remove_knowledge_file(channel, slack_file_id)

    async def _ensure_vector_store(self, channel: ChannelKey, channel_name: str) -> str:
        existing = await self.vector_store_id(channel)
        if existing:
            return existing
        store = await self._client.vector_stores.create(
            name=f"assist-bot {channel_name or channel.channel}"[:256],
            expires_after={"anchor": "last_active_at", "days": self._settings.vector_store_expiry_days},
            metadata={"team": channel.team, "channel": channel.channel},
        )
        await self._store.set_channel_setting(channel, VECTOR_STORE_SETTING, store.id)
        if self._meter is not None:
            await self._meter.record_made(Owner(channel.team, channel.channel), Resource("vector_store", store.id))
        log.info("vector store %s for %s/%s", store.id, channel.team, channel.channel)
        return store.id

    async def add_document(self, *, channel: ChannelKey, channel_name: str, upload: Upload) -> None:
        """Upload, attach and wait until indexed; on failure nothing stays behind."""
        await self._require_hosted(channel, "file search")
        try:
            vector_store = await self._ensure_vector_store(channel, channel_name)
            file = await self._client.files.create(
                file=(upload.name, upload.content, upload.mimetype or "application/octet-stream"), purpose="assistants"
            )
        except openai.OpenAIError as exc:
            raise IntakeError(_api_reason(exc)) from exc
        try:
            try:
                attached = await self._attach(file.id, vector_store, channel, upload)
            except openai.NotFoundError:
                # The channel's vector store expired: a new one, and the file goes there.
                await self.reset(channel)
                vector_store = await self._ensure_vector_store(channel, channel_name)
                attached = await self._attach(file.id, vector_store, channel, upload)
        except (openai.OpenAIError, TimeoutError) as exc:
            await self._discard(file.id, vector_store)
            raise IntakeError(
                _api_reason(exc) if isinstance(exc, openai.OpenAIError) else "indexing took too long"
            ) from exc
        if attached.status != "completed":
            await self._discard(file.id, vector_store)
            error = attached.last_error
            detail = (error.code, error.message) if error else None
            log.warning("indexing %s ended as %s: %s", upload.slack_file_id, attached.status, detail)
            raise IntakeError(INDEXING_FAILURES.get(error.code if error else "", INDEXING_FAILURES["server_error"]))
        await self._store.put_knowledge_file(
            channel,
            upload.slack_file_id,
            {
                "name": upload.name,
                "openai_file_id": file.id,
                "uploader": upload.uploader,
                "permalink": upload.permalink,
                "bytes": len(upload.content),
            },
        )
        await self._stored(Owner(channel.team, channel.channel), upload, file.id)

    async def _stored(self, owner: Owner, upload: Upload, file_id: str) -> None:
        if self._meter is not None:
            await self._meter.record_stored(
                owner=owner, user=upload.uploader, resource=Resource("file", file_id), size=len(upload.content)
            )

    async def _attach(self, file_id: str, vector_store: str, channel: ChannelKey, upload: Upload) -> Any:
        return await self._client.vector_stores.files.create_and_poll(
            file_id,
            vector_store_id=vector_store,
            attributes=_attributes(channel, upload),
            poll_interval_ms=POLL_MS,
            max_wait_seconds=INDEXING_TIMEOUT,
        )

    async def _discard(self, file_id: str, vector_store: str | None) -> None:
        """Best effort: leave no half-stored file behind at OpenAI."""
        try:
            if vector_store:
                try:
                    await self._client.vector_stores.files.delete(file_id, vector_store_id=vector_store)
                except openai.NotFoundError:
                    pass
            await self._client.files.delete(file_id)
        except openai.OpenAIError as exc:
            log.warning("could not clean up file %s: %s", file_id, type(exc).__name__)

    async def files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]:
        return await self._store.knowledge_files(channel)

    async def forget(self, channel: ChannelKey, name_or_id: str) -> dict[str, Any] | None:
        """Remove a file from the channel's knowledge, by Slack file id or file name."""
        index = await self._store.knowledge_files(channel)
        slack_id = (
            name_or_id
            if name_or_id in index
            else next((fid for fid, rec in index.items() if rec.get("name") == name_or_id), None)
        )
        if slack_id is None:
            return None
        record = await self._store.remove_knowledge_file(channel, slack_id)
        if record:
            await self._discard(record["openai_file_id"], await self.vector_store_id(channel))
        return record

    async def forget_slack_file(self, team: str, slack_file_id: str) -> bool:
        """A file deleted in Slack leaves the knowledge of every channel it was shared in."""
        removed = False
        for channel in await self._store.knowledge_channels_of(team, slack_file_id):
            removed = await self.forget(ChannelKey(team, channel), slack_file_id) is not None or removed
        return removed

    # -- a thread's code interpreter, and images ---------------------------------------------
    async def add_data_file(self, *, thread: ThreadKey, upload: Upload) -> None:
        await self._require_hosted(ChannelKey(thread.team, thread.channel), "code interpreter")
        # No expires_after: a file expires counted from its upload (30 days at most), while the
        # thread may use it longer; the janitor deletes it once the thread is unused that long.
        file_id = await self._upload(upload, purpose="assistants")
        await self._store.add_thread_file(thread, file_id)
        await self._stored(Owner(thread.team, thread.channel, thread.thread_ts), upload, file_id)

    async def add_image(self, upload: Upload, *, channel: ChannelKey, thread: ThreadKey | None = None) -> str:
        await self._require_hosted(channel, "file uploads for images")
        # An image is read in its own turn: it may expire (the janitor removes it earlier when it can).
        expiry = min(self._settings.retention_seconds, MAX_FILE_EXPIRY)
        file_id = await self._upload(upload, purpose="vision", expires_after=max(expiry, 3600))
        if thread is not None:
            await self._stored(Owner(thread.team, thread.channel, thread.thread_ts), upload, file_id)
        return file_id

    async def _upload(self, upload: Upload, *, purpose: FilePurpose, expires_after: int | None = None) -> str:
        extra: dict[str, Any] = (
            {"expires_after": {"anchor": "created_at", "seconds": expires_after}} if expires_after else {}
        )
        try:
            file = await self._client.files.create(
                file=(upload.name, upload.content, upload.mimetype or "application/octet-stream"),
                purpose=purpose,
                **extra,
            )
        except openai.OpenAIError as exc:
            raise IntakeError(_api_reason(exc)) from exc
        return file.id

    # -- what a turn gets --------------------------------------------------------------------
    async def citation_link(self, channel: ChannelKey, openai_file_id: str) -> str:
        for record in (await self._store.knowledge_files(channel)).values():
            if record.get("openai_file_id") == openai_file_id:
                return record.get("permalink", "")
        return ""

    async def container_file(self, container_id: str, file_id: str) -> bytes:
        try:
            response = await self._client.containers.files.content.retrieve(file_id, container_id=container_id)
            return response.content
        except openai.OpenAIError as exc:
            raise to_turn_error(exc) from exc

    async def assistant_files(self, container_id: str) -> list[tuple[str, str]]:
        """(file id, name) of the files the code interpreter wrote in a container."""
        files = []
        try:
            async for file in self._client.containers.files.list(container_id):
                if getattr(file, "source", "") == "assistant":
                    files.append((file.id, (file.path or file.id).rsplit("/", 1)[-1]))
        except openai.OpenAIError as exc:
            log.warning("listing container %s failed: %s", container_id, type(exc).__name__)
        return files


def _attributes(channel: ChannelKey, upload: Upload) -> dict[str, str | float | bool]:
    # Attribute values hold at most 512 characters each.
    return {
        "team": channel.team,
        "channel": channel.channel,
        "uploader": upload.uploader,
        "slack_file_id": upload.slack_file_id,
        "file_name": upload.name[:512],
    }


def _api_reason(exc: openai.OpenAIError) -> str:
    """Words for the thread. The API's own message stays in the log (redacted there): it is not
    ours to publish — a proxy in between may echo the request, API key included."""
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    log.warning("file intake: %s (status %s): %s", type(exc).__name__, status, getattr(exc, "message", ""))
    if status in (401, 403):
        return "the bot's access to the AI service was refused (an admin needs to check its API key)"
    if status == 413:
        return "the file is too large for the AI service"
    if status == 429:
        return "the AI service is busy right now; please share the file again in a few minutes"
    if status is not None and 400 <= status < 500:
        return "the AI service did not accept this file"
    return "the AI service did not accept the file right now"


def hosted_tools(*, vector_store: str | None, file_ids: list[str], code_interpreter: bool) -> list[dict[str, Any]]:
    """file_search on this channel's vector store (never another's), and the code
    interpreter with the thread's files (a fresh `auto` container gets them all)."""
    tools: list[dict[str, Any]] = []
    if vector_store:
        tools.append({"type": "file_search", "vector_store_ids": [vector_store]})
    if file_ids or code_interpreter:
        tools.append({"type": "code_interpreter", "container": {"type": "auto", "file_ids": list(file_ids)}})
    return tools
