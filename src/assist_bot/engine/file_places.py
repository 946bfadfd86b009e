"""Where the bot's files live: each at one model server, the one of the assistant the
channel used when it came (engine/knowledge.py), and recorded with it — a file's or
a vector store's id means nothing at another server (or worse, names another
account's). A turn offers its hosted tools only what lives at its own server.

Records that name no server are the bot's own server's, as every record was before
servers were recorded: those keep their shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VECTOR_STORE_SETTING = "vector_store_id"


def vector_store_setting(server: str) -> str:
    """The channel setting that holds its vector store at a model server. The bot's own keeps
    the name it always had; another's is named after the server (an id means nothing elsewhere,
    or worse, another account's store), so a channel that switches assistants keeps each."""
    return f"{VECTOR_STORE_SETTING} {server}" if server else VECTOR_STORE_SETTING


def vector_stores(settings: Mapping[str, str]) -> dict[str, str]:
    """A channel's vector stores, by model server ("" the bot's own)."""
    stores = {}
    for name, value in settings.items():
        if name == VECTOR_STORE_SETTING or name.startswith(f"{VECTOR_STORE_SETTING} "):
            stores[name.removeprefix(VECTOR_STORE_SETTING).lstrip()] = value
    return stores


def thread_file_token(file_id: str, server: str) -> str:
    """A thread's file as the store lists it: its id, then " server" when not the bot's own
    (ids hold no spaces), as the ledger writes resources; older entries are bare ids."""
    return f"{file_id} {server}" if server else file_id


def thread_files_at(tokens: Iterable[str], server: str) -> list[str]:
    """The ids of a thread's files kept at `server`: another server's code interpreter would
    refuse the others (the channel switched assistants), so the turn goes ahead without them."""
    return [file_id for file_id, _, at in (token.partition(" ") for token in tokens) if at == server]


def hosted_tools(*, vector_store: str | None, file_ids: list[str], code_interpreter: bool) -> list[dict[str, Any]]:
    """file_search on this channel's vector store (never another's), and the code
    interpreter with the thread's files (a fresh `auto` container gets them all)."""
    tools: list[dict[str, Any]] = []
    if vector_store:
        tools.append({"type": "file_search", "vector_store_ids": [vector_store]})
    if file_ids or code_interpreter:
        tools.append({"type": "code_interpreter", "container": {"type": "auto", "file_ids": list(file_ids)}})
    return tools
