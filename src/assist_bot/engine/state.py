"""How a thread's history reaches the model from one turn to the next (ASSIST_BOT_STATE).

- `conversation`: the server keeps it in a conversation (OpenAI's Conversations API);
- `response_chain`: the server keeps each response; a turn names the last one
  (`previous_response_id`), and the store keeps that id per thread;
- `local`: the bot keeps the thread's items itself (in the store) and sends them as
  `input` with `store: false`, within a token budget, oldest turns dropped first.

One `TurnState` per turn, one class per mode behind one interface: the engine asks it
what each request carries, tells it what each response produced, and yields the
`StateChange` events it collects, which the dispatcher saves when the turn ends.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import openai

from assist_bot.engine.openai_errors import is_missing_conversation, to_turn_error
from assist_bot.engine.stream import Round
from assist_bot.events import StateChange
from assist_bot.store import ThreadKey
from assist_bot.store.base import encode

if TYPE_CHECKING:  # backends.py imports this module's Mode
    from assist_bot.assistants import Assistant
    from assist_bot.engine.backends import Backend

log = logging.getLogger(__name__)

Mode = Literal["conversation", "response_chain", "local"]

# A local history stays under this many tokens (estimated) unless the assistant sets its own.
DEFAULT_HISTORY_TOKENS = 24_000


class TurnState(abc.ABC):
    """One turn's view of the thread's state."""

    mode: Mode

    def __init__(self) -> None:
        self._changes: list[StateChange] = []
        self._round: list[dict[str, Any]] = []

    def changes(self) -> list[StateChange]:
        """The StateChange events collected since the last call (the engine yields them)."""
        changes, self._changes = self._changes, []
        return changes

    async def begin(self) -> None:
        """Before the first request (a conversation is created here when the thread has none)."""
        return None

    def next_round(self, items: list[dict[str, Any]]) -> None:
        """The new items of the next request: the user's messages, then function outputs."""
        self._round = list(items)

    @abc.abstractmethod
    def fields(self) -> dict[str, Any]:
        """The request's `input` and whatever else carries the thread's state."""

    def answered(self, this: Round) -> None:
        """A response completed: remember what the next request (or turn) needs of it."""
        return None

    async def repair(self, exc: openai.APIStatusError) -> bool:
        """The server lost the thread's state: start afresh and return True (else False)."""
        return False

    def end(self, *, completed: bool) -> None:
        """The turn is over (answered, or failed): collect what the store must keep."""
        return None


class ConversationState(TurnState):
    mode: Mode = "conversation"

    def __init__(self, client: openai.AsyncOpenAI, thread: ThreadKey, conversation_id: str | None) -> None:
        super().__init__()
        self._client = client
        self._thread = thread
        # A response id left by response_chain (the mode was switched) is no conversation.
        self._id = None if (conversation_id or "").startswith("resp_") else conversation_id

    async def begin(self) -> None:
        if not self._id:
            await self._create()

    async def _create(self) -> None:
        thread = self._thread
        try:
            conversation = await self._client.conversations.create(
                metadata={"team": thread.team, "channel": thread.channel, "thread_ts": thread.thread_ts}
            )
        except openai.OpenAIError as exc:
            raise to_turn_error(exc) from exc
        self._id = conversation.id
        self._changes.append(StateChange(server_state=conversation.id))
        log.info("new conversation %s for %s/%s", conversation.id, thread.channel, thread.thread_ts)

    def fields(self) -> dict[str, Any]:
        return {"input": self._round, "conversation": self._id}

    async def repair(self, exc: openai.APIStatusError) -> bool:
        if not is_missing_conversation(exc):
            return False
        await self._create()  # expired or deleted at OpenAI: the thread starts afresh
        return True


class ResponseChainState(TurnState):
    mode: Mode = "response_chain"

    def __init__(self, previous: str | None) -> None:
        super().__init__()
        # A conversation id left by conversation mode (the mode was switched) is no response.
        self._previous = None if (previous or "").startswith("conv_") else previous
        self._chained = False  # a response of this very turn is the previous one

    def fields(self) -> dict[str, Any]:
        if self._previous:
            return {"input": self._round, "previous_response_id": self._previous}
        return {"input": self._round}

    def answered(self, this: Round) -> None:
        if this.response_id:
            self._previous, self._chained = this.response_id, True

    async def repair(self, exc: openai.APIStatusError) -> bool:
        # The stored response expired or was never kept: answer without the history, rather
        # than not at all. Within a turn there is nothing to repair: its calls need their outputs.
        if self._chained or not self._previous or not is_missing_previous_response(exc):
            return False
        log.warning("previous response %s is gone; the thread starts afresh", self._previous)
        self._previous = None
        return True

    def end(self, *, completed: bool) -> None:
        # A failed turn keeps the old pointer: a chain ending in unanswered calls is refused.
        if completed and self._chained and self._previous:
            self._changes.append(StateChange(server_state=self._previous))


class LocalState(TurnState):
    """The oldest whole turns are dropped past `budget` (None: never; see context_plan).
    When the server compacts the input (context_management), it returns one opaque item
    that stands for everything before it; the history then restarts from that item."""

    mode: Mode = "local"

    def __init__(self, history: Sequence[dict[str, Any]], *, budget: int | None) -> None:
        super().__init__()
        self._history = list(history)
        self._sizes = [estimate_tokens(item) for item in self._history]
        self._turn: list[dict[str, Any]] = []
        self._budget = budget
        self._compacted = False  # the history is folded into the turn's compaction item

    def next_round(self, items: list[dict[str, Any]]) -> None:
        super().next_round(items)
        self._turn.extend(items)

    def fields(self) -> dict[str, Any]:
        earlier = [] if self._compacted else self._history[self._keep_from(self._turn) :]
        return {"input": earlier + self._turn, "store": False}

    def answered(self, this: Round) -> None:
        if this.compaction:
            self._compacted, self._turn = True, [this.compaction]
        if this.text:
            self._turn.append({"role": "assistant", "content": "".join(this.text)})
        self._turn.extend(
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
            for call in this.calls
        )

    def end(self, *, completed: bool) -> None:
        # A failed turn keeps only what people said: a call without its output would be refused.
        kept = self._turn if completed else [item for item in self._turn if _said_or_compacted(item)]
        drop = len(self._history) if self._compacted else self._keep_from(kept)
        if kept or drop:
            self._changes.append(StateChange(history=tuple(kept), history_drop=drop))

    def _keep_from(self, turn: Sequence[dict[str, Any]]) -> int:
        """How many of the oldest history items to leave out so that history and this turn
        fit the budget; whole turns only, so no answer or tool output loses its question.
        Never past the latest compaction item: it stands for all before it, and the server
        keeps it within its threshold."""
        total = sum(self._sizes) + sum(estimate_tokens(item) for item in turn)
        floor = max((n for n, item in enumerate(self._history) if item.get("type") == "compaction"), default=None)
        limit = len(self._history) if floor is None else floor
        start = 0
        while start < limit and self._budget is not None and total > self._budget:
            total -= self._sizes[start]
            start += 1
        while start < limit and not _said_or_compacted(self._history[start]):
            start += 1
        return start


def _said_or_compacted(item: dict[str, Any]) -> bool:
    return item.get("role") == "user" or item.get("type") == "compaction"


def estimate_tokens(item: dict[str, Any]) -> int:
    # About four characters a token in English; a budget, not a bill.
    return len(encode(item)) // 4 + 1


def is_missing_previous_response(exc: BaseException) -> bool:
    if not isinstance(exc, (openai.NotFoundError, openai.BadRequestError)):
        return False
    param = getattr(exc, "param", None) or ""
    message = (getattr(exc, "message", "") or "").lower()
    return "previous_response_id" in param or "previous response" in message


def open_turn(
    mode: Mode,
    *,
    client: openai.AsyncOpenAI,
    thread: ThreadKey,
    server_state: str | None,
    history: Sequence[dict[str, Any]],
    budget: int | None,
) -> TurnState:
    if mode == "conversation":
        return ConversationState(client, thread, server_state)
    if mode == "response_chain":
        return ResponseChainState(server_state)
    return LocalState(history, budget=budget)


@dataclass(frozen=True, slots=True)
class ContextPlan:
    fields: dict[str, Any]  # the request's truncation / context_management
    history_budget: int | None  # a local history's budget (None: nothing is dropped)


def context_plan(assistant: Assistant, backend: Backend) -> ContextPlan:
    """How a thread outgrows the context window: the assistant's `context` decides, in every
    mode. In `local` mode (store: false) the server sees only what the bot sends, so the bot
    keeps the history within `history_tokens` for "truncate" (the server's truncation, where it
    has one, stays a safety net); for "compact" that budget is the compaction threshold (unless
    compact_threshold is set) and dropping turns only guards at twice it, so as not to pre-empt
    the server; "off" drops nothing and a full thread fails with the context-window note."""
    budget = backend.history_tokens or DEFAULT_HISTORY_TOKENS
    local = backend.state == "local"
    if assistant.context == "compact":
        threshold = assistant.compact_threshold or (budget if local else None)
        entry: dict[str, Any] = {"type": "compaction"} | ({"compact_threshold": threshold} if threshold else {})
        return ContextPlan({"context_management": [entry]}, 2 * threshold if threshold else None)
    # "truncate" and "off" are only named to servers known to take the parameter (see Backend).
    fields = assistant.context_request() if backend.server_context else {}
    return ContextPlan(fields, budget if assistant.context == "truncate" else None)
