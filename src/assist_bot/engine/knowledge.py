"""Files in: a channel's knowledge base (one vector store per channel, for
file search), a thread's code-interpreter files, images for the model's eyes.
(Files out, what the code interpreter wrote: outputs.py.)

Every file goes to the model server of the assistant the channel uses (backends.py), is
recorded with that server (in the ledger, for clean-up there, and beside its id here),
and is used only there: another server's tools cannot see it. A channel that switches
to an assistant on another server keeps its knowledge there, unsearched, until it
switches back or forgets it; new documents start a vector store at the new server.

Knows nothing of Slack: the Slack side downloads the bytes and hands over an `Upload`.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from openai.types import FilePurpose

from assist_bot.engine.backends import Backend, Backends
from assist_bot.engine.file_places import thread_file_token, vector_store_setting
from assist_bot.settings import Settings
from assist_bot.store import ChannelKey, Store, ThreadKey
from assist_bot.store.ledger import Owner, Resource
from assist_bot.uploads import IntakeError, Upload
from assist_bot.usage import Meter

log = logging.getLogger(__name__)

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
        backends: Backends,
        store: Store,
        settings: Settings,
        meter: Meter | None = None,
    ) -> None:
        self._backends = backends  # each channel's files go to its assistant's model server
        self._store = store
        self._settings = settings
        self._meter = meter  # records what is stored at OpenAI, by owner, for costs and clean-up

    async def _here(self, channel: ChannelKey) -> tuple[Backend, dict[str, str]]:
        """The model server of the assistant the channel uses now (its files go there: another
        server's file search and code interpreter cannot see them), and the channel's settings."""
        settings = await self._store.get_channel_settings(channel)
        return self._backends.of_channel(settings.get("assistant"))[1], settings

    async def _hosted(self, channel: ChannelKey, lacking: str) -> tuple[Backend, dict[str, str]]:
        """A file for a tool the channel's model server lacks gets a clear note, not an error,
        and never goes to another server (a channel on a model of its own keeps its files)."""
        backend, settings = await self._here(channel)
        if not backend.hosted_tools:
            raise IntakeError(f"this model server has no {lacking}")
        return backend, settings

    # -- a channel's knowledge base -------------------------------------------------------
    async def reset(self, channel: ChannelKey, server: str = "") -> None:
        """The channel's vector store at `server` is gone (it expires after days unused): forget
        it and the files indexed there, so the next document starts a new one."""
        log.warning("vector store of %s/%s is gone; starting afresh", channel.team, channel.channel)
        await self._store.set_channel_setting(channel, vector_store_setting(server), None)
        for slack_file_id, record in (await self._store.knowledge_files(channel)).items():
            if record.get("server", "") == server:
                await self._store.remove_knowledge_file(channel, slack_file_id)

    async def _ensure_vector_store(
        self, channel: ChannelKey, channel_name: str, backend: Backend, existing: str | None
    ) -> str:
        if existing:
            return existing
        store = await backend.client.vector_stores.create(
            name=f"assist-bot {channel_name or channel.channel}"[:256],
            expires_after={"anchor": "last_active_at", "days": self._settings.vector_store_expiry_days},
            metadata={"team": channel.team, "channel": channel.channel},
        )
        await self._store.set_channel_setting(channel, vector_store_setting(backend.server), store.id)
        if self._meter is not None:
            resource = Resource("vector_store", store.id, backend.server)
            await self._meter.record_made(Owner(channel.team, channel.channel), resource)
        log.info("vector store %s for %s/%s", store.id, channel.team, channel.channel)
        return store.id

    async def add_document(self, *, channel: ChannelKey, channel_name: str, upload: Upload) -> None:
        """Upload, attach and wait until indexed, at the channel's model server (a store it has
        at another server stays there, unused here); on failure nothing stays behind."""
        backend, settings = await self._hosted(channel, "file search")
        client, existing = backend.client, settings.get(vector_store_setting(backend.server))
        try:
            vector_store = await self._ensure_vector_store(channel, channel_name, backend, existing)
            file = await client.files.create(
                file=(upload.name, upload.content, upload.mimetype or "application/octet-stream"), purpose="assistants"
            )
        except openai.OpenAIError as exc:
            raise IntakeError(_api_reason(exc)) from exc
        try:
            try:
                attached = await self._attach(client, file.id, vector_store, channel, upload)
            except openai.NotFoundError:
                # The channel's vector store expired: a new one, and the file goes there.
                await self.reset(channel, backend.server)
                vector_store = await self._ensure_vector_store(channel, channel_name, backend, None)
                attached = await self._attach(client, file.id, vector_store, channel, upload)
        except (openai.OpenAIError, TimeoutError) as exc:
            await _discard(client, file.id, vector_store)
            raise IntakeError(
                _api_reason(exc) if isinstance(exc, openai.OpenAIError) else "indexing took too long"
            ) from exc
        if attached.status != "completed":
            await _discard(client, file.id, vector_store)
            error = attached.last_error
            detail = (error.code, error.message) if error else None
            log.warning("indexing %s ended as %s: %s", upload.slack_file_id, attached.status, detail)
            raise IntakeError(INDEXING_FAILURES.get(error.code if error else "", INDEXING_FAILURES["server_error"]))
        record: dict[str, Any] = {
            "name": upload.name,
            "openai_file_id": file.id,
            "uploader": upload.uploader,
            "permalink": upload.permalink,
            "bytes": len(upload.content),
        }
        if backend.server:  # the bot's own server's records stay as they always were
            record["server"] = backend.server
        await self._store.put_knowledge_file(channel, upload.slack_file_id, record)
        await self._stored(Owner(channel.team, channel.channel), upload, Resource("file", file.id, backend.server))

    async def _stored(self, owner: Owner, upload: Upload, resource: Resource) -> None:
        if self._meter is not None:
            await self._meter.record_stored(
                owner=owner, user=upload.uploader, resource=resource, size=len(upload.content)
            )

    async def _attach(
        self, client: openai.AsyncOpenAI, file_id: str, vector_store: str, channel: ChannelKey, upload: Upload
    ) -> Any:
        return await client.vector_stores.files.create_and_poll(
            file_id,
            vector_store_id=vector_store,
            attributes=_attributes(channel, upload),
            poll_interval_ms=POLL_MS,
            max_wait_seconds=INDEXING_TIMEOUT,
        )

    async def files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]:
        return await self._store.knowledge_files(channel)

    async def elsewhere(self, channel: ChannelKey) -> dict[str, int]:
        """Files of the channel's knowledge kept at another model server than its assistant's
        (it switched assistants): server → how many. File search here cannot see them."""
        backend, _ = await self._here(channel)
        away: dict[str, int] = {}
        for record in (await self._store.knowledge_files(channel)).values():
            if (server := record.get("server", "")) != backend.server:
                away[server] = away.get(server, 0) + 1
        return away

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
            # At the server it was stored at, from that server's vector store.
            server = record.get("server", "")
            client = self._backends.client_at(server)  # None: the ledger keeps it for clean-up
            if client is not None:
                vector_store = (await self._store.get_channel_settings(channel)).get(vector_store_setting(server))
                await _discard(client, record["openai_file_id"], vector_store)
        return record

    async def forget_slack_file(self, team: str, slack_file_id: str) -> bool:
        """A file deleted in Slack leaves the knowledge of every channel it was shared in."""
        removed = False
        for channel in await self._store.knowledge_channels_of(team, slack_file_id):
            removed = await self.forget(ChannelKey(team, channel), slack_file_id) is not None or removed
        return removed

    # -- a thread's code interpreter, and images ---------------------------------------------
    async def add_data_file(self, *, thread: ThreadKey, upload: Upload) -> None:
        backend, _ = await self._hosted(ChannelKey(thread.team, thread.channel), "code interpreter")
        # No expires_after: a file expires counted from its upload (30 days at most), while the
        # thread may use it longer; the janitor deletes it once the thread is unused that long.
        file_id = await _upload(backend.client, upload, purpose="assistants")
        await self._store.add_thread_file(thread, thread_file_token(file_id, backend.server))
        owner = Owner(thread.team, thread.channel, thread.thread_ts)
        await self._stored(owner, upload, Resource("file", file_id, backend.server))

    async def add_image(self, upload: Upload, *, channel: ChannelKey, thread: ThreadKey | None = None) -> str:
        backend, _ = await self._hosted(channel, "file uploads for images")
        # An image is read in its own turn: it may expire (the janitor removes it earlier when it can).
        expiry = min(self._settings.retention_seconds, MAX_FILE_EXPIRY)
        file_id = await _upload(backend.client, upload, purpose="vision", expires_after=max(expiry, 3600))
        if thread is not None:
            owner = Owner(thread.team, thread.channel, thread.thread_ts)
            await self._stored(owner, upload, Resource("file", file_id, backend.server))
        return file_id

    # -- what a turn gets --------------------------------------------------------------------
    async def citation_links(self, channel: ChannelKey) -> dict[str, str]:
        """The channel's knowledge files by their id at the model server → their Slack permalink."""
        return {
            record["openai_file_id"]: record.get("permalink", "")
            for record in (await self._store.knowledge_files(channel)).values()
            if record.get("openai_file_id")
        }


async def _upload(
    client: openai.AsyncOpenAI, upload: Upload, *, purpose: FilePurpose, expires_after: int | None = None
) -> str:
    extra: dict[str, Any] = (
        {"expires_after": {"anchor": "created_at", "seconds": expires_after}} if expires_after else {}
    )
    try:
        file = await client.files.create(
            file=(upload.name, upload.content, upload.mimetype or "application/octet-stream"),
            purpose=purpose,
            **extra,
        )
    except openai.OpenAIError as exc:
        raise IntakeError(_api_reason(exc)) from exc
    return file.id


async def _discard(client: openai.AsyncOpenAI, file_id: str, vector_store: str | None) -> None:
    """Best effort: leave no half-stored file behind at the model server."""
    try:
        if vector_store:
            try:
                await client.vector_stores.files.delete(file_id, vector_store_id=vector_store)
            except openai.NotFoundError:
                pass
        await client.files.delete(file_id)
    except openai.OpenAIError as exc:
        log.warning("could not clean up file %s: %s", file_id, type(exc).__name__)


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
