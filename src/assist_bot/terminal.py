"""The terminal as a reply surface, for `assist-bot chat`: what a Slack reply does with a
turn's events, done with lines of text — the answer streams as it arrives, tool work shows
in brackets, a side-effect tool asks for consent on the terminal, files land in a folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision, Done, FileOutput, TextDelta, ToolActivity, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.store.base import ReplyRef


class Terminal:
    """Lines in (stdin, read without blocking the loop), text out (stdout, as it comes)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._reader: asyncio.StreamReader | None = None
        self._use_thread = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        # A duplicate of stdin for the transport, which closes its file at the end of the input.
        pipe = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        except (ValueError, OSError):  # a regular file as stdin: no pipe transport for it
            pipe.close()
            self._use_thread = True
        else:
            self._reader = reader

    def close(self) -> None:
        # The pipe transport made stdin non-blocking; the shell that gets it back expects it blocking.
        if self._reader is not None:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(sys.stdin.fileno(), True)

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def read_line(self, prompt: str = "") -> str | None:
        """A line without its newline; None at the end of the input."""
        if prompt:
            self.write(prompt)
        if self._reader is not None:
            raw = (await self._reader.readline()).decode("utf-8", "replace")
        elif self._use_thread:
            raw = await asyncio.to_thread(sys.stdin.readline)
        else:
            raise RuntimeError("Terminal.open() first")
        return raw.rstrip("\r\n") if raw else None


class TerminalReplies:
    """`Replies` for the dispatcher; `turn_over` is set when a turn's answer has ended."""

    def __init__(self, terminal: Terminal, *, name: str, approval_timeout: float) -> None:
        self._terminal = terminal
        self._name = name
        self._approval_timeout = approval_timeout
        self.turn_over = asyncio.Event()

    async def open(self, first: Inbound) -> TerminalSink:
        self.turn_over.clear()
        self._terminal.write(f"{self._name}> ")
        return TerminalSink(self._terminal, self._approval_timeout, name=self._name, on_end=self.turn_over.set)

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        # A chat that died mid-answer: its half answer is gone with its terminal; say so here.
        self._terminal.write((texts.INTERRUPTED_AGAIN if again else texts.INTERRUPTED_GIVEN_UP) + "\n")


class TerminalSink:
    def __init__(self, terminal: Terminal, approval_timeout: float, *, name: str, on_end: Callable[[], None]) -> None:
        self._terminal = terminal
        self._name = name
        self._resumed = False  # the answer goes on after a consent prompt: skip the blank lines between rounds
        self._approval_timeout = approval_timeout
        self._on_end = on_end
        self._files: list[FileOutput] = []
        self._line_open = False  # the answer's current line has text on it

    def feed(self, event: TurnEvent) -> None:
        if isinstance(event, TextDelta):
            if self._resumed and not event.text.strip():
                return
            self._resumed = False
            self._terminal.write(event.text)
            self._line_open = not event.text.endswith("\n")
        elif isinstance(event, ToolActivity) and event.active:
            self._terminal.write(f"{self._newline()}[{texts.tool_activity(event.kind, event.name)}]\n")
            self._line_open = False
        elif isinstance(event, FileOutput):
            self._files.append(event)

    def _newline(self) -> str:
        return "\n" if self._line_open else ""

    async def finish(self, done: Done) -> None:
        try:
            if not done.text.strip():
                self._terminal.write(texts.EMPTY_ANSWER)
            self._terminal.write("\n")
            for n, citation in enumerate(done.citations, start=1):
                self._terminal.write(f"  [{n}] {citation.filename}\n")
            if self._files:
                folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="assist-bot-chat-"))
                for file in self._files:
                    path = folder / Path(file.name).name
                    await asyncio.to_thread(path.write_bytes, file.content)
                    self._terminal.write(f"  file: {path}\n")
        finally:
            self._on_end()

    async def fail(self, kind: str) -> None:
        self._terminal.write(f"{self._newline()}{texts.failure(kind)}\n")
        self._on_end()

    async def ask(self, request: ApprovalRequest) -> Decision:
        lines = [f"{self._newline()}The assistant wants to run {request.tool}:"]
        lines += [f"  {key}: {value}" for key, value in request.arguments.items()]
        self._terminal.write("\n".join(lines) + "\n")
        try:
            async with asyncio.timeout(self._approval_timeout):
                answer = await self._terminal.read_line("Allow it? [y/N] ")
        except TimeoutError:
            self._terminal.write(f"\nNo answer in time: not run.\n{self._name}> ")
            self._line_open, self._resumed = False, True
            return Decision(approved=False, timed_out=True)
        approved = (answer or "").strip().lower() in ("y", "yes")
        self._terminal.write(("Running it." if approved else "Not run.") + f"\n{self._name}> ")
        self._line_open, self._resumed = False, True
        return Decision(approved=approved, by=request.requester)
