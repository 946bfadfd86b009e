"""The steps of a natively streamed reply (tools, approvals) as Slack's `task_update` chunks.

A tool shows `in_progress` from when the engine reports it; it is `complete` when text or
another tool follows (the engine reports no end for most tools), `error` when the answer
fails first. An approval is `pending` until decided. Only updates Slack has not taken yet
are kept: each call carries them, and what Slack took is dropped (`sent`).
"""

from __future__ import annotations

import itertools

from slack_sdk.models.messages.chunk import Chunk, TaskUpdateChunk

from assist_bot import texts
from assist_bot.events import ToolActivity

Update = dict[str, str]  # id, title, status


class StreamTasks:
    def __init__(self) -> None:
        self._unsent: dict[str, Update] = {}  # task id → its latest update, not yet sent
        self._open: dict[tuple[str, str], str] = {}  # (kind, name) → id of a running tool's task
        self._ids = itertools.count(1)

    def __bool__(self) -> bool:
        """Are there updates Slack has not taken yet?"""
        return bool(self._unsent)

    def tool(self, event: ToolActivity) -> None:
        key, title = (event.kind, event.name), texts.tool_activity(event.kind, event.name)
        if event.active and key not in self._open:
            self.complete_open()
        if event.active:
            task_id = self._open.get(key) or self._new_id()
            self._open[key] = task_id
            self._set(task_id, title, "in_progress")
        elif key in self._open:
            self._set(self._open.pop(key), title, "complete")

    def complete_open(self, *, status: str = "complete") -> None:
        """Text (or the end) came: every running tool is done."""
        for (kind, name), task_id in self._open.items():
            self._set(task_id, texts.tool_activity(kind, name), status)
        self._open.clear()

    def pending(self, title: str) -> str:
        """A step that waits (an approval); returns its id, for `decided`."""
        task_id = self._new_id()
        self._set(task_id, title, "pending")
        return task_id

    def decided(self, task_id: str, title: str, *, ok: bool) -> None:
        self._set(task_id, title, "complete" if ok else "error")

    def open_tools(self) -> list[tuple[str, str]]:
        """(kind, name) of each tool still running."""
        return list(self._open)

    def unsent(self) -> list[Update]:
        return list(self._unsent.values())

    def sent(self, updates: list[Update]) -> None:
        """Slack took these; a task updated again meanwhile keeps its newer update."""
        for update in updates:
            if self._unsent.get(update["id"]) is update:
                del self._unsent[update["id"]]

    def drop_unsent(self) -> None:
        self._unsent = {}

    def _set(self, task_id: str, title: str, status: str) -> None:
        self._unsent[task_id] = {"id": task_id, "title": title, "status": status}

    def _new_id(self) -> str:
        return f"task{next(self._ids)}"


def chunks(updates: list[Update]) -> list[Chunk]:
    return [TaskUpdateChunk(id=u["id"], title=u["title"], status=u["status"]) for u in updates]
