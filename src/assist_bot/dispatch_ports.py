"""The dispatcher's ports: the protocols through which it reaches the Slack side and the engine.

The dispatcher knows neither Slack nor OpenAI. It opens replies (`Replies`, `ReplySink`),
tells people about their own messages (`Notices`) and looks up display names (`Names`)
through the Slack side, and runs turns through the engine (`TurnRunner`). Each side
implements its protocols without importing the other: this is where they meet.

`Limits` and `Refusal` are the words of the `Notices` port: what a thread may ask at
once, and why a message was not taken.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from assist_bot.assistants import Assistant
from assist_bot.events import ApprovalRequest, Decision, Done, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.store import ThreadKey
from assist_bot.store.base import NO_CAPS, QueueCaps, ReplyRef, TurnSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one thread may ask at once: ASSIST_BOT_MAX_MESSAGE_CHARS for one message,
    ASSIST_BOT_MAX_QUEUED_MESSAGES / _BYTES for what waits for its next turn (0: no cap)."""

    message_chars: int = 0
    queue: QueueCaps = NO_CAPS


NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message was not taken: too long, or its thread's queue is full (of messages
    or of bytes). `limit` is the cap it hit; `size` the message's length when too long."""

    reason: Literal["too_long", "messages", "bytes"]
    limit: int
    size: int = 0


class Notices(Protocol):
    async def refused(self, message: Inbound, refusal: Refusal) -> None:
        """Tell the message's author (only them) that it was not taken, and why."""

    async def stop_refused(self, message: Inbound, askers: tuple[str, ...]) -> None:
        """Tell the author of a `stop` (only them) that only `askers` or an admin may stop the answer."""


class LogNotices:
    """Notices for a dispatcher built without a Slack side (tools and tests): the log only."""

    async def refused(self, message: Inbound, refusal: Refusal) -> None:
        log.info("message %s/%s not taken: %s", message.channel, message.ts, refusal.reason)

    async def stop_refused(self, message: Inbound, askers: tuple[str, ...]) -> None:
        log.info("stop %s/%s refused: not the asker", message.channel, message.ts)


class ReplySink(Protocol):
    def feed(self, event: TurnEvent) -> None:
        """Take an event without waiting: the model's stream never waits on Slack."""

    async def finish(self, done: Done) -> None: ...

    async def fail(self, kind: str) -> None: ...

    async def ask(self, request: ApprovalRequest) -> Decision:
        """Ask the requester to approve a side-effect tool call; wait for the answer."""


class Replies(Protocol):
    async def open(self, first: Inbound) -> ReplySink:
        """Show at once that an answer is coming (placeholder, status)."""

    async def close_interrupted(self, reply: ReplyRef, *, again: bool) -> None:
        """Close the reply of a turn whose process died, with a note (`again`: it is
        being answered anew)."""


class Names(Protocol):
    async def name(self, team: str, user: str) -> str:
        """A person's display name (never raises: falls back to the id)."""


class TurnRunner(Protocol):
    def run(
        self,
        *,
        thread: ThreadKey,
        messages: Sequence[Inbound],
        assistant: Assistant,
        approve: Callable[[ApprovalRequest], Awaitable[Decision]],
        state: TurnSnapshot,
    ) -> AsyncGenerator[TurnEvent, None]: ...
