"""What a response hands back besides text: sources it cited (footnotes) and
files the code interpreter wrote (uploaded into the thread, each once), fetched from
its container at the model server the turn ran at (where the container is)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import openai

from assist_bot.engine.knowledge import Knowledge
from assist_bot.engine.openai_errors import to_turn_error
from assist_bot.errors import TurnError
from assist_bot.events import Citation, FileOutput
from assist_bot.store import ChannelKey, Store, ThreadKey

log = logging.getLogger(__name__)


async def citations(
    knowledge: Knowledge, thread: ThreadKey, annotations: Iterable[dict[str, Any]]
) -> tuple[Citation, ...]:
    """Knowledge files (file_citation) and web pages (url_citation) the answer cites, each once."""
    links: dict[str, str] | None = None  # read once, and only when the answer cites a file
    seen: dict[str, Citation] = {}
    for note in annotations:
        file_id, url = note.get("file_id", ""), note.get("url", "")
        if note.get("type") == "file_citation" and file_id and file_id not in seen:
            if links is None:
                links = await knowledge.citation_links(ChannelKey(thread.team, thread.channel))
            seen[file_id] = Citation(filename=note.get("filename") or file_id, link=links.get(file_id, ""))
        elif note.get("type") == "url_citation" and url.startswith(("https://", "http://")) and url not in seen:
            seen[url] = Citation(filename=note.get("title") or url, link=url, kind="web")
    return tuple(seen.values())


async def generated_files(
    client: openai.AsyncOpenAI,
    store: Store,
    thread: ThreadKey,
    *,
    annotations: Iterable[dict[str, Any]],
    containers: Iterable[str],
) -> AsyncIterator[FileOutput]:
    """Files cited by the answer, then any other file the code interpreter wrote."""
    wanted: dict[str, tuple[str, str]] = {}  # container file id → (container id, name)
    for note in annotations:
        if note.get("type") == "container_file_citation" and note.get("file_id") and note.get("container_id"):
            wanted[note["file_id"]] = (note["container_id"], note.get("filename") or note["file_id"])
    for container in containers:
        for file_id, name in await assistant_files(client, container):
            wanted.setdefault(file_id, (container, name))
    for file_id, (container, name) in wanted.items():
        # Claimed in the store: each generated file reaches Slack once, whichever replica sees it.
        if not await store.claim(thread.team, f"cfile:{file_id}", ttl=store.retention_seconds):
            continue
        try:
            content = await container_file(client, container, file_id)
        except TurnError as exc:
            log.warning("could not fetch %s from container %s: %s", file_id, container, exc)
            continue
        yield FileOutput(name=name, content=content, sandbox_path=f"sandbox:/mnt/data/{name}")


async def container_file(client: openai.AsyncOpenAI, container_id: str, file_id: str) -> bytes:
    try:
        response = await client.containers.files.content.retrieve(file_id, container_id=container_id)
        return response.content
    except openai.OpenAIError as exc:
        raise to_turn_error(exc) from exc


async def assistant_files(client: openai.AsyncOpenAI, container_id: str) -> list[tuple[str, str]]:
    """(file id, name) of the files the code interpreter wrote in a container."""
    files = []
    try:
        async for file in client.containers.files.list(container_id):
            if getattr(file, "source", "") == "assistant":
                files.append((file.id, (file.path or file.id).rsplit("/", 1)[-1]))
    except openai.OpenAIError as exc:
        log.warning("listing container %s failed: %s", container_id, type(exc).__name__)
    return files
