"""A thread's state read and written through the store's production operations
(a turn's end saves the conversation; a turn's start reads it and the thread's files)."""

from __future__ import annotations

from assist_bot.store import Store, ThreadKey


async def save_conversation(store: Store, thread: ThreadKey, conversation: str) -> None:
    await store.end_turn(thread, "test", 1, server_state=conversation)


async def conversation_of(store: Store, thread: ThreadKey) -> str | None:
    return (await store.begin_turn(thread)).server_state


async def files_of(store: Store, thread: ThreadKey) -> list[str]:
    return (await store.begin_turn(thread)).thread_files
